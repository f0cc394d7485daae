"""Files the user names. Inputs are read only when they are regular files of a sane size; outputs are checked
before any work is done, must be regular files or not exist yet, and are written atomically.

A path can name anything: a device (``/dev/zero`` never ends, ``/dev/full`` refuses every write), a FIFO
(opening one blocks until a writer comes), a directory, a symlink. Reading or replacing such a thing
either hangs, exhausts memory, or destroys it (a rename onto ``/dev/null`` replaces the device), so every
path is looked at with ``stat`` first and refused, in one line, unless it is a plain file.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from hwsim.errors import InputError

MAX_TEXT_BYTES = 10_000_000
"""A network, hardware profile or golden CSV larger than 10 MB is a mistake: the bundled ones are under 10 kB."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _os_error(err: OSError, path: Path, doing: str) -> InputError:
    """One line for what the operating system said, naming the path."""
    if err.errno == errno.ENAMETOOLONG:
        return InputError("file name too long", _short(path))
    if err.errno == errno.ENOENT and doing == "read":
        return InputError("no such file", str(path))
    return InputError(f"cannot {doing}: {err.strerror or err}", str(path))


def _short(path: Path) -> str:
    """A path short enough for one line of an error message."""
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


def open_input(path: Path, limit: int, what: str = "file") -> BinaryIO:
    """Open ``path`` for reading if it is a regular file of at most ``limit`` bytes (a symlink to one is fine).

    Opened without blocking, so a FIFO is refused rather than waited on; checked on the open file, so
    what is read is what was checked.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise _os_error(err, path, "read") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"is {_kind(info.st_mode)}, not a {what}", str(path))
        if info.st_size > limit:
            raise InputError(
                f"{info.st_size:,} bytes, more than the {limit:,} a {what} may have (see docs/limits.md)", str(path)
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path, limit: int, what: str = "file") -> bytes:
    """The content of the regular file ``path``, refused beyond ``limit`` bytes (see :func:`open_input`)."""
    with open_input(path, limit, what) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as err:
            raise _os_error(err, path, "read") from None
    if len(data) > limit:  # it grew while we read it
        raise InputError(f"more than the {limit:,} bytes a {what} may have (see docs/limits.md)", str(path))
    return data


def read_text(path: Path, limit: int = MAX_TEXT_BYTES, what: str = "file") -> str:
    """The UTF-8 text of the regular file ``path``; see :func:`read_bytes`."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text (byte {err.start:,}: {err.reason})", str(path)) from None


def exists(path: Path) -> bool:
    """``Path.exists``, False for a name the file system cannot look up (too long, a loop of links)."""
    try:
        return path.exists()
    except OSError:
        return False


def resolved(path: Path) -> Path:
    """The absolute path with every symlink followed, to compare files by; a loop of links left as it is, where
    ``Path.resolve`` raises RuntimeError (Python 3.10 to 3.12): the read or write that follows refuses it in one
    line."""
    return Path(os.path.realpath(path))


def output_target(path: Path) -> Path:
    """Where writing ``path`` really writes: the file itself, or the file a symlink points to.

    Refuses, before any work is done, anything that is not a regular file or absent (a device, a
    FIFO, a directory), a folder that does not exist or cannot be written, and a name the file
    system cannot hold. A symlink is written through, never replaced.
    """
    try:
        target = resolved(path) if path.is_symlink() else path
        info = os.stat(target) if os.path.lexists(target) else None
    except OSError as err:
        raise _os_error(err, path, "write") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise InputError(f"is {_kind(info.st_mode)}; hwsim writes regular files only", str(path))
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InputError("no such directory", str(directory))
    if not os.access(directory, os.W_OK):
        raise InputError("cannot write here: permission denied", str(path))
    if len(os.fsencode(target.name)) > _name_max(directory):
        raise InputError("file name too long", _short(path))
    return target


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf, or no such limit: the common one
        return 255


def check_writable(path: Path) -> None:
    """Refuse, before any work is done, an output that cannot be written (see :func:`output_target`)."""
    output_target(path)


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write ``text`` (or bytes: an image) to a temporary file beside the target and rename it onto the
    target, so a failure leaves nothing half-written. Through a symlink, the file it points to is replaced."""
    target = output_target(path)
    try:
        fd, tmp = tempfile.mkstemp(
            dir=target.parent if str(target.parent) else Path("."), prefix=f".{target.name[:100]}.", suffix=".tmp"
        )
    except OSError as err:
        raise _os_error(err, path, "write") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a report should get the usual mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(text if isinstance(text, bytes) else text.encode("utf-8"))
        os.replace(tmp, target)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _os_error(err, path, "write") from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
