"""Find the bundled networks and hardware profiles, by path or by bare name (``hairnet``)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled_dir(kind: str) -> Path:
    """``networks`` or ``hardware``: inside an installed wheel, or at the top of a source checkout."""
    packaged = _PACKAGE / "_bundled" / kind
    return packaged if packaged.is_dir() else _PACKAGE.parent / kind


def resolve(kind: str, name_or_path: str | Path) -> Path:
    """An existing path as given; else a bundled file of that name (``.yaml`` optional); else the path as given."""
    path = Path(name_or_path)
    if path.exists():
        return path
    for candidate in (bundled_dir(kind) / path.name, bundled_dir(kind) / f"{path.name}.yaml"):
        if path.parent == Path(".") and candidate.is_file():
            return candidate
    return path


def bundled_names(kind: str) -> list[str]:
    return sorted(p.stem for p in bundled_dir(kind).glob("*.yaml"))


DEFAULT_NETWORK = "hairnet"
DEFAULT_HARDWARE = "paper-accelerator"
