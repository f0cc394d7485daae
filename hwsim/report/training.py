"""What ``hwsim train``, ``predict`` and ``experiment`` show: a progress bar per run, a line per epoch,
result tables, learning curves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwsim import files
from hwsim.report import plots
from hwsim.training.data import Dataset
from hwsim.training.experiments import Experiment
from hwsim.training.train import BatchCallback, EpochMetrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@contextlib.contextmanager
def training_progress(console: Console) -> Iterator[Progress]:
    """A live bar of the current epoch's batches with the running loss and accuracy, on a terminal only.

    Elsewhere (a pipe, a log file, a test) rich cannot redraw the bar and prints an empty line when
    it stops, which would come before any error message; so there it is off.
    """
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  accuracy {task.fields[accuracy]:.3f}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_interactive) as progress:
        yield progress


def batch_callback(progress: Progress, description: str) -> BatchCallback:
    """Per-batch updates of a bar titled ``description``; a new bar starts with each epoch."""
    task = None

    def update(done: int, total: int, loss: float, accuracy: float) -> None:
        nonlocal task
        if task is None or done == 1:
            if task is not None:
                progress.remove_task(task)
            task = progress.add_task(description, total=total, loss=loss, accuracy=accuracy)
        progress.update(task, completed=done, loss=loss, accuracy=accuracy)

    return update


def epoch_line(metrics: EpochMetrics) -> str:
    return (
        f"epoch {metrics.epoch}: train loss {metrics.train_loss:.4f} accuracy {metrics.train_accuracy:.3f}"
        f" | validation loss {metrics.validation_loss:.4f} accuracy {metrics.validation_accuracy:.3f}"
        f" ({metrics.seconds:.1f} s)"
    )


def prediction_table(test_set: Dataset, probabilities: np.ndarray) -> Table:
    """Accuracy per class, and which class each one is most often mistaken for."""
    predicted = probabilities.argmax(axis=-1)
    table = Table("class", "images", "accuracy", "most often mistaken for")
    for index, name in enumerate(test_set.class_names):
        mine = test_set.labels == index
        wrong = predicted[mine & (predicted != index)]
        mistaken = (
            test_set.class_names[np.bincount(wrong, minlength=len(test_set.class_names)).argmax()]
            if wrong.size
            else "-"
        )
        accuracy = f"{np.mean(predicted[mine] == index):.3f}" if mine.any() else "-"
        table.add_row(name, str(int(mine.sum())), accuracy, mistaken)
    return table


def predictions_frame(test_set: Dataset, probabilities: np.ndarray) -> pd.DataFrame:
    """One row per image: its label, the predicted class and the probability given to it."""
    predicted = probabilities.argmax(axis=-1)
    names = np.array(test_set.class_names)
    return pd.DataFrame(
        {
            "index": np.arange(len(test_set)),
            "label": names[test_set.labels],
            "predicted": names[predicted],
            "probability": probabilities[np.arange(len(test_set)), predicted],
        }
    )


def experiment_table(finals: pd.DataFrame) -> Table:
    """Last-epoch numbers of every arm."""
    table = Table(
        "experiment", "arm", "optimizer", "epochs", "train loss", "train acc", "val loss", "val acc", "s/epoch"
    )
    for row in finals.itertuples():
        table.add_row(
            row.experiment,
            row.arm,
            row.optimizer,
            str(row.epoch),
            f"{row.train_loss:.4f}",
            f"{row.train_accuracy:.3f}",
            f"{row.validation_loss:.4f}",
            f"{row.validation_accuracy:.3f}",
            f"{row.seconds:.1f}",
        )
    return table


def write_experiment(experiment: Experiment, curves: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    """``<name>.csv`` (the learning curves) and ``<name>.png`` (their figure) in ``folder``."""
    csv, png = folder / f"{experiment.name}.csv", folder / f"{experiment.name}.png"
    files.write_atomically(csv, curves.to_csv(index=False))
    plots.save(learning_curves(experiment, curves), png)
    return csv, png


def learning_curves(experiment: Experiment, curves: pd.DataFrame) -> Figure:
    """Accuracy and loss per epoch of both arms, like Figures 3 and 4: validation solid, training dashed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    accuracy, loss = fig.subplots(1, 2)
    colours = ("#1b9e77", "#d95f02")
    for (label, arm), colour in zip(curves.groupby("arm", sort=False), colours):
        diverged = arm.loc[~np.isfinite(arm["train_loss"]), "epoch"]
        name = f"{label}, {arm['optimizer'].iloc[0]}" + (
            f", diverged at epoch {diverged.iloc[0]}" if len(diverged) else ""
        )
        for axes, column in ((accuracy, "accuracy"), (loss, "loss")):
            axes.plot(arm["epoch"], arm[f"validation_{column}"], "-o", color=colour, label=f"{name}: validation")
            axes.plot(arm["epoch"], arm[f"train_{column}"], "--", color=colour, alpha=0.8, label=f"{name}: training")
    accuracy.set_ylim(0, 1)
    accuracy.set_ylabel("accuracy")
    accuracy.axhline(1 / 10, color="grey", linewidth=0.8, linestyle=":")
    accuracy.annotate(
        "chance", (curves["epoch"].max(), 0.1), textcoords="offset points", xytext=(-30, -12), color="grey", fontsize=8
    )
    finite = curves[["train_loss", "validation_loss"]].to_numpy()
    finite = finite[np.isfinite(finite)]
    loss.set_ylim(0, min(float(finite.max()) * 1.05, 5.0) if finite.size else 5.0)
    loss.set_ylabel("cross-entropy loss")
    for axes in (accuracy, loss):
        axes.set_xlabel("epoch")
        axes.set_xticks(sorted(curves["epoch"].unique()))
        axes.grid(alpha=0.3)
    accuracy.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{experiment.name}: {experiment.claim}\n{curves['network'].iloc[0]}", fontsize=10)
    return fig
