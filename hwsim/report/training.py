"""What ``hwsim train``, ``predict`` and ``experiment`` show: a progress bar per run, a line per epoch,
result tables, learning curves."""

from __future__ import annotations

import contextlib
import textwrap
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
from hwsim.report.terminal import FITTED, Column, View, print_table
from hwsim.training.data import Dataset
from hwsim.training.environment import describe
from hwsim.training.experiments import VERDICT_METRIC, Experiment, Lead, lead
from hwsim.training.train import BatchCallback, EpochMetrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hwsim.report.terminal import Screen


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


METRIC_NAMES = {
    "validation_accuracy": "validation accuracy",
    "validation_loss": "validation loss",
    "train_accuracy": "training accuracy",
    "train_loss": "training loss",
}


def lead_sentence(verdict: Lead) -> str:
    """What the curves show at one epoch, from the data: ``SGD ahead of Adam by 0.093 in validation accuracy at
    epoch 4 (mean of 5 seeds; ahead in 4 of 5)``."""
    metric = METRIC_NAMES.get(verdict.metric, verdict.metric)
    if verdict.seeds == 1:
        how = "one seed"
    else:
        spread = f"sd {verdict.difference_std:.3f}; ahead in {verdict.ahead} of {verdict.seeds}"
        how = f"mean of {verdict.seeds} seeds, {spread}"
    if verdict.difference == 0:
        return f"{verdict.leader} and {verdict.trailer} level in {metric} at epoch {verdict.epoch} ({how})"
    return (
        f"{verdict.leader} ahead of {verdict.trailer} by {verdict.difference:.3f} in {metric} "
        f"at epoch {verdict.epoch} ({how})"
    )


def mean_and_spread(values: pd.Series) -> str:
    """``0.524 ± 0.031 (0.487-0.567)``: mean, sample standard deviation and range over the seeds."""
    if len(values) == 1:
        return f"{values.iloc[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std():.3f} ({values.min():.3f}-{values.max():.3f})"


EXPERIMENT_COLUMNS = [
    Column("experiment", "experiment", priority=0),
    Column("arm", "arm", elide=True, priority=1),
    Column("optimizer", "optimizer", elide=True, priority=5),
    Column("epoch", "epochs", "int", priority=6),
    Column("seeds", "seeds", "int", priority=4),
    Column("train_loss", "train loss", priority=3),
    Column("validation_accuracy", "val acc", priority=2),
    Column("seconds", "s/epoch", "number", priority=7),
]
"""Last-epoch numbers per arm; losses and accuracies as text: mean ± sd (lowest-highest) over the seeds."""


def experiment_table(finals: pd.DataFrame, console: Screen, view: View = FITTED) -> None:
    """Last-epoch numbers of every arm: over several seeds, mean ± standard deviation (lowest-highest)."""
    rows = [
        {
            "experiment": experiment,
            "arm": arm,
            "optimizer": runs["optimizer"].iloc[0],
            "epoch": runs["epoch"].iloc[0],
            "seeds": len(runs),
            "train_loss": mean_and_spread(runs["train_loss"]),
            "validation_accuracy": mean_and_spread(runs["validation_accuracy"]),
            "seconds": runs["seconds"].mean(),
        }
        for (experiment, arm), runs in finals.groupby(["experiment", "arm"], sort=False)
    ]
    print_table(console, pd.DataFrame(rows), EXPERIMENT_COLUMNS, view=view)


def summary_markdown(chosen: list[Experiment], curves: dict[str, pd.DataFrame]) -> str:
    """Every experiment's verdict, and its validation accuracy per epoch as mean ± sd (range) over the seeds."""
    first = next(iter(curves.values()))
    lines = ["# Training experiments", "", f"Made with {describe(first.iloc[0].to_dict())}.", ""]
    for experiment in chosen:
        table = curves[experiment.name]
        epochs = sorted(table["epoch"].unique())
        lines += [f"## {experiment.name}", "", f"Paper: {experiment.claim}.", ""]
        lines += [f"Here: {lead_sentence(lead(table))}.", ""]
        for metric in (VERDICT_METRIC, "train_loss"):
            lines += [f"{METRIC_NAMES[metric]}, mean ± sd (lowest-highest) over the seeds:", ""]
            lines += ["| arm | " + " | ".join(f"epoch {e}" for e in epochs) + " |"]
            lines += ["| --- |" + " ---: |" * len(epochs)]
            for arm, rows in table.groupby("arm", sort=False):
                cells = [mean_and_spread(rows.loc[rows["epoch"] == e, metric]) for e in epochs]
                lines += [f"| {arm}, {rows['optimizer'].iloc[0]} | " + " | ".join(cells) + " |"]
            lines += [""]
    return "\n".join(lines)


def write_experiment(experiment: Experiment, curves: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    """``<name>.csv`` (the learning curves, every seed) and ``<name>.png`` (their figure) in ``folder``."""
    csv, png = folder / f"{experiment.name}.csv", folder / f"{experiment.name}.png"
    files.write_atomically(csv, curves.to_csv(index=False))
    recorded = curves.iloc[0].to_dict()
    plots.save(
        learning_curves(experiment, curves),
        png,
        metadata={"Description": lead_sentence(lead(curves)), "Software": describe(recorded)},
    )
    return csv, png


TITLE_CHARACTERS = 110
"""A title line of the learning curves' figure, 10 inches wide at 10 points, wraps after this many characters."""


def learning_curves(experiment: Experiment, curves: pd.DataFrame) -> Figure:
    """Accuracy and loss per epoch of both arms, like Figures 3 and 4: validation solid, training dashed.

    Over several seeds a line is their mean and the shaded band runs from the lowest to the highest
    validation value. The title says what the curves show (:func:`lead_sentence`), never what the paper claimed.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.6), layout="constrained")
    accuracy, loss = fig.subplots(1, 2)
    colours = ("#1b9e77", "#d95f02")
    seeds = curves["seed"].nunique()
    for (label, arm), colour in zip(curves.groupby("arm", sort=False), colours):
        finite = arm.replace([np.inf, -np.inf], np.nan)
        diverged = arm.loc[~np.isfinite(arm["train_loss"]), "seed"].nunique()
        name = f"{label}, {arm['optimizer'].iloc[0]}" + (
            f", diverged in {diverged} of {seeds} seeds" if diverged else ""
        )
        by_epoch = finite.groupby("epoch")
        for axes, column in ((accuracy, "accuracy"), (loss, "loss")):
            validation = by_epoch[f"validation_{column}"]
            epochs = np.array(sorted(arm["epoch"].unique()))
            axes.plot(epochs, validation.mean(), "-o", color=colour, label=f"{name}: validation")
            if seeds > 1:
                axes.fill_between(epochs, validation.min(), validation.max(), color=colour, alpha=0.15, lw=0)
            axes.plot(
                epochs, by_epoch[f"train_{column}"].mean(), "--", color=colour, alpha=0.8, label=f"{name}: training"
            )
    accuracy.set_ylim(0, 1)
    accuracy.set_ylabel("accuracy")
    accuracy.axhline(1 / 10, color="grey", linewidth=0.8, linestyle=":")
    accuracy.annotate(
        "chance", (curves["epoch"].max(), 0.1), textcoords="offset points", xytext=(-30, -12), color="grey", fontsize=8
    )
    finite_losses = curves[["train_loss", "validation_loss"]].to_numpy()
    finite_losses = finite_losses[np.isfinite(finite_losses)]
    loss.set_ylim(0, min(float(finite_losses.max()) * 1.05, 5.0) if finite_losses.size else 5.0)
    loss.set_ylabel("cross-entropy loss")
    for axes in (accuracy, loss):
        axes.set_xlabel("epoch")
        axes.set_xticks(sorted(curves["epoch"].unique()))
        axes.grid(alpha=0.3)
    accuracy.legend(fontsize=7, loc="upper left")
    spread_note = (
        f"lines: mean of {seeds} seeds; bands: lowest to highest validation value" if seeds > 1 else "one seed"
    )
    headline = textwrap.fill(f"{experiment.name}: {lead_sentence(lead(curves))}", TITLE_CHARACTERS)
    fig.suptitle(f"{headline}\n{curves['network'].iloc[0]}; {spread_note}", fontsize=10)
    fig.supxlabel(describe(curves.iloc[0].to_dict()), fontsize=7, color="grey")
    return fig
