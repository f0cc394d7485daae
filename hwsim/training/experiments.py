"""The three training experiments of Section 4.2 of the paper, each a pair of runs that differ in one thing.

- ``batchnorm``: the same high SGD learning rate with and without batch norm (claim: only the
  network with batch norm converges);
- ``head``: the fully convolutional head vs one dense layer after global average pooling (claim:
  the dense layer trains faster and ends more accurate; Figure 3);
- ``optimizer``: Adam vs SGD (claim: Adam wins by far; Figure 4).

Both runs of an experiment share the seed, so they see the same data split, the same batches in
the same order and, for every layer they have in common, the same initial weights. Each pair is
trained with several seeds (weights, split and order; the images stay the same), and a verdict is
the paired difference between the arms, seed by seed: one seed's difference is often within what a
different BLAS kernel, or another seed, moves (docs/experiments.md).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from itertools import repeat

import numpy as np
import pandas as pd

from hwsim.model.graph import Graph
from hwsim.model.variants import with_dense_head, without_batchnorm
from hwsim.reference.memory import check_budget, memory_limit
from hwsim.training.environment import versions
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
DEFAULT_SEEDS = 3
VERDICT_METRIC = "validation_accuracy"

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
    seeds: tuple[int, ...] = (0,)
    """One run per arm and seed; the seed fixes the weights, the validation split and the order of batches."""


def check_data(settings: ExperimentSettings) -> None:
    """Load the images and split them as every run will: an :class:`InputError` if they cannot be trained on."""
    load_split(_run_settings(ADAM, settings, settings.seeds[0]))


def check_memory(
    chosen: list[Experiment], network: Graph, settings: ExperimentSettings, jobs: int, max_memory: str | None = None
) -> None:
    """Refuse, before any run starts, experiments whose runs at once (``jobs`` of them, in worker processes)
    would take more memory than the budget (:mod:`hwsim.reference.memory`)."""
    arms = {arm.run_key: arm for experiment in chosen for arm in experiment.arms}.values()
    largest = max(
        run_bytes(arm.variant(network), _run_settings(arm.optimizer, settings, settings.seeds[0])) for arm in arms
    )
    at_once = min(jobs, len(arms))
    runs = f"{at_once} training runs at once" if at_once > 1 else "a training run"
    check_budget(runs, at_once * largest, memory_limit(max_memory))


def _run_settings(optimizer: OptimizerSettings, settings: ExperimentSettings, seed: int) -> TrainSettings:
    return TrainSettings(optimizer, settings.data, settings.batch_size, seed)


def run_experiments(
    chosen: list[Experiment],
    network: Graph,
    settings: ExperimentSettings,
    jobs: int = 1,
    on_arm: ArmCallback | None = None,
) -> dict[str, pd.DataFrame]:
    """Train every arm of the ``chosen`` experiments with every seed; per experiment, one row per arm, seed and epoch.

    An arm shared by two experiments (same variant, same optimizer) is trained once per seed. With
    ``jobs`` > 1 the runs go to that many worker processes (one BLAS thread each) and ``on_arm`` is
    not called: a worker cannot drive the caller's progress bar. Every run is deterministic, so
    the curves do not depend on ``jobs``. Each row also names the Python, NumPy and BLAS that made it.
    """
    distinct: dict[tuple, tuple[Experiment, Arm, int]] = {}
    for experiment in chosen:
        for arm in experiment.arms:
            for seed in settings.seeds:
                distinct.setdefault((arm.run_key, seed), (experiment, arm, seed))
    runs = list(distinct.values())
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(runs))) as pool:
            histories = list(
                pool.map(
                    _train_arm,
                    [arm for _, arm, _ in runs],
                    repeat(network),
                    [replace(settings, seeds=(seed,)) for _, _, seed in runs],
                )
            )
    else:
        histories = [
            _train_arm(arm, network, replace(settings, seeds=(seed,)), on_arm(experiment, arm) if on_arm else None)
            for experiment, arm, seed in runs
        ]
    trained = dict(zip(distinct, histories))
    recorded = versions()
    return {
        experiment.name: pd.DataFrame(
            [
                {"experiment": experiment.name, "arm": arm.label, "seed": seed, **row, **recorded}
                for arm in experiment.arms
                for seed in settings.seeds
                for row in trained[arm.run_key, seed]
            ]
        )
        for experiment in chosen
    }


def _train_arm(
    arm: Arm, network: Graph, settings: ExperimentSettings, on_batch: BatchCallback | None = None
) -> list[dict]:
    """One row per epoch of the run with ``settings.seeds[0]``: the variant's name, the optimizer, the metrics."""
    graph = arm.variant(network)
    run_settings = _run_settings(arm.optimizer, settings, settings.seeds[0])
    train_set, validation_set = load_split(run_settings)
    run = start_run(graph, run_settings, train_set)
    return [
        {"network": graph.name, "optimizer": arm.optimizer.describe(), **asdict(metrics)}
        for metrics in train(run, train_set, validation_set, settings.epochs, on_batch)
    ]


def final_epochs(curves: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of every arm and seed: the numbers a verdict is made of."""
    return curves[curves["epoch"] == curves["epoch"].max()].reset_index(drop=True)


@dataclass(frozen=True)
class Lead:
    """Which arm is ahead at one epoch, by how much on average, and in how many of the seeds.

    The difference is paired: both arms of a seed share its split, batches and initial weights.
    """

    leader: str
    trailer: str
    metric: str
    epoch: int
    difference: float
    """Mean over the seeds of leader minus trailer (>= 0)."""
    difference_std: float
    """Sample standard deviation of the per-seed differences (0 for one seed)."""
    ahead: int
    """Seeds in which the leader is strictly ahead."""
    seeds: int


def lead(curves: pd.DataFrame, metric: str = VERDICT_METRIC, epoch: int | None = None) -> Lead:
    """The arm ahead on ``metric`` (higher is better) at ``epoch`` (default: the last), from the curves alone."""
    epoch = int(curves["epoch"].max()) if epoch is None else epoch
    at = curves[curves["epoch"] == epoch].pivot(index="seed", columns="arm", values=metric)
    first, second = curves["arm"].drop_duplicates().tolist()
    differences = (at[first] - at[second]).to_numpy(dtype=float)
    if np.nanmean(differences) < 0:
        first, second, differences = second, first, -differences
    return Lead(
        leader=first,
        trailer=second,
        metric=metric,
        epoch=epoch,
        difference=float(np.nanmean(differences)),
        difference_std=float(np.nanstd(differences, ddof=1)) if len(differences) > 1 else 0.0,
        ahead=int(np.sum(differences > 0)),
        seeds=len(differences),
    )
