"""A checkpoint that is a valid .npz but carries bad metadata or arrays: one line and exit 2, for predict and resume."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("change, message", BAD_METADATA)
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
