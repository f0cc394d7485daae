"""The three training experiments of Section 4.2 of the paper, each a pair of runs that differ in one thing.

- ``batchnorm``: the same high SGD learning rate with and without batch norm (claim: only the
  network with batch norm converges);
- ``head``: the fully convolutional head vs one dense layer after global average pooling (claim:
  the dense layer trains faster and ends more accurate; Figure 3);
- ``optimizer``: Adam vs SGD (claim: Adam wins by far; Figure 4).

Both runs of an experiment share the seed, so they see the same data split, the same batches in
the same order and, for every layer they have in common, the same initial weights.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from itertools import repeat

import pandas as pd

from hwsim.model.graph import Graph
from hwsim.model.variants import with_dense_head, without_batchnorm
from hwsim.reference.memory import check_budget, memory_limit
from hwsim.training.train import (
    BatchCallback,
    DataSource,
    OptimizerSettings,
    TrainSettings,
    load_split,
    run_bytes,
    start_run,
    train,
)

DEFAULT_NETWORK = "hairnet-cifar10-small"
DEFAULT_EPOCHS = 4
DEFAULT_IMAGES = 3000

ADAM = OptimizerSettings("adam", 0.001)
SGD = OptimizerSettings("sgd", 0.01, momentum=0.9)
HIGH_SGD = OptimizerSettings("sgd", 0.5)
"""The "high learning rate" of the batch norm claim: plain SGD, 50x the usual step."""


def unchanged(graph: Graph) -> Graph:
    return graph


@dataclass(frozen=True)
class Arm:
    """One run of an experiment: a variant of the network and an optimizer."""

    label: str
    variant: Callable[[Graph], Graph]
    optimizer: OptimizerSettings

    @property
    def run_key(self) -> tuple[Callable[[Graph], Graph], OptimizerSettings]:
        """Arms with the same key are the same run, whatever their label."""
        return self.variant, self.optimizer


@dataclass(frozen=True)
class Experiment:
    name: str
    claim: str
    """What Section 4.2 says, in its words where possible."""
    arms: tuple[Arm, Arm]


EXPERIMENTS = {
    "batchnorm": Experiment(
        "batchnorm",
        "with the same high SGD learning rate, HairNet converges with batch norm and not without",
        (Arm("with batch norm", unchanged, HIGH_SGD), Arm("without batch norm", without_batchnorm, HIGH_SGD)),
    ),
    "head": Experiment(
        "head",
        "a single dense layer after global average pooling improves the speed and final accuracy",
        (Arm("fully convolutional head", unchanged, ADAM), Arm("dense layer after GAP", with_dense_head, ADAM)),
    ),
    "optimizer": Experiment(
        "optimizer",
        'Adam beats stochastic gradient descent by far (on "the above network": the one with the dense head)',
        (Arm("Adam", with_dense_head, ADAM), Arm("SGD with momentum", with_dense_head, SGD)),
    ),
}

ArmCallback = Callable[[Experiment, Arm], BatchCallback | None]
"""Called as each run starts; returns the per-batch callback for that run (a progress bar), or None."""


@dataclass(frozen=True)
class ExperimentSettings:
    """What every run of the experiments shares."""

    epochs: int = DEFAULT_EPOCHS
    data: DataSource = DataSource(num_images=DEFAULT_IMAGES)
    batch_size: int = 32
    seed: int = 0


def check_data(settings: ExperimentSettings) -> None:
    """Load the images and split them as every run will: an :class:`InputError` if they cannot be trained on."""
    load_split(_run_settings(ADAM, settings))


def check_memory(
    chosen: list[Experiment], network: Graph, settings: ExperimentSettings, jobs: int, max_memory: str | None = None
) -> None:
    """Refuse, before any run starts, experiments whose runs at once (``jobs`` of them, in worker processes)
    would take more memory than the budget (:mod:`hwsim.reference.memory`)."""
    arms = {arm.run_key: arm for experiment in chosen for arm in experiment.arms}.values()
    largest = max(run_bytes(arm.variant(network), _run_settings(arm.optimizer, settings)) for arm in arms)
    at_once = min(jobs, len(arms))
    runs = f"{at_once} training runs at once" if at_once > 1 else "a training run"
    check_budget(runs, at_once * largest, memory_limit(max_memory))


def _run_settings(optimizer: OptimizerSettings, settings: ExperimentSettings) -> TrainSettings:
    return TrainSettings(optimizer, settings.data, settings.batch_size, settings.seed)


def run_experiments(
    chosen: list[Experiment],
    network: Graph,
    settings: ExperimentSettings,
    jobs: int = 1,
    on_arm: ArmCallback | None = None,
) -> dict[str, pd.DataFrame]:
    """Train every arm of the ``chosen`` experiments; per experiment, one row per arm and epoch.

    An arm shared by two experiments (same variant, same optimizer) is trained once. With
    ``jobs`` > 1 the runs go to that many worker processes (one BLAS thread each) and ``on_arm`` is
    not called: a worker cannot drive the caller's progress bar. Every run is deterministic, so
    the curves do not depend on ``jobs``.
    """
    distinct: dict[tuple, tuple[Experiment, Arm]] = {}
    for experiment in chosen:
        for arm in experiment.arms:
            distinct.setdefault(arm.run_key, (experiment, arm))
    runs = list(distinct.values())
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(runs))) as pool:
            histories = list(pool.map(_train_arm, [arm for _, arm in runs], repeat(network), repeat(settings)))
    else:
        histories = [
            _train_arm(arm, network, settings, on_arm(experiment, arm) if on_arm else None) for experiment, arm in runs
        ]
    trained = dict(zip(distinct, histories))
    return {
        experiment.name: pd.DataFrame(
            [
                {"experiment": experiment.name, "arm": arm.label, **row}
                for arm in experiment.arms
                for row in trained[arm.run_key]
            ]
        )
        for experiment in chosen
    }


def _train_arm(
    arm: Arm, network: Graph, settings: ExperimentSettings, on_batch: BatchCallback | None = None
) -> list[dict]:
    """One row per epoch: the variant's network name, the optimizer and the epoch's metrics."""
    graph = arm.variant(network)
    run_settings = _run_settings(arm.optimizer, settings)
    train_set, validation_set = load_split(run_settings)
    run = start_run(graph, run_settings, train_set)
    return [
        {"network": graph.name, "optimizer": arm.optimizer.describe(), **asdict(metrics)}
        for metrics in train(run, train_set, validation_set, settings.epochs, on_batch)
    ]


def final_epochs(curves: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of every arm: the numbers a verdict is made of."""
    return curves.groupby(["experiment", "arm"], sort=False).tail(1).reset_index(drop=True)
