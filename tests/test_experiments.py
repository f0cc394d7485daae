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
