"""The training loop: determinism, learning, data checks, and bit-exact resume from a checkpoint."""

from __future__ import annotations

from dataclasses import astuple, replace
from pathlib import Path

import numpy as np
import pytest

from hwsim.api import load_network
from hwsim.errors import InputError
from hwsim.training.checkpoint import load_checkpoint, save_checkpoint
from hwsim.training.data import Dataset
from hwsim.training.train import (
    DataSource,
    EpochMetrics,
    OptimizerSettings,
    Run,
    TrainSettings,
    load_split,
    start_run,
    train,
)
from tests.training_helpers import TINY_NETWORK, write_tiny_network

SMALL = DataSource(num_images=120, seed=3)


@pytest.fixture
def graph(tmp_path: Path):
    return load_network(write_tiny_network(tmp_path))


def settings(optimizer: str = "adam", learning_rate: float = 0.01, momentum: float = 0.0) -> TrainSettings:
    return TrainSettings(OptimizerSettings(optimizer, learning_rate, momentum), SMALL, batch_size=16, seed=5)


def reproducible(metrics: list[EpochMetrics]) -> list[tuple]:
    """Every column but the wall time."""
    return [astuple(m)[:-1] for m in metrics]


def fresh_run(graph, run_settings: TrainSettings, epochs: int) -> tuple[Run, list[EpochMetrics]]:
    train_set, validation_set = load_split(run_settings)
    run = start_run(graph, run_settings, train_set)
    return run, train(run, train_set, validation_set, epochs)


def test_the_same_seed_gives_identical_metrics_and_weights(graph) -> None:
    first, first_metrics = fresh_run(graph, settings(), 2)
    second, second_metrics = fresh_run(graph, settings(), 2)
    assert reproducible(first_metrics) == reproducible(second_metrics)
    assert all(np.array_equal(first.model.params[k], second.model.params[k]) for k in first.model.params)


def test_another_seed_gives_another_run(graph) -> None:
    _, first = fresh_run(graph, settings(), 1)
    _, other = fresh_run(graph, replace(settings(), seed=6), 1)
    assert reproducible(first) != reproducible(other)


def test_the_loss_falls_on_a_small_run(graph) -> None:
    _, metrics = fresh_run(graph, settings(learning_rate=0.02), 4)
    assert metrics[-1].train_loss < metrics[0].train_loss - 0.05
    assert [m.epoch for m in metrics] == [1, 2, 3, 4]


def test_the_validation_split_is_held_out_and_fixed_by_the_seed() -> None:
    train_set, validation_set = load_split(settings())
    assert (len(train_set), len(validation_set)) == (108, 12)
    again, _ = load_split(settings())
    assert np.array_equal(train_set.images, again.images)
    rows = {image.tobytes() for image in train_set.images}
    assert not any(image.tobytes() in rows for image in validation_set.images)


@pytest.fixture
def dropout_graph(tmp_path: Path):
    """The tiny network with dropout, whose masks come from the model's own generator."""
    path = tmp_path / "tiny_dropout.yaml"
    path.write_text(
        TINY_NETWORK.replace(
            "  - {op: global_avg_pool", "  - {op: dropout, rate: 0.3, name: drop}\n  - {op: global_avg_pool"
        )
    )
    return load_network(path)


@pytest.mark.parametrize(
    "optimizer, momentum, network", [("adam", 0.0, "graph"), ("sgd", 0.9, "graph"), ("adam", 0.0, "dropout_graph")]
)
def test_resume_equals_the_uninterrupted_run_bit_for_bit(
    request, tmp_path: Path, optimizer: str, momentum: float, network: str
) -> None:
    graph = request.getfixturevalue(network)
    run_settings = settings(optimizer, 0.01, momentum)
    uninterrupted, _ = fresh_run(graph, run_settings, 3)

    interrupted, _ = fresh_run(graph, run_settings, 1)
    save_checkpoint(interrupted, tmp_path / "run.npz")
    resumed = load_checkpoint(tmp_path / "run.npz", graph)
    train_set, validation_set = load_split(resumed.settings)
    train(resumed, train_set, validation_set, 2)

    assert resumed.epoch == uninterrupted.epoch == 3
    assert reproducible(resumed.history) == reproducible(uninterrupted.history)
    for arrays in ("params", "state"):
        expected, actual = getattr(uninterrupted.model, arrays), getattr(resumed.model, arrays)
        assert expected.keys() == actual.keys()
        assert all(np.array_equal(expected[k], actual[k]) for k in expected), arrays


def test_the_checkpoint_round_trips_every_part_of_the_run(graph, tmp_path: Path) -> None:
    run, _ = fresh_run(graph, settings(), 1)
    save_checkpoint(run, tmp_path / "run.npz")
    loaded = load_checkpoint(tmp_path / "run.npz", graph)
    assert loaded.settings == run.settings and loaded.epoch == 1 and loaded.history == run.history
    assert loaded.optimizer.t == run.optimizer.t > 0
    assert all(np.array_equal(loaded.optimizer.m[k], run.optimizer.m[k]) for k in run.optimizer.m)
    assert all(np.array_equal(loaded.optimizer.v[k], run.optimizer.v[k]) for k in run.optimizer.v)
    assert loaded.rng.bit_generator.state == run.rng.bit_generator.state
    assert np.array_equal(loaded.normalization.mean, run.normalization.mean)
    assert [name for name in np.load(tmp_path / "run.npz", allow_pickle=False).files if name.startswith("state/")]


def test_a_checkpoint_of_another_network_is_refused(graph, tmp_path: Path) -> None:
    run, _ = fresh_run(graph, settings(), 1)
    save_checkpoint(run, tmp_path / "run.npz")
    other = load_network(write_tiny_network(tmp_path, "other"))
    with pytest.raises(InputError, match="checkpoint of network 'tiny', not 'other'"):
        load_checkpoint(tmp_path / "run.npz", other)


def test_a_checkpoint_whose_network_file_changed_is_refused(graph, tmp_path: Path) -> None:
    run, _ = fresh_run(graph, settings(), 1)
    save_checkpoint(run, tmp_path / "run.npz")
    changed = tmp_path / "changed.yaml"
    changed.write_text(write_tiny_network(tmp_path).read_text().replace("filters: 6", "filters: 7"))
    with pytest.raises(
        InputError, match=r"does not fit network 'tiny' as it is now: params\['stem.weight'\] has shape"
    ):
        load_checkpoint(tmp_path / "run.npz", load_network(changed))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a zip file at all", "not a readable .npz checkpoint"),
        (None, "not an hwsim checkpoint: no 'meta' entry"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_refused(graph, tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.npz"
    if content is None:
        np.savez(path, weights=np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_checkpoint(path, graph)


def test_data_the_network_cannot_take_is_refused(graph) -> None:
    small_images = Dataset(np.zeros((4, 16, 16, 3), np.float32), np.zeros(4, np.int64), tuple("abcdefghij"))
    with pytest.raises(InputError, match="tiny takes 32x32x3 images, the data has 16x16x3"):
        start_run(graph, settings(), small_images)
    three_classes = Dataset(np.zeros((4, 32, 32, 3), np.float32), np.zeros(4, np.int64), ("a", "b", "c"))
    with pytest.raises(InputError, match="the data has 3 classes"):
        start_run(graph, settings(), three_classes)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: OptimizerSettings("rmsprop", 0.1), "unknown optimizer 'rmsprop'"),
        (lambda: OptimizerSettings("sgd", 0.0), r"learning rate must be a finite number > 0, got 0.0"),
        (lambda: OptimizerSettings("adam", float("inf")), r"learning rate must be a finite number > 0, got inf"),
        (
            lambda: OptimizerSettings("sgd", 0.1, momentum=float("nan")),
            r"momentum must be a finite number in \[0, 1\), got nan",
        ),
        (lambda: TrainSettings(OptimizerSettings("sgd", 0.1), seed=-1), "seed must be 0 or more, got -1"),
        (lambda: DataSource(seed=-1), "data seed must be 0 or more, got -1"),
        (lambda: DataSource(num_images=1_000_001), "at most 1,000,000 generated images, got 1,000,001"),
        (lambda: TrainSettings(OptimizerSettings("sgd", 0.1), batch_size=0), "batch size must be at least 1"),
        (lambda: DataSource(num_images=1), "need at least 2 images"),
    ],
)
def test_bad_settings_are_input_errors(make, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make()
