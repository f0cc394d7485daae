"""Read a pickle that may only build numpy arrays, lists, dicts, numbers and bytes: never run its code.

A pickle names the functions it calls to rebuild objects (``GLOBAL`` opcodes); ``find_class``
resolves those names. Ours resolves only the ones a CIFAR-10 batch needs, to objects we pick
ourselves (nothing is imported on the file's say-so), and refuses every other name.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from hwsim import files
from hwsim.errors import InputError

MAX_PICKLE_BYTES = 200_000_000
"""A CIFAR-10 batch is 31 MB; a pickle many times larger is not one, and would be read whole into memory."""


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """What Python 3 protocol-2 pickles call to rebuild ``bytes`` (``_codecs.encode(text, "latin1")``)."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r} (only latin1 rebuilds bytes)")
    return text.encode("latin1")


# numpy's own array rebuilder, found without naming its module (numpy.core or numpy._core by version).
_reconstruct_ndarray = np.empty(0).__reduce__()[0]

# (module, name) as written in the pickle -> the object it stands for.
# numpy arrays pickle as _reconstruct(ndarray, shape, dtype) + state; Python 2 files (the official
# CIFAR-10 batches) and numpy < 2 name numpy.core, numpy >= 2 names numpy._core.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct_ndarray,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct_ndarray,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asked for a function or class outside ``ALLOWED_GLOBALS``."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` admits only ``ALLOWED_GLOBALS``."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(
                f"refused to load {module}.{name} (only numpy arrays, lists and bytes are allowed)"
            ) from None


def load_restricted_pickle(path: Path) -> object:
    """Unpickle ``path`` with ``RestrictedUnpickler`` (Python 2 strings kept as ``bytes``).

    Raises ``InputError`` naming the file for a missing, unreadable, corrupt or truncated file and
    for any global outside ``ALLOWED_GLOBALS``.
    """
    data = files.read_bytes(path, MAX_PICKLE_BYTES, "CIFAR-10 file")
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RefusedGlobal as err:
        raise InputError(f"unsafe pickle, {err}", where=str(path)) from None
    # A damaged pickle fails in many ways; each means the same thing to the user.
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
        MemoryError,
        LookupError,
    ) as err:
        raise InputError(f"corrupt or truncated pickle ({type(err).__name__}: {err})", where=str(path)) from None
