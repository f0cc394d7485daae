"""Find the bundled networks and hardware profiles, by path or by bare name (``hairnet``)."""

from __future__ import annotations

from pathlib import Path

from hwsim.errors import InputError

_PACKAGE = Path(__file__).resolve().parent


def bundled_dir(kind: str) -> Path:
    """``networks`` or ``hardware``: inside an installed wheel, or at the top of a source checkout."""
    packaged = _PACKAGE / "_bundled" / kind
    return packaged if packaged.is_dir() else _PACKAGE.parent / kind


def scalesim_results() -> Path:
    """SCALE-Sim's committed per-layer runs (``benchmarks/scalesim/results`` of a source checkout)."""
    packaged = _PACKAGE / "_bundled" / "scalesim"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "benchmarks" / "scalesim" / "results"


def path(kind: str, name: str) -> Path:
    """The bundled file ``name`` of ``kind``, whatever the current folder holds."""
    return bundled_dir(kind) / f"{name}.yaml"


def resolve(kind: str, name_or_path: str | Path) -> Path:
    """A bare name (no folder, no suffix: ``hairnet``) is a bundled file when one exists; anything else is a path.

    So nothing in the current folder hides a bundled file; ``./hairnet`` names a local one. A name
    that is neither a file nor bundled is an :class:`InputError` that lists the bundled names.
    """
    given = Path(name_or_path)
    if str(name_or_path) == given.name and not given.suffix and _is_file(path(kind, given.name)):
        return path(kind, given.name)
    if given.parent == Path(".") and not _is_file(given) and _is_file(bundled_dir(kind) / given.name):
        return bundled_dir(kind) / given.name  # hairnet.yaml, when there is none here
    try:
        missing = not given.exists()
    except OSError:  # a name the file system cannot even look up (too long): reading it will say why
        missing = False
    if missing:
        what = {"networks": "network", "hardware": "hardware profile"}.get(kind, kind)
        raise InputError(
            f"no such file, and no bundled {what} of that name; bundled: {', '.join(bundled_names(kind))}",
            str(given),
        )
    return given


def _is_file(candidate: Path) -> bool:
    """``is_file``, False for a name the file system cannot even look up (too long): reading it will say why."""
    try:
        return candidate.is_file()
    except OSError:
        return False


def bundled_names(kind: str) -> list[str]:
    return sorted(p.stem for p in bundled_dir(kind).glob("*.yaml"))


DEFAULT_NETWORK = "hairnet"
DEFAULT_HARDWARE = "paper-accelerator"
