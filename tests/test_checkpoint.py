"""A checkpoint that is a valid .npz but carries bad metadata or arrays: one line and exit 2, for predict and resume."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hwsim.cli import main
from tests.training_helpers import write_tiny_network

TINY_RUN = ["--images", "60", "--batch-size", "16", "--lr", "0.01", "--epochs", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """``(network, checkpoint)``: the tiny network after one epoch of Adam, made once for every test here."""
    folder = tmp_path_factory.mktemp("trained")
    network = write_tiny_network(folder)
    result = CliRunner().invoke(main, ["train", str(network), *TINY_RUN, "--checkpoint", str(folder / "run.npz")])
    assert result.exit_code == 0, result.output
    return network, folder / "run.npz"


def rewritten(source: Path, target: Path, change: Callable[[dict[str, np.ndarray], dict], None]) -> Path:
    """A copy of ``source`` at ``target`` after ``change(arrays, meta)`` edits its arrays or its parsed
    metadata in place."""
    with np.load(source) as archive:
        arrays = {key: archive[key] for key in archive.files}
    original = arrays["meta"]
    meta = json.loads(str(original))
    change(arrays, meta)
    if arrays.get("meta") is original:
        arrays["meta"] = np.array(json.dumps(meta))
    np.savez(target, **arrays)
    return target


def set_meta(key: str, value) -> Callable[[dict, dict], None]:
    return lambda arrays, meta: meta.__setitem__(key, value)


def drop_meta(key: str) -> Callable[[dict, dict], None]:
    return lambda arrays, meta: meta.pop(key)


def set_array(key: str, value) -> Callable[[dict, dict], None]:
    return lambda arrays, meta: arrays.__setitem__(key, np.asarray(value))


def drop_array(key: str) -> Callable[[dict, dict], None]:
    return lambda arrays, meta: arrays.pop(key)


def assert_one_line_error(result, *pieces: str) -> None:
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), repr(result.stderr)
    assert all(piece in result.stderr for piece in pieces), result.stderr


BAD_METADATA = [
    pytest.param(drop_meta("network"), "meta.network: field required", id="no-network"),
    pytest.param(
        set_meta("settings", {"foo": 1}), "meta.settings.optimizer: field required", id="settings-unknown-key"
    ),
    pytest.param(set_meta("settings", "x"), "meta.settings: input should be a dictionary", id="settings-string"),
    pytest.param(set_meta("rng", {"bit_generator": "Evil"}), "rng: not a state numpy can restore", id="rng-evil"),
    pytest.param(set_meta("model_rng", 5), "meta.model_rng: input should be a valid dictionary", id="model-rng-int"),
    pytest.param(set_meta("history", [{"bogus": 1}]), "meta.history[0].epoch: field required", id="history-bogus"),
    pytest.param(set_meta("epoch", "x"), "meta.epoch: input should be a valid integer", id="epoch-string"),
    pytest.param(set_meta("epoch", -1), "meta.epoch: input should be greater than or equal to 0", id="epoch-negative"),
    pytest.param(set_meta("adam_t", "x"), "meta.adam_t: input should be a valid integer", id="adam-t-string"),
    pytest.param(set_meta("extra", 1), "meta.extra: extra inputs are not permitted", id="extra-key"),
    pytest.param(set_meta("epoch", 3), "history has 1 rows for epoch 3", id="epoch-beyond-history"),
    pytest.param(drop_array("normalization/mean"), "normalization/mean is missing", id="no-normalization-mean"),
    pytest.param(
        set_array("normalization/mean", np.zeros(7, np.float32)), "normalization/mean has shape (7,)", id="mean-shape-7"
    ),
    pytest.param(
        set_array("normalization/std", np.array(["a", "b", "c"])), "normalization/std holds <U1 values", id="std-text"
    ),
    pytest.param(
        set_array("optimizer/m/stem.weight", np.zeros((2, 2), np.float32)),
        "optimizer/m/stem.weight has shape (2, 2)",
        id="optimizer-slot-shape",
    ),
    pytest.param(
        set_array("optimizer/m/nowhere.weight", np.zeros(3, np.float32)),
        "optimizer/m/nowhere.weight: no such parameter",
        id="optimizer-slot-unknown",
    ),
    pytest.param(
        set_array("optimizer/velocity/stem.weight", np.zeros(3, np.float32)),
        "optimizer/velocity entries in a adam run",
        id="optimizer-slot-of-sgd",
    ),
    pytest.param(set_array("junk", np.zeros(3, np.float32)), "unexpected entry 'junk'", id="unknown-entry"),
]


def change_array(key: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict, dict], None]:
    return lambda arrays, meta: arrays.__setitem__(key, change(arrays[key]))


def with_nan(values: np.ndarray) -> np.ndarray:
    values = values.copy()
    values.flat[0] = np.nan
    return values


CORRUPT_BUT_ONCE_ACCEPTED = [
    pytest.param(
        change_array("params/stem.weight", lambda v: v.astype(np.float64)),
        "params/stem.weight holds float64 values, not float32 ones",
        id="float64-parameters",
    ),
    pytest.param(
        change_array("params/stem.weight", with_nan), "params/stem.weight holds non-finite values", id="nan-parameter"
    ),
    pytest.param(
        change_array("optimizer/v/stem.weight", lambda v: np.full_like(v, np.inf)),
        "optimizer/v/stem.weight holds non-finite values",
        id="inf-optimizer-slot",
    ),
    pytest.param(
        change_array("normalization/std", np.zeros_like),
        "normalization/std: a standard deviation of 0 or less",
        id="zero-std",
    ),
    pytest.param(
        lambda arrays, meta: meta["history"][0].__setitem__("train_loss", float("nan")),
        "history[0].train_loss: nan",
        id="nan-in-history",
    ),
    pytest.param(
        lambda arrays, meta: meta["history"][0].__setitem__("validation_accuracy", 1.5),
        "history[0].validation_accuracy: 1.5, expected a number in [0, 1]",
        id="accuracy-beyond-1",
    ),
    pytest.param(
        set_meta("adam_t", 10**400), "meta.adam_t: input should be less than or equal to", id="adam-t-beyond-a-float"
    ),
]


@pytest.mark.parametrize("change, message", BAD_METADATA + CORRUPT_BUT_ONCE_ACCEPTED)
@pytest.mark.parametrize("command", ["predict", "resume"])
def test_a_checkpoint_with_bad_contents_is_one_line_and_exit_2(
    runner, trained, tmp_path: Path, change, message: str, command: str
) -> None:
    network, source = trained
    with np.load(source) as archive:
        assert "optimizer/m/stem.weight" in archive.files  # the key the shape cases edit
    checkpoint = rewritten(source, tmp_path / "bad.npz", change)
    args = (
        ["predict", str(network), "--checkpoint", str(checkpoint), "--images", "10"]
        if command == "predict"
        else ["train", str(network), "--resume", str(checkpoint), "--epochs", "1"]
    )
    result = runner.invoke(main, args)
    assert_one_line_error(result, f"error: {checkpoint}: corrupt checkpoint: ", message)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2]", "meta: a JSON list, not an object"),
        ("{not json", "meta: Expecting property name"),
    ],
)
def test_metadata_that_is_not_a_json_object_is_one_line(
    runner, trained, tmp_path: Path, text: str, message: str
) -> None:
    network, source = trained
    checkpoint = rewritten(
        source, tmp_path / "meta.npz", lambda arrays, meta: arrays.__setitem__("meta", np.array(text))
    )
    result = runner.invoke(main, ["predict", str(network), "--checkpoint", str(checkpoint)])
    assert_one_line_error(result, f"{checkpoint}: corrupt checkpoint: {message}")


def test_a_renamed_npy_file_is_one_line(runner, trained, tmp_path: Path) -> None:
    network, _ = trained
    checkpoint = tmp_path / "array.npz"
    with open(checkpoint, "wb") as f:
        np.save(f, np.zeros(3))
    result = runner.invoke(main, ["predict", str(network), "--checkpoint", str(checkpoint)])
    assert_one_line_error(result, f"{checkpoint}: not an .npz archive but a single array (.npy)")


def test_an_untouched_checkpoint_still_resumes_and_predicts(runner, trained, tmp_path: Path) -> None:
    network, source = trained
    checkpoint = rewritten(source, tmp_path / "same.npz", lambda arrays, meta: None)
    assert (
        runner.invoke(main, ["predict", str(network), "--checkpoint", str(checkpoint), "--images", "10"]).exit_code == 0
    )
    result = runner.invoke(main, ["train", str(network), "--resume", str(checkpoint), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "trained to epoch 2" in result.stdout


def test_metadata_nested_without_end_is_one_line(runner, trained, tmp_path: Path) -> None:
    # once a RecursionError in predict and train
    network, source = trained

    def nest(arrays: dict, meta: dict) -> None:
        deep = "[" * 100_000 + "]" * 100_000
        arrays["meta"] = np.array(json.dumps(meta)[:-1] + f', "deep": {deep}}}')

    checkpoint = rewritten(source, tmp_path / "deep.npz", nest)
    for args in (["predict", str(network), "--checkpoint"], ["train", str(network), "--resume"]):
        result = runner.invoke(main, [*args, str(checkpoint)])
        assert_one_line_error(result, "corrupt checkpoint: meta: nested more than 16 levels deep")


@pytest.mark.slow
def test_a_zip_bomb_is_refused_from_the_zip_directory_before_decompressing(runner, trained, tmp_path: Path) -> None:
    import tracemalloc
    import zipfile

    network, source = trained
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in original.infolist():
            archive.writestr(info.filename, original.read(info))
        with archive.open("params/extra.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": (2**26,)})
            for _ in range(256):
                member.write(bytes(2**20))  # 256 MB of zeros, a few hundred kB compressed
    assert bomb.stat().st_size < 2_000_000
    tracemalloc.start()
    result = runner.invoke(main, ["predict", str(network), "--checkpoint", str(bomb)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert_one_line_error(result, "corrupt checkpoint: ", "entries holding 268,", "more than a checkpoint of this")
    assert peak < 20_000_000


def test_an_entry_whose_header_disagrees_with_its_size_is_refused(runner, trained, tmp_path: Path) -> None:
    import zipfile

    network, source = trained
    liar = tmp_path / "liar.npz"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(liar, "w") as archive:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "params/stem.weight.npy":
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": "<f4", "fortran_order": False, "shape": (10**9,)}
                )
                data = header.getvalue() + data[-16:]
            archive.writestr(info.filename, data)
    result = runner.invoke(main, ["predict", str(network), "--checkpoint", str(liar)])
    assert_one_line_error(result, "params/stem.weight: its header says (1000000000,) float32, its entry holds")


@pytest.mark.parametrize("make", ["fifo", "device"])
def test_a_checkpoint_that_is_not_a_regular_file_is_refused_unread(runner, trained, tmp_path: Path, make: str) -> None:
    network, _ = trained
    path = Path("/dev/zero") if make == "device" else tmp_path / "run.npz"
    if make == "fifo":
        os.mkfifo(path)
    result = runner.invoke(main, ["predict", str(network), "--checkpoint", str(path)])
    assert_one_line_error(result, "is a character device" if make == "device" else "is a FIFO", "not a checkpoint")


def test_a_constant_channel_is_saved_with_the_floor_it_is_divided_by(tmp_path: Path) -> None:
    from hwsim import api
    from hwsim.training.checkpoint import load_checkpoint, save_checkpoint
    from hwsim.training.data import MIN_STD, Dataset
    from hwsim.training.train import OptimizerSettings, TrainSettings, start_run

    images = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)
    images[..., 0] = 0.5  # no variation in red: a standard deviation of 0
    graph = api.load_network(write_tiny_network(tmp_path))
    run = start_run(
        graph, TrainSettings(OptimizerSettings("adam", 0.01)), Dataset(images, np.arange(8), tuple("0123456789"))
    )
    assert run.normalization.std[0] == np.float32(MIN_STD) and run.normalization.std[1] > MIN_STD
    save_checkpoint(run, tmp_path / "run.npz")
    assert load_checkpoint(tmp_path / "run.npz", graph).normalization.std[0] == np.float32(MIN_STD)
