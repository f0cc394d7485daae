"""Start or resume a training run, train it, and keep its checkpoint and metrics CSV current after every epoch.

What ``hwsim train`` and ``hwsim predict`` call; a notebook can call the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwsim import files
from hwsim.errors import InputError
from hwsim.model.graph import Graph
from hwsim.reference.memory import FLOAT_BYTES, check_budget, memory_limit, step_bytes
from hwsim.training.checkpoint import load_checkpoint, save_checkpoint
from hwsim.training.data import Dataset
from hwsim.training.train import (
    DEFAULT_LEARNING_RATES,
    EVALUATION_BATCH,
    BatchCallback,
    DataSource,
    EpochMetrics,
    OptimizerSettings,
    Run,
    TrainSettings,
    data_bytes,
    evaluate,
    load_split,
    predict,
    run_bytes,
    start_run,
    train,
)


def settings_from(given: dict[str, Any], stored: TrainSettings | None = None) -> TrainSettings:
    """Settings from the options a user gave (``None`` = not given), on top of ``stored`` when resuming.

    Keys: ``optimizer``, ``learning_rate``, ``momentum``, ``batch_size``, ``seed``,
    ``validation_fraction``, ``data_folder``, ``num_images``, ``data_seed``. A resumed run keeps its
    settings: giving a different value is an error rather than a silently different run.
    """
    name = given.get("optimizer") or (stored.optimizer.name if stored else "adam")
    if name != "sgd" and given.get("momentum") is not None:
        raise InputError(f"momentum is an SGD setting and {name} ignores it: drop it, or choose the sgd optimizer")
    if stored is not None:
        _refuse_changes(given, _flatten(stored))
        return stored
    optimizer = OptimizerSettings(
        name, _given(given, "learning_rate", DEFAULT_LEARNING_RATES[name]), _given(given, "momentum", 0.0)
    )
    default_data = DataSource()
    data = DataSource(
        given.get("data_folder"),
        _given(given, "num_images", None if given.get("data_folder") else default_data.num_images),
        _given(given, "data_seed", default_data.seed),
    )
    loop = {key: given[key] for key in ("batch_size", "seed", "validation_fraction") if given.get(key) is not None}
    return TrainSettings(optimizer, data, **loop)


def _given(given: dict[str, Any], key: str, default: Any) -> Any:
    return default if given.get(key) is None else given[key]


def _flatten(settings: TrainSettings) -> dict[str, Any]:
    """``settings`` under the keys :func:`settings_from` takes."""
    return {
        "optimizer": settings.optimizer.name,
        "learning_rate": settings.optimizer.learning_rate,
        "momentum": settings.optimizer.momentum,
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "validation_fraction": settings.validation_fraction,
        "data_folder": settings.data.folder,
        "num_images": settings.data.num_images,
        "data_seed": settings.data.seed,
    }


def _refuse_changes(given: dict[str, Any], stored: dict[str, Any]) -> None:
    for key, value in given.items():
        if value is None or key not in stored or _same(key, value, stored[key]):
            continue
        raise InputError(
            f"{key} {value} differs from the checkpoint's {stored[key]}; "
            f"a resumed run keeps the settings it started with"
        )


def _same(key: str, value: Any, stored: Any) -> bool:
    """A data folder given by another path to the same place is the same folder."""
    if key == "data_folder" and stored is not None:
        return files.resolved(Path(value).expanduser()) == files.resolved(Path(stored).expanduser())
    return value == stored


def train_network(
    graph: Graph,
    given: dict[str, Any],
    epochs: int,
    resume: Path | None = None,
    checkpoint: Path | None = None,
    metrics: Path | None = None,
    on_batch: BatchCallback | None = None,
    on_epoch: Callable[[Run], None] | None = None,
    max_memory: str | None = None,
) -> Run:
    """Train ``graph`` for ``epochs`` more epochs, from scratch or from the ``resume`` checkpoint.

    After every epoch the checkpoint (``checkpoint``, else the ``resume`` file) and the metrics CSV
    (the whole history, resumed epochs included) are rewritten; ``on_epoch(run)`` is then called.
    A run whose memory estimate exceeds ``max_memory`` (see :mod:`hwsim.reference.memory`) is refused
    before anything is loaded; one that diverges stops before its checkpoint is overwritten.
    """
    if epochs < 1:
        raise InputError(f"epochs must be at least 1, got {epochs}")
    for path in (checkpoint, metrics):
        if path is not None and not (path.parent if str(path.parent) else Path(".")).is_dir():
            raise InputError("no such directory", str(path.parent))
    limit = memory_limit(max_memory)
    run = _load_within(resume, graph, limit) if resume else None
    settings = settings_from(given, run.settings if run else None)
    check_budget(f"training {graph.name}", run_bytes(graph, settings), limit)
    train_set, validation_set = load_split(settings)
    run = run or start_run(graph, settings, train_set)
    save_to = checkpoint or resume

    def after_epoch(run: Run) -> None:
        _refuse_divergence(run)
        if save_to:
            save_checkpoint(run, save_to)
        if metrics:
            write_metrics(run.history, metrics)
        if on_epoch:
            on_epoch(run)

    train(run, train_set, validation_set, epochs, on_batch, after_epoch)
    return run


def _load_within(path: Path, graph: Graph, limit: float) -> Run:
    """The checkpoint at ``path``, if reading it fits the memory budget (judged from the network alone)."""
    check_budget(f"reading a checkpoint of {graph.name}", LOAD_COPIES * FLOAT_BYTES * graph.params, limit)
    return load_checkpoint(path, graph)


LOAD_COPIES = 8
"""Copies of the parameters alive while a checkpoint loads: the archive's parameters and two optimizer slots,
the network's freshly drawn parameters, the adopted copies, and the optimizer slots converted."""


def _refuse_divergence(run: Run) -> None:
    """Stop a run whose loss became nan or whose weights are no longer finite: what follows is noise, and a
    checkpoint of it could not be resumed."""
    latest = run.history[-1]
    finite = all(np.isfinite(value).all() for value in (*run.model.params.values(), *run.model.state.values()))
    if math.isnan(latest.train_loss) or not finite:
        raise InputError(
            f"training diverged in epoch {latest.epoch} (train loss {latest.train_loss:g}); "
            f"nothing of that epoch was saved: try a lower learning rate"
        )


def metrics_frame(history: list[EpochMetrics]) -> pd.DataFrame:
    return pd.DataFrame([asdict(m) for m in history], columns=[f.name for f in fields(EpochMetrics)])


def write_metrics(history: list[EpochMetrics], path: Path) -> None:
    files.write_atomically(path, metrics_frame(history).to_csv(index=False))


def evaluate_checkpoint(
    graph: Graph,
    checkpoint: Path,
    data_folder: str | None = None,
    num_images: int | None = None,
    data_seed: int | None = None,
    max_memory: str | None = None,
) -> tuple[Dataset, np.ndarray, float, float]:
    """``(test set, probabilities (N, K), loss, accuracy)`` of the checkpoint's model on test data.

    The test data is the checkpoint's own source unless overridden: CIFAR-10's test batch, or a
    generated set from a seed the run did not train on (see :meth:`DataSource.test_set`).
    """
    limit = memory_limit(max_memory)
    run = _load_within(checkpoint, graph, limit)
    stored = run.settings.data
    source = DataSource(data_folder, None, stored.seed) if data_folder is not None else stored
    images = source.test_images(num_images)
    check_budget(
        f"predicting with {graph.name} on {images:,} images",
        data_bytes(graph, source, images) + step_bytes(graph, min(EVALUATION_BATCH, images), None),
        limit,
    )
    test_set = source.test_set(num_images, data_seed)
    loss, accuracy = evaluate(run.model, run.normalization, test_set)
    return test_set, predict(run.model, run.normalization, test_set), loss, accuracy
