"""hwsim train, predict and experiment through the CLI: tiny runs, resume, and one-line errors for bad data."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwsim.cli import main
from tests.test_data_cifar import BATCHES, NAMES, write_pickle
from tests.training_helpers import write_tiny_network

TINY_RUN = ["--images", "60", "--batch-size", "16", "--lr", "0.01"]


@pytest.fixture
def network(tmp_path: Path) -> str:
    return str(write_tiny_network(tmp_path))


@pytest.fixture
def cifar_folder(tmp_path: Path) -> Path:
    """The official python format, 4 random images per batch."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in BATCHES:
        write_pickle(folder / name, {b"labels": [0, 1, 2, 3], b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8)})
    write_pickle(folder / "batches.meta", {b"label_names": [n.encode() for n in NAMES]})
    return folder


def invoke(runner, *args: str):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, *pieces: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(piece in lines[0] for piece in pieces), lines[0]


def reproducible(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns="seconds")


def test_train_then_resume_equals_one_uninterrupted_run(runner, network: str, tmp_path: Path) -> None:
    whole, part = tmp_path / "whole", tmp_path / "part"
    whole.mkdir(), part.mkdir()
    result = invoke(runner, "train", network, *TINY_RUN, "--epochs", "3", "--checkpoint", whole / "run.npz", "--metrics", whole / "m.csv")
    assert result.exit_code == 0, result.output
    assert "epoch 3: train loss" in result.stdout and f"wrote {whole / 'run.npz'}" in result.stdout

    invoke(runner, "train", network, *TINY_RUN, "--epochs", "1", "--checkpoint", part / "run.npz")
    result = invoke(runner, "train", network, "--resume", part / "run.npz", "--epochs", "2", "--metrics", part / "m.csv")
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(reproducible(part / "m.csv"), reproducible(whole / "m.csv"))
    with np.load(whole / "run.npz") as expected, np.load(part / "run.npz") as actual:
        weights = [key for key in expected.files if key.startswith(("params/", "state/", "optimizer/"))]
        assert weights and all(np.array_equal(expected[key], actual[key]) for key in weights)


def test_predict_reports_accuracy_on_unseen_images_and_writes_predictions(runner, network: str, tmp_path: Path) -> None:
    invoke(runner, "train", network, *TINY_RUN, "--epochs", "1", "--checkpoint", tmp_path / "run.npz")
    result = invoke(runner, "predict", network, "--checkpoint", tmp_path / "run.npz", "--images", "30", "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    assert "on 30 test images" in result.stdout and "most often mistaken for" in result.stdout
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns) == ["index", "label", "predicted", "probability"] and len(predictions) == 30


def test_train_and_predict_on_a_cifar10_folder(runner, network: str, cifar_folder: Path, tmp_path: Path) -> None:
    result = invoke(runner, "train", network, "--data", cifar_folder, "--epochs", "1", "--checkpoint", tmp_path / "run.npz")
    assert result.exit_code == 0, result.output
    assert f"CIFAR-10 from {cifar_folder}" in result.stdout
    result = invoke(runner, "predict", network, "--checkpoint", tmp_path / "run.npz")
    assert result.exit_code == 0, result.output
    assert "airplane" in result.stdout and "on 4 test images" in result.stdout


def test_experiment_writes_curves_and_a_figure(runner, network: str, tmp_path: Path) -> None:
    result = invoke(runner, "experiment", "head", "--network", network, "--epochs", "1", "--images", "40", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    curves = pd.read_csv(tmp_path / "head.csv")
    assert curves["arm"].tolist() == ["fully convolutional head", "dense layer after GAP"]
    assert curves["network"].tolist() == ["tiny", "tiny-dense-head"]
    assert (tmp_path / "head.png").read_bytes().startswith(b"\x89PNG")


def malicious(folder: Path) -> None:
    class Shell:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Shell(), b"labels": [0]}))


def corrupt(folder: Path) -> None:
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:40])


@pytest.mark.parametrize("spoil, pieces", [
    (malicious, ("data_batch_2", "unsafe pickle", "system")),
    (corrupt, ("data_batch_3", "corrupt or truncated pickle")),
    (lambda folder: (folder / "test_batch").unlink(), ("test_batch", "missing file")),
])
def test_bad_cifar_data_is_one_line_and_exit_2(runner, network: str, cifar_folder: Path, spoil, pieces) -> None:
    spoil(cifar_folder)
    assert_one_line_error(invoke(runner, "train", network, "--data", cifar_folder, "--epochs", "1"), *pieces)


def test_a_folder_without_cifar10_is_one_line_and_exit_2(runner, network: str, tmp_path: Path) -> None:
    assert_one_line_error(invoke(runner, "train", network, "--data", tmp_path, "--epochs", "1"), str(tmp_path), "no CIFAR-10 batches here")
    assert_one_line_error(invoke(runner, "train", network, "--data", tmp_path / "nowhere", "--epochs", "1"), "not a folder")


def test_resume_errors_are_one_line_and_exit_2(runner, network: str, tmp_path: Path) -> None:
    invoke(runner, "train", network, *TINY_RUN, "--epochs", "1", "--checkpoint", tmp_path / "run.npz")
    other = write_tiny_network(tmp_path, "other")
    assert_one_line_error(invoke(runner, "train", other, "--resume", tmp_path / "run.npz"), "checkpoint of network 'tiny', not 'other'")
    assert_one_line_error(invoke(runner, "train", network, "--resume", tmp_path / "run.npz", "--lr", "0.5"),
                          "learning_rate 0.5 differs from the checkpoint's 0.01")
    assert_one_line_error(invoke(runner, "train", network, "--resume", tmp_path / "missing.npz"), "no such checkpoint file")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert_one_line_error(invoke(runner, "predict", network, "--checkpoint", tmp_path / "junk.npz"), "not a readable .npz checkpoint")


def test_outputs_in_a_missing_folder_are_refused_before_training(runner, network: str, tmp_path: Path) -> None:
    result = invoke(runner, "train", network, *TINY_RUN, "--checkpoint", tmp_path / "nowhere" / "run.npz")
    assert_one_line_error(result, "no such directory")
    assert "epoch 1" not in result.stdout
    assert_one_line_error(invoke(runner, "experiment", "head", "-o", tmp_path / "nowhere"), "no such directory")
