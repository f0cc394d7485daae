"""CIFAR-10 loading from tiny folders in the official python and binary formats, written here."""

import codecs
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from hwsim.errors import InputError
from hwsim.training.data import CifarFormat, detect_cifar10_format, load_cifar10

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
IMAGES_PER_BATCH = 3
# A marked pixel: image 1 of data_batch_2 has value 200 at row 5, column 7, channel 2 (blue).
MARK_BATCH, MARK_IMAGE, MARK_ROW, MARK_COL, MARK_CHANNEL, MARK_VALUE = 1, 1, 5, 7, 2, 200


def batch_contents(batch_index: int) -> tuple[np.ndarray, list[int]]:
    """Rows uint8 (3, 3072) filled with the batch index (the mark aside) and labels batch_index + 0..2."""
    rows = np.full((IMAGES_PER_BATCH, 3072), batch_index, dtype=np.uint8)
    if batch_index == MARK_BATCH:
        rows[MARK_IMAGE, MARK_CHANNEL * 1024 + MARK_ROW * 32 + MARK_COL] = MARK_VALUE
    return rows, [(batch_index + i) % 10 for i in range(IMAGES_PER_BATCH)]


def write_pickle(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))  # the official files are protocol 2


@pytest.fixture
def python_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for index, name in enumerate(BATCHES):
        rows, labels = batch_contents(index)
        write_pickle(
            folder / name,
            {b"batch_label": name.encode(), b"labels": labels, b"data": rows, b"filenames": [b"x.png"] * len(labels)},
        )
    write_pickle(folder / "batches.meta", {b"label_names": [n.encode() for n in NAMES], b"num_vis": 3072})
    return folder


@pytest.fixture
def binary_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for index, name in enumerate(BATCHES):
        rows, labels = batch_contents(index)
        records = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], rows], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(NAMES) + "\n\n")
    return folder


@pytest.mark.parametrize("folder_fixture", ["python_folder", "binary_folder"])
def test_both_formats_load_pixels_and_labels_in_place(folder_fixture, request):
    cifar = load_cifar10(request.getfixturevalue(folder_fixture))
    assert cifar.train.images.shape == (15, 32, 32, 3) and cifar.train.images.dtype == np.float32
    assert cifar.test.images.shape == (3, 32, 32, 3)
    assert cifar.train.class_names == tuple(NAMES)
    marked = cifar.train.images[MARK_BATCH * IMAGES_PER_BATCH + MARK_IMAGE]
    assert marked[MARK_ROW, MARK_COL, MARK_CHANNEL] == pytest.approx(MARK_VALUE / 255)
    assert np.count_nonzero(marked != marked[0, 0, 0]) == 1  # no other pixel moved there
    expected_train = [(b + i) % 10 for b in range(5) for i in range(IMAGES_PER_BATCH)]
    assert cifar.train.labels.tolist() == expected_train and cifar.train.labels.dtype == np.int64
    assert cifar.test.labels.tolist() == [5, 6, 7]
    assert np.all(cifar.test.images == np.float32(5 / 255))
    assert np.all(cifar.train.images[:3] == 0.0) and np.all(cifar.train.images[12:] == np.float32(4 / 255))


def test_format_is_detected_in_the_folder_or_its_parent(python_folder, binary_folder):
    assert detect_cifar10_format(python_folder) == (CifarFormat.PYTHON, python_folder)
    assert detect_cifar10_format(binary_folder) == (CifarFormat.BINARY, binary_folder)
    assert detect_cifar10_format(python_folder.parent)[0] is CifarFormat.PYTHON


def test_wrong_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(InputError, match="not a folder") as missing:
        load_cifar10(tmp_path / "nowhere")
    assert missing.value.where == str(tmp_path / "nowhere")
    with pytest.raises(InputError, match="no CIFAR-10 batches here"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize(
    "folder_fixture, missing",
    [("python_folder", "data_batch_4"), ("python_folder", "batches.meta"), ("binary_folder", "test_batch.bin")],
)
def test_a_missing_file_is_named(folder_fixture, missing, request):
    folder = request.getfixturevalue(folder_fixture)
    (folder / missing).unlink()
    with pytest.raises(InputError, match="missing file") as error:
        load_cifar10(folder)
    assert error.value.where == str(folder / missing)


class RunsShellCommand:
    """What an attacker would put in a pickle: unpickling it runs ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class CallsOtherCodec:
    def __reduce__(self):
        return codecs.encode, ("text", "utf-16")


@pytest.mark.parametrize("where", ["whole file", "inside data", "inside meta"])
def test_a_pickle_that_would_run_code_is_refused_and_never_runs(python_folder, tmp_path, where):
    marker = tmp_path / "pwned"
    attack = RunsShellCommand(marker)
    if where == "whole file":
        write_pickle(python_folder / "data_batch_3", attack)
    elif where == "inside data":
        write_pickle(python_folder / "data_batch_3", {b"data": attack, b"labels": [0]})
    else:
        write_pickle(python_folder / "batches.meta", {b"label_names": [attack]})
    with pytest.raises(InputError, match=r"unsafe pickle, refused to load (posix|nt)\.system") as error:
        load_cifar10(python_folder)
    assert error.value.where.endswith("data_batch_3" if where != "inside meta" else "batches.meta")
    assert not marker.exists()


def test_the_attack_is_live_under_a_plain_unpickler(tmp_path):
    """So the refusal test above can fail: plain ``pickle.loads`` of the same object runs the command."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(RunsShellCommand(marker), protocol=2))
    assert marker.exists()


def test_bytes_rebuilder_admits_latin1_only(python_folder):
    write_pickle(python_folder / "data_batch_1", {b"data": CallsOtherCodec(), b"labels": [0]})
    with pytest.raises(InputError, match="refused _codecs.encode with encoding 'utf-16'"):
        load_cifar10(python_folder)


def test_truncated_and_garbage_pickles_are_reported_as_corrupt(python_folder):
    whole = (python_folder / "data_batch_2").read_bytes()
    (python_folder / "data_batch_2").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="corrupt or truncated pickle") as error:
        load_cifar10(python_folder)
    assert error.value.where.endswith("data_batch_2")
    (python_folder / "data_batch_2").write_bytes(b"\x00not a pickle at all")
    with pytest.raises(InputError, match="corrupt or truncated pickle"):
        load_cifar10(python_folder)


@pytest.mark.parametrize(
    "batch, message",
    [
        ([1, 2], "expected a dict with keys b'data' and b'labels'"),
        (
            {b"data": np.zeros((3, 1024), np.uint8), b"labels": [0, 1, 2]},
            r"uint8 array of shape \(N, 3072\), got uint8 array of shape \(3, 1024\)",
        ),
        ({b"data": np.zeros((3, 3072), np.float32), b"labels": [0, 1, 2]}, "got float32 array"),
        ({b"data": [0] * 3072, b"labels": [0]}, "got list"),
        ({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]}, "2 labels for 3 images"),
        ({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 10, 1]}, r"label 10 at index 1 is outside 0\.\.9"),
        ({b"data": np.zeros((3, 3072), np.uint8), b"labels": [b"a", b"b", b"c"]}, "labels must be a list of integers"),
    ],
)
def test_malformed_python_batches_are_explained(python_folder, batch, message):
    write_pickle(python_folder / "test_batch", batch)
    with pytest.raises(InputError, match=message) as error:
        load_cifar10(python_folder)
    assert error.value.where.endswith("test_batch")


def test_binary_batch_of_partial_records_or_bad_labels_is_explained(binary_folder):
    path = binary_folder / "data_batch_5.bin"
    whole = path.read_bytes()
    path.write_bytes(whole[:-1])
    with pytest.raises(InputError, match="not a whole, non-zero number of 3073-byte records") as error:
        load_cifar10(binary_folder)
    assert error.value.where == str(path)
    path.write_bytes(bytes([12]) + whole[1:])
    with pytest.raises(InputError, match=r"label 12 at index 0 is outside 0\.\.9"):
        load_cifar10(binary_folder)


def test_error_is_one_line_naming_the_file(python_folder):
    (python_folder / "data_batch_1").write_bytes(b"")
    with pytest.raises(InputError) as error:
        load_cifar10(python_folder)
    text = str(error.value)
    assert "\n" not in text and text.startswith(str(python_folder / "data_batch_1") + ": ")
