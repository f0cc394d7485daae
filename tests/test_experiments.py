"""The experiment variants (graph transforms) and the experiment runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwsim.api import load_network
from hwsim.errors import InputError
from hwsim.model.variants import DENSE_HEAD, with_dense_head, without_batchnorm
from hwsim.ops import Op
from hwsim.reference import Model
from hwsim.report import training as training_report
from hwsim.training import experiments
from hwsim.training.train import DataSource
from tests.training_helpers import write_tiny_network


@pytest.fixture
def graph(tmp_path: Path):
    return load_network(write_tiny_network(tmp_path))


def test_without_batchnorm_bypasses_every_batch_norm_and_gives_its_conv_a_bias(graph) -> None:
    plain = without_batchnorm(graph)
    assert plain.name == "tiny-no-bn"
    assert [layer.name for layer in plain.layers] == [
        layer.name for layer in graph.layers if layer.op is not Op.BATCHNORM
    ]
    assert plain.layer("stem_relu").inputs == ("stem",) and plain.layer("stem").attrs.bias
    assert plain.layer("stem").params == graph.layer("stem").params + 6
    assert (
        plain.params
        == graph.params - sum(layer.params for layer in graph.layers if layer.op is Op.BATCHNORM) + 6 + 6 + 10
    )
    assert Model(plain).forward(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 1, 1, 10)
    with pytest.raises(InputError, match="tiny-no-bn has no batch norm to remove"):
        without_batchnorm(plain)


def test_with_dense_head_puts_one_dense_layer_between_gap_and_softmax(graph) -> None:
    dense = with_dense_head(graph)
    assert [layer.name for layer in dense.layers[-3:]] == ["gap", DENSE_HEAD, "softmax"]
    head = dense.layer(DENSE_HEAD)
    assert head.op is Op.DENSE and head.inputs == ("gap",) and head.output_shape == (1, 1, 10)
    assert dense.params == graph.params + 10 * 10 + 10
    assert dense.layer("softmax").inputs == (DENSE_HEAD,)
    assert Model(dense).forward(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 1, 1, 10)
    with pytest.raises(InputError, match="does not end in them"):
        with_dense_head(dense)


TINY = experiments.ExperimentSettings(epochs=1, data=DataSource(num_images=40), batch_size=16)


def reproducible(curves: pd.DataFrame) -> pd.DataFrame:
    return curves.drop(columns="seconds")


def test_curves_do_not_depend_on_the_number_of_worker_processes(graph) -> None:
    chosen = [experiments.EXPERIMENTS["head"], experiments.EXPERIMENTS["optimizer"]]
    one = experiments.run_experiments(chosen, graph, TINY, jobs=1)
    two = experiments.run_experiments(chosen, graph, TINY, jobs=2)
    for name in ("head", "optimizer"):
        pd.testing.assert_frame_equal(reproducible(one[name]), reproducible(two[name]))


def test_an_arm_two_experiments_share_is_trained_once(graph) -> None:
    """The optimizer experiment trains "the above network" (Section 4.2): the one with the dense head."""
    chosen = [experiments.EXPERIMENTS["head"], experiments.EXPERIMENTS["optimizer"]]
    started = []
    curves = experiments.run_experiments(chosen, graph, TINY, on_arm=lambda experiment, arm: started.append(arm.label))
    assert started == ["fully convolutional head", "dense layer after GAP", "SGD with momentum"]
    columns = ["network", "optimizer", "epoch", "train_loss", "validation_accuracy"]
    head, optimizer = curves["head"], curves["optimizer"]
    pd.testing.assert_frame_equal(
        head[head.arm == "dense layer after GAP"][columns].reset_index(drop=True),
        optimizer[optimizer.arm == "Adam"][columns].reset_index(drop=True),
    )


def test_write_experiment_writes_the_curves_and_a_png(graph, tmp_path: Path) -> None:
    experiment = experiments.EXPERIMENTS["batchnorm"]
    curves = experiments.run_experiments([experiment], graph, TINY)["batchnorm"]
    diverged = curves.copy()
    diverged.loc[1, ["train_loss", "validation_loss"]] = np.nan  # the plot must survive a diverged run
    csv, png = training_report.write_experiment(experiment, diverged, tmp_path)
    assert pd.read_csv(csv)["arm"].tolist() == ["with batch norm", "without batch norm"]
    assert png.read_bytes().startswith(b"\x89PNG")
    assert experiments.final_epochs(curves)["epoch"].tolist() == [1, 1]


def curves_of(validation: dict[str, list[list[float]]]) -> pd.DataFrame:
    """Learning curves of two arms: ``validation[arm][seed]`` is that run's validation accuracy per epoch."""
    rows = [
        {
            "experiment": "optimizer",
            "arm": arm,
            "seed": seed,
            "network": "net",
            "optimizer": arm,
            "epoch": epoch + 1,
            "train_loss": 2.0 - accuracy,
            "train_accuracy": accuracy,
            "validation_loss": 2.0 - accuracy,
            "validation_accuracy": accuracy,
            "seconds": 1.0,
            "python": "3.11.7",
            "numpy": "2.4.6",
            "blas": "openblas 0.3.31 (SkylakeX kernels), 1 thread",
        }
        for arm, runs in validation.items()
        for seed, run in enumerate(runs)
        for epoch, accuracy in enumerate(run)
    ]
    return pd.DataFrame(rows)


def test_the_lead_is_the_paired_difference_at_the_last_epoch_whoever_the_paper_favoured() -> None:
    curves = curves_of(
        {"Adam": [[0.1, 0.20], [0.1, 0.30], [0.1, 0.25]], "SGD": [[0.1, 0.30], [0.1, 0.35], [0.1, 0.20]]}
    )
    verdict = experiments.lead(curves)
    # SGD - Adam per seed: 0.10, 0.05, -0.05; mean 0.0333, sample sd 0.0764; ahead in 2 of 3
    assert (verdict.leader, verdict.trailer, verdict.epoch) == ("SGD", "Adam", 2)
    assert verdict.difference == pytest.approx(0.1 / 3)
    assert verdict.difference_std == pytest.approx(np.std([0.10, 0.05, -0.05], ddof=1))
    assert (verdict.ahead, verdict.seeds) == (2, 3)
    assert training_report.lead_sentence(verdict) == (
        "SGD ahead of Adam by 0.033 in validation accuracy at epoch 2 (mean of 3 seeds, sd 0.076; ahead in 2 of 3)"
    )
    at_first = experiments.lead(curves, epoch=1)
    assert at_first.difference == 0 and training_report.lead_sentence(at_first).startswith("Adam and SGD level in")


def test_one_seed_says_so_and_the_figure_title_is_the_measured_lead(tmp_path: Path) -> None:
    curves = curves_of({"with batch norm": [[0.2, 0.54]], "without batch norm": [[0.13, 0.12]]})
    verdict = experiments.lead(curves)
    sentence = training_report.lead_sentence(verdict)
    assert (
        sentence == "with batch norm ahead of without batch norm by 0.420 in validation accuracy at epoch 2 (one seed)"
    )
    figure = training_report.learning_curves(experiments.EXPERIMENTS["batchnorm"], curves)
    title = " ".join(figure.get_suptitle().split())
    assert sentence in title and experiments.EXPERIMENTS["batchnorm"].claim not in title
