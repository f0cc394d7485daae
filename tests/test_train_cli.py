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
    """Exit 2 and exactly one line on stderr (no empty line before it), holding every piece."""
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), repr(result.stderr)
    assert all(piece in result.stderr for piece in pieces), result.stderr


def assert_usage_error(result, option: str, complaint: str) -> None:
    """click's own refusal of an option value: exit 2, naming the option and the allowed range."""
    assert result.exit_code == 2, result.output
    assert f"error: Invalid value for '{option}': {complaint}" in result.stderr, result.stderr


def reproducible(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns="seconds")


def test_train_then_resume_equals_one_uninterrupted_run(runner, network: str, tmp_path: Path) -> None:
    whole, part = tmp_path / "whole", tmp_path / "part"
    whole.mkdir(), part.mkdir()
    result = invoke(
        runner,
        "train",
        network,
        *TINY_RUN,
        "--epochs",
        "3",
        "--checkpoint",
        whole / "run.npz",
        "--metrics",
        whole / "m.csv",
    )
    assert result.exit_code == 0, result.output
    assert "epoch 3: train loss" in result.stdout and f"wrote {whole / 'run.npz'}" in result.stdout

    invoke(runner, "train", network, *TINY_RUN, "--epochs", "1", "--checkpoint", part / "run.npz")
    result = invoke(
        runner, "train", network, "--resume", part / "run.npz", "--epochs", "2", "--metrics", part / "m.csv"
    )
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(reproducible(part / "m.csv"), reproducible(whole / "m.csv"))
    with np.load(whole / "run.npz") as expected, np.load(part / "run.npz") as actual:
        weights = [key for key in expected.files if key.startswith(("params/", "state/", "optimizer/"))]
        assert weights and all(np.array_equal(expected[key], actual[key]) for key in weights)


def test_predict_reports_accuracy_on_unseen_images_and_writes_predictions(runner, network: str, tmp_path: Path) -> None:
    invoke(runner, "train", network, *TINY_RUN, "--epochs", "1", "--checkpoint", tmp_path / "run.npz")
    result = invoke(
        runner, "predict", network, "--checkpoint", tmp_path / "run.npz", "--images", "30", "-o", tmp_path / "p.csv"
    )
    assert result.exit_code == 0, result.output
    assert "on 30 test images" in result.stdout and "most often mistaken for" in result.stdout
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns) == ["index", "label", "predicted", "probability"] and len(predictions) == 30


def test_train_and_predict_on_a_cifar10_folder(runner, network: str, cifar_folder: Path, tmp_path: Path) -> None:
    result = invoke(
        runner, "train", network, "--data", cifar_folder, "--epochs", "1", "--checkpoint", tmp_path / "run.npz"
    )
    assert result.exit_code == 0, result.output
    assert f"CIFAR-10 from {cifar_folder}" in result.stdout
    result = invoke(runner, "predict", network, "--checkpoint", tmp_path / "run.npz")
    assert result.exit_code == 0, result.output
    assert "airplane" in result.stdout and "on 4 test images" in result.stdout


def test_experiment_writes_curves_and_a_figure(runner, network: str, tmp_path: Path) -> None:
    result = invoke(
        runner, "experiment", "head", "--network", network, "--epochs", "1", "--images", "40", "-o", tmp_path
    )
    assert result.exit_code == 0, result.output
    curves = pd.read_csv(tmp_path / "head.csv")
    assert curves["arm"].tolist() == ["fully convolutional head"] * 3 + ["dense layer after GAP"] * 3
    assert curves["seed"].tolist() == [0, 1, 2] * 2  # --seeds defaults to 3, from --seed 0
    assert curves["network"].tolist() == ["tiny"] * 3 + ["tiny-dense-head"] * 3
    assert set(curves["numpy"]) == {np.__version__} and curves["blas"].str.contains("1 thread").all()
    assert (tmp_path / "head.png").read_bytes().startswith(b"\x89PNG")
    summary = (tmp_path / "summary.md").read_text()
    assert f"NumPy {np.__version__}" in summary and "mean of 3 seeds" in summary
    assert "head: " in result.stdout and (" ahead of " in result.stdout or " level in " in result.stdout)


def malicious(folder: Path) -> None:
    class Shell:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Shell(), b"labels": [0]}))


def corrupt(folder: Path) -> None:
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:40])


@pytest.mark.parametrize(
    "spoil, pieces",
    [
        (malicious, ("data_batch_2", "unsafe pickle", "system")),
        (corrupt, ("data_batch_3", "corrupt or truncated pickle")),
        (lambda folder: (folder / "test_batch").unlink(), ("test_batch", "missing file")),
    ],
)
def test_bad_cifar_data_is_one_line_and_exit_2(runner, network: str, cifar_folder: Path, spoil, pieces) -> None:
    spoil(cifar_folder)
    assert_one_line_error(invoke(runner, "train", network, "--data", cifar_folder, "--epochs", "1"), *pieces)


def test_a_folder_without_cifar10_is_one_line_and_exit_2(runner, network: str, tmp_path: Path) -> None:
    assert_one_line_error(
        invoke(runner, "train", network, "--data", tmp_path, "--epochs", "1"), str(tmp_path), "no CIFAR-10 batches here"
    )
    assert_one_line_error(
        invoke(runner, "train", network, "--data", tmp_path / "nowhere", "--epochs", "1"), "not a folder"
    )


def test_resume_errors_are_one_line_and_exit_2(runner, network: str, tmp_path: Path) -> None:
    invoke(runner, "train", network, *TINY_RUN, "--epochs", "1", "--checkpoint", tmp_path / "run.npz")
    other = write_tiny_network(tmp_path, "other")
    assert_one_line_error(
        invoke(runner, "train", other, "--resume", tmp_path / "run.npz"), "checkpoint of network 'tiny', not 'other'"
    )
    assert_one_line_error(
        invoke(runner, "train", network, "--resume", tmp_path / "run.npz", "--lr", "0.5"),
        "learning_rate 0.5 differs from the checkpoint's 0.01",
    )
    assert_one_line_error(
        invoke(runner, "train", network, "--resume", tmp_path / "missing.npz"), "no such checkpoint file"
    )
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert_one_line_error(
        invoke(runner, "predict", network, "--checkpoint", tmp_path / "junk.npz"), "not a readable .npz checkpoint"
    )


def test_outputs_in_a_missing_folder_are_refused_before_training(runner, network: str, tmp_path: Path) -> None:
    result = invoke(runner, "train", network, *TINY_RUN, "--checkpoint", tmp_path / "nowhere" / "run.npz")
    assert_one_line_error(result, "no such directory")
    assert "epoch 1" not in result.stdout


@pytest.mark.parametrize(
    "args, option",
    [
        (["train", "{network}", "--seed", "-1"], "--seed"),
        (["train", "{network}", "--data-seed", "-5"], "--data-seed"),
        (["predict", "{network}", "--checkpoint", "run.npz", "--data-seed", "-1"], "--data-seed"),
        (["experiment", "head", "--network", "{network}", "--seed", "-1", "-o", "e/"], "--seed"),
    ],
)
def test_negative_seeds_are_refused_by_the_option(runner, network: str, args: list[str], option: str) -> None:
    result = invoke(runner, *[a.format(network=network) for a in args])
    value = args[args.index(option) + 1]
    assert_usage_error(result, option, f"{value} is not in the range x>=0")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "inf"], "learning rate must be a finite number > 0, got inf"),
        (["--lr", "nan"], "learning rate must be a finite number > 0, got nan"),
        (["--lr", "0"], "learning rate must be a finite number > 0, got 0.0"),
        (["--optimizer", "sgd", "--momentum", "nan"], "momentum must be a finite number in [0, 1), got nan"),
        (["--optimizer", "sgd", "--momentum", "-1"], "momentum must be a finite number in [0, 1), got -1.0"),
        (["--optimizer", "sgd", "--momentum", "5"], "momentum must be a finite number in [0, 1), got 5.0"),
        (["--optimizer", "sgd", "--momentum", "1"], "momentum must be a finite number in [0, 1), got 1.0"),
        (["--images", "2"], "2 images with a validation fraction of 0.1 leave 2 to train on and 0 to validate"),
        (
            ["--images", "10", "--validation", "0.99"],
            "10 images with a validation fraction of 0.99 leave 0 to train on and 10 to validate",
        ),
        (["--images", "100000000"], "at most 1,000,000 generated images, got 100,000,000"),
    ],
)
def test_hyperparameters_that_cannot_train_are_one_line_before_any_epoch(
    runner, network: str, tmp_path: Path, args, message
) -> None:
    result = invoke(runner, "train", network, "--epochs", "1", "--metrics", tmp_path / "m.csv", *args)
    assert_one_line_error(result, message)
    assert "epoch 1" not in result.stdout and not (tmp_path / "m.csv").exists()


def test_experiment_and_predict_refuse_image_counts_they_cannot_use(runner, network: str, tmp_path: Path) -> None:
    result = invoke(runner, "experiment", "head", "--network", network, "--images", "2", "-o", tmp_path)
    assert_one_line_error(result, "2 images with a validation fraction of 0.1 leave 2 to train on and 0 to validate")
    invoke(runner, "train", network, *TINY_RUN, "--epochs", "1", "--checkpoint", tmp_path / "run.npz")
    result = invoke(runner, "predict", network, "--checkpoint", tmp_path / "run.npz", "--images", "2000000")
    assert_one_line_error(result, "at most 1,000,000 generated images, got 2,000,000")


@pytest.mark.parametrize(
    "args, pieces",
    [
        (
            ["--checkpoint", "same.npz", "--metrics", "same.npz"],
            ("same.npz: metrics are written as CSV; use a .csv suffix",),
        ),
        (["--checkpoint", "x.csv"], ("x.csv: a checkpoint is an .npz archive; use a .npz suffix, not 'x.csv'",)),
        (["--checkpoint", "x"], ("x: a checkpoint is an .npz archive; use a .npz suffix, not 'x'",)),
        (["--metrics", "m.md"], ("m.md: metrics are written as CSV; use a .csv suffix, not 'm.md'",)),
        (["--resume", "run.csv"], ("run.csv: a checkpoint is an .npz archive",)),
    ],
)
def test_train_outputs_of_the_wrong_kind_are_refused(
    runner, network: str, tmp_path: Path, monkeypatch, args, pieces
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(runner, "train", network, *TINY_RUN, "--epochs", "1", *args)
    assert_one_line_error(result, *pieces)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_outputs_that_would_overwrite_an_input_are_refused(runner, network: str, tmp_path: Path) -> None:
    invoke(runner, "train", network, *TINY_RUN, "--epochs", "1", "--checkpoint", tmp_path / "run.npz")
    disguised = tmp_path / "run.csv"
    disguised.write_bytes((tmp_path / "run.npz").read_bytes())
    result = invoke(runner, "predict", network, "--checkpoint", disguised, "-o", disguised)
    assert_one_line_error(result, f"{disguised}: would overwrite {disguised}")
    assert disguised.read_bytes() == (tmp_path / "run.npz").read_bytes()
    result = invoke(runner, "predict", network, "--checkpoint", tmp_path / "run.npz", "-o", tmp_path / "p.md")
    assert_one_line_error(result, "p.md: predictions are written as CSV")
    linked = tmp_path / "linked.npz"
    linked.symlink_to(tmp_path / "run.npz")
    result = invoke(runner, "train", network, "--resume", tmp_path / "run.npz", "--checkpoint", linked, "--epochs", "1")
    assert result.exit_code == 0, result.output  # resuming into the same file is saving it back, not a clash
    result = invoke(
        runner,
        "train",
        network,
        "--resume",
        tmp_path / "run.npz",
        "--checkpoint",
        tmp_path / "next.npz",
        "--metrics",
        tmp_path / "run.npz",
    )
    assert_one_line_error(result, "metrics are written as CSV")


def test_experiment_makes_its_output_folder_and_refuses_a_file(runner, network: str, tmp_path: Path) -> None:
    folder = tmp_path / "new" / "results"
    result = invoke(
        runner,
        "experiment",
        "head",
        "--network",
        network,
        "--epochs",
        "1",
        "--images",
        "40",
        "--jobs",
        "1",
        "-o",
        folder,
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert (folder / "head.csv").is_file() and (folder / "head.png").is_file()
    (tmp_path / "file").write_text("x")
    assert_one_line_error(
        invoke(runner, "experiment", "head", "--network", network, "-o", tmp_path / "file"),
        f"{tmp_path / 'file'}: not a folder",
    )


def test_train_and_predict_run_a_network_with_a_depthwise_conv(runner, network: str, tmp_path: Path) -> None:
    assert "op: dwconv" in Path(network).read_text()
    result = invoke(runner, "train", network, *TINY_RUN, "--epochs", "1", "--checkpoint", tmp_path / "run.npz")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    result = invoke(runner, "predict", network, "--checkpoint", tmp_path / "run.npz", "--images", "20")
    assert result.exit_code == 0, result.output
    assert "on 20 test images" in result.stdout
