"""Default locations, anchored at the repository root so that every command works from any folder."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"
OUTPUTS = REPO_ROOT / "outputs"
DATA = REPO_ROOT / "data"


def under_repo(path: str | Path) -> Path:
    """A relative path from a config file, taken from the repository root; an absolute path as it is."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path
