"""The NumPy reference's memory budget: estimated from the shapes, checked against what NumPy really allocates,
and a run beyond it refused in one line, before anything is allocated, with the way to raise it."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from hwsim import api
from hwsim.cli import main
from hwsim.errors import InputError
from hwsim.reference.memory import ENVIRONMENT, memory_limit, step_bytes
from hwsim.studies.verify import execute
from hwsim.training import runs
from hwsim.training.train import run_bytes
from tests.training_helpers import TINY_NETWORK, write_tiny_network

PADDED = """\
name: padded
input: [8, 8, 3]
layers:
  - {op: conv, kernel: 3, filters: 4, padding: PADDING}
  - {op: relu}
  - {op: maxpool, size: 3, stride: 2, padding: 1}
  - {op: global_avg_pool}
  - {op: softmax}
"""


def peak_bytes(work) -> int:
    """What tracemalloc (which NumPy reports its arrays to) sees allocated at the peak of ``work()``."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def one_line_error(result, *pieces: str) -> None:
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), repr(result.stderr)
    assert all(piece in result.stderr for piece in pieces), result.stderr


@pytest.mark.parametrize("network", ["padded", "hairnet-cifar10"])
@pytest.mark.parametrize("batch", [1, 3])
def test_the_verify_estimate_bounds_what_numpy_allocates(tmp_path: Path, network: str, batch: int) -> None:
    path = tmp_path / "padded.yaml"
    path.write_text(PADDED.replace("PADDING", "100"))
    graph = api.load_network(path if network == "padded" else network)
    measured = peak_bytes(lambda: execute(graph, batch))
    estimated = step_bytes(graph, batch, "adam")
    assert measured <= estimated <= 2 * measured, (measured, estimated)


@pytest.mark.slow
def test_the_training_estimate_bounds_what_numpy_allocates() -> None:
    graph = api.load_network("hairnet-cifar10-small")
    given = {"num_images": 600, "batch_size": 32, "learning_rate": 0.01}
    measured = peak_bytes(lambda: runs.train_network(graph, dict(given), 1))
    estimated = run_bytes(graph, runs.settings_from(given))
    assert measured <= estimated <= 2 * measured, (measured, estimated)


def test_verify_of_a_huge_padding_is_refused_before_allocating(runner, tmp_path: Path) -> None:
    # once 4.3 GB and a MemoryError traceback; estimated at 10 GB, over the default 4 GB
    path = tmp_path / "padded.yaml"
    path.write_text(PADDED.replace("PADDING", "3000"))
    peak = peak_bytes(lambda: one_line_error(runner.invoke(main, ["verify", str(path)]), "verify padded at batch 1"))
    assert peak < 50_000_000
    result = runner.invoke(main, ["verify", str(path)])
    one_line_error(result, "more than the limit of 4 GB", "--max-memory", f"{ENVIRONMENT}=")


@pytest.mark.parametrize(
    ("network", "what"),
    [
        (
            "name: wide\ninput: [8, 8, 3]\nlayers:\n  - {op: flatten}\n  - {op: dense, units: 1000000}\n"
            "  - {op: dense, units: 1000000}\n  - {op: softmax}\n",
            "TB",
        ),  # once "Unable to allocate 108 TiB"
        ("alexnet", "TB"),  # with an input of 20,000 x 20,000: once "Maximum allowed dimension exceeded"
    ],
    ids=["dense-1M-by-1M", "alexnet-huge-input"],
)
def test_verify_of_huge_but_valid_sizes_is_refused(runner, tmp_path: Path, network: str, what: str) -> None:
    path = tmp_path / "net.yaml"
    if network == "alexnet":
        alexnet = (Path(__file__).parent.parent / "networks" / "alexnet.yaml").read_text()
        network = alexnet.replace("input: [224, 224, 3]", "input: [20000, 20000, 3]")
    path.write_text(network)
    one_line_error(runner.invoke(main, ["verify", str(path)]), what, "--max-memory")


def test_the_limit_comes_from_the_option_else_the_environment_else_the_default(monkeypatch, runner) -> None:
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    assert memory_limit() == 4e9
    monkeypatch.setenv(ENVIRONMENT, "1 MB")
    assert memory_limit() == 1e6
    assert memory_limit("8GiB") == 8 * 2**30
    one_line_error(runner.invoke(main, ["verify", "hairnet-cifar10-small"]), "more than the limit of 1 MB")
    result = runner.invoke(main, ["verify", "hairnet-cifar10-small", "--max-memory", "1GB"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("value", ["lots", "-1GB", "0", "1e400 B"])
def test_a_bad_limit_is_one_line(monkeypatch, runner, value: str) -> None:
    one_line_error(runner.invoke(main, ["verify", "hairnet-cifar10-small", "--max-memory", value]), "--max-memory: ")
    monkeypatch.setenv(ENVIRONMENT, value)
    with pytest.raises(InputError, match=f"{ENVIRONMENT}: "):
        memory_limit()


def test_train_and_predict_refuse_runs_beyond_the_budget(runner, tmp_path: Path) -> None:
    network = write_tiny_network(tmp_path)
    result = runner.invoke(main, ["train", str(network), "--images", "1000000", "--epochs", "1"])
    one_line_error(result, "training tiny would take about 6", "GB of memory", "--max-memory")
    checkpoint = tmp_path / "run.npz"
    trained = runner.invoke(
        main, ["train", str(network), "--images", "60", "--epochs", "1", "--checkpoint", checkpoint]
    )
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(main, ["predict", str(network), "--checkpoint", str(checkpoint), "--images", "1000000"])
    one_line_error(result, "predicting with tiny on 1,000,000 images would take about")
    result = runner.invoke(
        main, ["predict", str(network), "--checkpoint", str(checkpoint), "--images", "20", "--max-memory", "1MB"]
    )
    one_line_error(result, "more than the limit of 1 MB")


def test_momentum_is_refused_for_adam_new_or_resumed(runner, tmp_path: Path) -> None:
    network = write_tiny_network(tmp_path)
    run = ["train", str(network), "--images", "60", "--epochs", "1"]
    one_line_error(runner.invoke(main, [*run, "--momentum", "0.5"]), "momentum is an SGD setting and adam ignores it")
    one_line_error(runner.invoke(main, [*run, "--optimizer", "adam", "--momentum", "0"]), "adam ignores it")
    assert runner.invoke(main, [*run, "--optimizer", "sgd", "--momentum", "0.5"]).exit_code == 0
    assert runner.invoke(main, [*run, "--checkpoint", str(tmp_path / "run.npz")]).exit_code == 0
    resumed = ["train", str(network), "--resume", str(tmp_path / "run.npz"), "--momentum", "0.5"]
    one_line_error(runner.invoke(main, resumed), "adam ignores it")


def test_a_diverging_run_stops_without_saving_what_it_could_not_resume(runner, tmp_path: Path) -> None:
    network = write_tiny_network(tmp_path)
    checkpoint = tmp_path / "run.npz"
    args = ["train", network, "--images", "60", "--batch-size", "8", "--optimizer", "sgd", "--lr", "1e30"]
    args += ["--epochs", "1", "--checkpoint", checkpoint]
    one_line_error(runner.invoke(main, [str(a) for a in args]), "training diverged in epoch 1")
    assert not checkpoint.exists()
    assert TINY_NETWORK in network.read_text()


def test_experiments_count_the_runs_they_train_at_once(runner, tmp_path: Path) -> None:
    args = ["experiment", "all", "--images", "100000", "-o", str(tmp_path / "out")]
    one_line_error(runner.invoke(main, [*args, "--jobs", "2"]), "2 training runs at once would take about 1")
    one_line_error(runner.invoke(main, [*args, "--jobs", "1"]), "a training run would take about 6")
    assert not (tmp_path / "out").exists()
