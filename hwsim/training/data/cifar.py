"""CIFAR-10 from a local folder, in its official python (pickled) or binary format.

Both formats store each image as 3072 bytes: the red, then green, then blue 32x32 plane, each
row-major (``(3, 32, 32)``); labels are 0..9. Nothing here downloads, and the python batches are
read with ``load_restricted_pickle``, which never runs code from the file.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim import files
from hwsim.errors import InputError
from hwsim.training.data.dataset import Dataset
from hwsim.training.data.safe_pickle import MAX_PICKLE_BYTES, load_restricted_pickle

PIXELS_PER_IMAGE = 3 * 32 * 32
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"


class CifarFormat(enum.Enum):
    PYTHON = "python"  # cifar-10-batches-py: data_batch_1..5, test_batch, batches.meta (pickles)
    BINARY = "binary"  # cifar-10-batches-bin: data_batch_1..5.bin, test_batch.bin, batches.meta.txt


_META_FILE = {CifarFormat.PYTHON: "batches.meta", CifarFormat.BINARY: "batches.meta.txt"}
_BATCH_SUFFIX = {CifarFormat.PYTHON: "", CifarFormat.BINARY: ".bin"}
_OFFICIAL_FOLDER = {CifarFormat.PYTHON: "cifar-10-batches-py", CifarFormat.BINARY: "cifar-10-batches-bin"}


@dataclass(frozen=True)
class Cifar10:
    """The official split: 50,000 training and 10,000 test images (fewer in a cut-down folder)."""

    train: Dataset
    test: Dataset


def detect_cifar10_format(folder: str | Path) -> tuple[CifarFormat, Path]:
    """The format of the CIFAR-10 batches in ``folder`` or in its ``cifar-10-batches-py``/``-bin``
    subfolder, and the folder that holds them."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError("not a folder (expected a CIFAR-10 batches folder)", where=str(folder))
    for candidate in (folder, *(folder / name for name in _OFFICIAL_FOLDER.values())):
        for cifar_format in CifarFormat:
            if (candidate / f"data_batch_1{_BATCH_SUFFIX[cifar_format]}").is_file():
                return cifar_format, candidate
    raise InputError(
        "no CIFAR-10 batches here: expected data_batch_1..5 and test_batch (python format), "
        "data_batch_1.bin..5.bin and test_batch.bin (binary format), or a cifar-10-batches-py/-bin folder",
        where=str(folder),
    )


def load_cifar10(folder: str | Path) -> Cifar10:
    """Load CIFAR-10 from ``folder`` in whichever official format it holds; images float32 in [0, 1]."""
    cifar_format, batches_folder = detect_cifar10_format(folder)
    _require_files(batches_folder, cifar_format)
    if cifar_format is CifarFormat.PYTHON:
        class_names = _python_class_names(batches_folder / "batches.meta")
        read_batch = _read_python_batch
    else:
        class_names = _binary_class_names(batches_folder / "batches.meta.txt")
        read_batch = _read_binary_batch
    suffix = _BATCH_SUFFIX[cifar_format]

    def dataset(batch_names: tuple[str, ...]) -> Dataset:
        rows, labels = zip(*(read_batch(batches_folder / f"{name}{suffix}", len(class_names)) for name in batch_names))
        return Dataset(_images_from_rows(np.concatenate(rows)), np.concatenate(labels), class_names)

    return Cifar10(train=dataset(TRAIN_BATCHES), test=dataset((TEST_BATCH,)))


def _require_files(folder: Path, cifar_format: CifarFormat) -> None:
    """Fail on the first missing file, before reading any."""
    suffix = _BATCH_SUFFIX[cifar_format]
    for name in (*(f"{batch}{suffix}" for batch in (*TRAIN_BATCHES, TEST_BATCH)), _META_FILE[cifar_format]):
        if not (folder / name).is_file():
            raise InputError(f"missing file of the CIFAR-10 {cifar_format.value} format", where=str(folder / name))


def _images_from_rows(rows: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 3072)`` rows, each ``(3, 32, 32)`` row-major, to float32 ``(N, 32, 32, 3)`` in [0, 1]."""
    images = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.multiply(images, np.float32(1 / 255), dtype=np.float32)


def _checked_labels(labels: np.ndarray, num_classes: int, path: Path) -> np.ndarray:
    """Labels as int64 ``(N,)``, each in ``range(num_classes)``."""
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise InputError(
            f"labels must be a list of integers, got {labels.dtype} of shape {labels.shape}", where=str(path)
        )
    outside = (labels < 0) | (labels >= num_classes)
    if outside.any():
        index = int(np.flatnonzero(outside)[0])
        raise InputError(f"label {labels[index]} at index {index} is outside 0..{num_classes - 1}", where=str(path))
    return labels.astype(np.int64)


def _read_python_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows uint8 (N, 3072), labels int64 (N,))`` from a pickled dict with ``b"data"`` and ``b"labels"``."""
    batch = load_restricted_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise InputError("not a CIFAR-10 batch: expected a dict with keys b'data' and b'labels'", where=str(path))
    rows = batch[b"data"]
    if (
        not isinstance(rows, np.ndarray)
        or rows.dtype != np.uint8
        or rows.ndim != 2
        or rows.shape[1] != PIXELS_PER_IMAGE
    ):
        found = f"{rows.dtype} array of shape {rows.shape}" if isinstance(rows, np.ndarray) else type(rows).__name__
        raise InputError(
            f"b'data' must be a uint8 array of shape (N, {PIXELS_PER_IMAGE}), got {found}", where=str(path)
        )
    labels = _checked_labels(np.asarray(batch[b"labels"]), num_classes, path)
    if len(labels) != len(rows):
        raise InputError(f"{len(labels)} labels for {len(rows)} images", where=str(path))
    return rows, labels


def _python_class_names(path: Path) -> tuple[str, ...]:
    """``b"label_names"`` of the pickled ``batches.meta``."""
    meta = load_restricted_pickle(path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(name, bytes) for name in names):
        raise InputError("expected a dict whose b'label_names' is a non-empty list of byte strings", where=str(path))
    return tuple(name.decode("utf-8", errors="replace") for name in names)


def _read_binary_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows uint8 (N, 3072), labels int64 (N,))`` from records of 1 label byte + 3072 pixel bytes."""
    record = np.frombuffer(files.read_bytes(path, MAX_PICKLE_BYTES, "CIFAR-10 file"), dtype=np.uint8)
    record_bytes = 1 + PIXELS_PER_IMAGE
    if record.size == 0 or record.size % record_bytes:
        raise InputError(
            f"size {record.size} bytes is not a whole, non-zero number of {record_bytes}-byte records", where=str(path)
        )
    records = record.reshape(-1, record_bytes)
    return records[:, 1:], _checked_labels(records[:, 0], num_classes, path)


def _binary_class_names(path: Path) -> tuple[str, ...]:
    """One class name per non-empty line of ``batches.meta.txt``."""
    names = tuple(
        line.strip()
        for line in files.read_bytes(path, files.MAX_TEXT_BYTES, "class names file")
        .decode("utf-8", errors="replace")
        .splitlines()
        if line.strip()
    )
    if not names:
        raise InputError("no class names (expected one per line)", where=str(path))
    return names
