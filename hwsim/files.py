"""Files the user names: outputs checked before any work is done and written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hwsim.errors import InputError


def check_writable(path: Path) -> None:
    """Refuse, before any work is done, an output that cannot be written."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError("no such directory", str(directory))
    if path.is_dir():
        raise InputError("is a directory, not a file", str(path))
    if not os.access(directory, os.W_OK):
        raise InputError("cannot write here: permission denied", str(path))


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write ``text`` (or bytes: an image) to a temporary file beside ``path`` and rename it, so a failure
    leaves nothing half-written."""
    check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent if str(path.parent) else Path("."), prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as err:
        raise InputError(f"cannot write: {err.strerror}", str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a report should get the usual mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(text if isinstance(text, bytes) else text.encode("utf-8"))
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise InputError(f"cannot write: {err.strerror}", str(path)) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
