"""Commands that train on the NumPy reference: train, predict, and the paper's experiments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from hwsim import api, files
from hwsim.cli.common import (
    check_outputs,
    console,
    file_option,
    input_shape_option,
    max_memory_option,
    output_option,
    reports_input_errors,
    require_suffix,
    stacked,
    table_options,
)
from hwsim.errors import InputError
from hwsim.report.terminal import View
from hwsim.training import experiments
from hwsim.training.train import MAX_GENERATED_IMAGES

training_data_options = stacked(
    click.option(
        "--data",
        "data_folder",
        type=str,
        help="A CIFAR-10 folder (python or binary format); default: the generated shapes.",
    ),
    click.option(
        "--images",
        "num_images",
        type=click.IntRange(min=2),
        help=f"Use this many images (generated default: 3000, at most {MAX_GENERATED_IMAGES:,}; CIFAR-10: all).",
    ),
    click.option(
        "--data-seed",
        type=click.IntRange(min=0),
        help="Seed of the generated images (default 0; predict: the training seed + 1).",
    ),
)
"""--data FOLDER (CIFAR-10) or the generated set (--images, --data-seed)."""


@click.command()
@click.argument("network")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), help="Default: adam (or the checkpoint's).")
@click.option(
    "--lr",
    "learning_rate",
    type=float,
    help="Learning rate (Adam's alpha), finite and > 0; default 0.001 for Adam, 0.01 for SGD.",
)
@click.option("--momentum", type=float, help="SGD momentum, in [0, 1) (default 0).")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Epochs to train (more epochs when resuming).",
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per step (default 64).")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    help="Seed of the weights, the validation split and the shuffling (default 0).",
)
@click.option("--validation", "validation_fraction", type=float, help="Held-out fraction of the images (default 0.1).")
@training_data_options
@file_option("--checkpoint", help="Save the run here (.npz) after every epoch.")
@file_option(
    "--resume",
    help="Continue the run saved in this checkpoint (and save it back there).",
)
@file_option(
    "--metrics",
    help="Write the per-epoch metrics as CSV after every epoch.",
)
@max_memory_option
@input_shape_option
@reports_input_errors
def train(
    network: str,
    epochs: int,
    checkpoint: Path | None,
    resume: Path | None,
    metrics: Path | None,
    max_memory: str | None,
    input_shape: tuple[int, ...] | None,
    **given: Any,
) -> None:
    """Train NETWORK on the NumPy reference, with a held-out validation split.

    \b
    hwsim train networks/hairnet-cifar10-small.yaml --optimizer adam --epochs 5 --checkpoint run.npz
    hwsim train networks/hairnet-cifar10-small.yaml --resume run.npz --epochs 5
    hwsim train networks/hairnet-cifar10.yaml --data ~/datasets/cifar-10-batches-py --max-memory 6GB --metrics run.csv
    """
    from hwsim.report import training as train_report
    from hwsim.training import runs

    save_to = checkpoint or resume
    require_suffix(save_to, (".npz",), "a checkpoint is an .npz archive")
    require_suffix(metrics, (".csv",), "metrics are written as CSV")
    only_read = [resume] if resume and save_to and files.resolved(save_to) != files.resolved(resume) else []
    check_outputs([Path(network), *only_read], [save_to, metrics])
    graph = api.load_network(network, input_shape)
    out = console()
    with train_report.training_progress(Console(stderr=True)) as progress:
        run = runs.train_network(
            graph,
            given,
            epochs,
            resume,
            checkpoint,
            metrics,
            on_batch=train_report.batch_callback(progress, f"{graph.name}"),
            on_epoch=lambda run: out.print(train_report.epoch_line(run.history[-1])),
            max_memory=max_memory,
        )
    out.print(
        f"{graph.name}: trained to epoch {run.epoch} with {run.settings.optimizer.describe()} "
        f"on {run.settings.data.describe()}"
    )
    for path in (checkpoint or resume, metrics):
        if path:
            click.echo(f"wrote {path}")


@click.command()
@click.argument("network")
@file_option(
    "--checkpoint",
    required=True,
    help="A checkpoint written by hwsim train.",
)
@training_data_options
@output_option("Write every image's prediction as CSV.")
@max_memory_option
@input_shape_option
@reports_input_errors
def predict(
    network: str,
    checkpoint: Path,
    data_folder: str | None,
    num_images: int | None,
    data_seed: int | None,
    output: Path | None,
    max_memory: str | None,
    input_shape: tuple[int, ...] | None,
) -> None:
    """Accuracy of a trained checkpoint on test images it never saw, per class.

    Test images: CIFAR-10's test batch when trained on (or given) --data, else a generated set
    from the training data seed + 1.

    \b
    hwsim predict networks/hairnet-cifar10-small.yaml --checkpoint run.npz
    hwsim predict networks/hairnet-cifar10.yaml --checkpoint run.npz \\
        --data ~/datasets/cifar-10-batches-py -o predictions.csv
    """
    from hwsim.report import training as train_report
    from hwsim.training import runs

    require_suffix(output, (".csv",), "predictions are written as CSV")
    check_outputs([Path(network), checkpoint], [output])
    test_set, probabilities, loss, accuracy = runs.evaluate_checkpoint(
        api.load_network(network, input_shape), checkpoint, data_folder, num_images, data_seed, max_memory
    )
    out = console()
    out.print(train_report.prediction_table(test_set, probabilities))
    out.print(f"accuracy {accuracy:.4f} (loss {loss:.4f}) on {len(test_set)} test images")
    if output:
        files.write_atomically(output, train_report.predictions_frame(test_set, probabilities).to_csv(index=False))
        click.echo(f"wrote {output}")


@click.command()
@click.argument("which", type=click.Choice([*experiments.EXPERIMENTS, "all"]))
@click.option(
    "--network", default=experiments.DEFAULT_NETWORK, show_default=True, help="The network every variant starts from."
)
@click.option("--epochs", type=click.IntRange(min=1), default=experiments.DEFAULT_EPOCHS, show_default=True)
@click.option(
    "--images",
    "num_images",
    type=click.IntRange(min=2),
    default=experiments.DEFAULT_IMAGES,
    show_default=True,
    help=f"Generated images (at most {MAX_GENERATED_IMAGES:,}) or CIFAR-10 training images per run.",
)
@click.option("--data", "data_folder", type=str, help="A CIFAR-10 folder; default: the generated shapes.")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the generated images and of the first run (weights, split, order).",
)
@click.option(
    "--seeds",
    "num_seeds",
    type=click.IntRange(min=1, max=100),
    default=experiments.DEFAULT_SEEDS,
    show_default=True,
    help="Runs per arm, with seeds SEED, SEED+1, ...: verdicts are means over them, with their spread.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Runs trained at once, in worker processes (1: one at a time, with a progress bar per batch).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for <experiment>.csv, <experiment>.png and summary.md (made, with its parents, if missing).",
)
@max_memory_option
@table_options
@reports_input_errors
def experiment(
    which: str,
    network: str,
    epochs: int,
    num_images: int,
    data_folder: str | None,
    seed: int,
    num_seeds: int,
    jobs: int,
    output: Path,
    max_memory: str | None,
    wide: bool,
    columns: tuple[str, ...],
) -> None:
    """Section 4.2's training experiments: learning curves as CSV and PNG, like Figures 3 and 4.

    Each arm is trained once per seed; summary.md gives every verdict as a mean over the seeds with
    its spread, and every output names the Python, NumPy and BLAS that made it.

    \b
    hwsim experiment batchnorm --epochs 3 -o results/   # same high SGD rate, with vs without batch norm
    hwsim experiment head --seeds 1 -o results/         # fully convolutional head vs dense layer after GAP
    hwsim experiment all --seeds 5 -o docs/experiments/ # also: optimizer (Adam vs SGD)
    """
    import pandas as pd

    from hwsim.report import training as train_report
    from hwsim.training.train import DataSource

    if output.exists() and not output.is_dir():
        raise InputError("not a folder", str(output))
    chosen = list(experiments.EXPERIMENTS.values()) if which == "all" else [experiments.EXPERIMENTS[which]]
    settings = experiments.ExperimentSettings(
        epochs, DataSource(data_folder, num_images, seed), seeds=tuple(range(seed, seed + num_seeds))
    )
    graph = api.load_network(network)
    experiments.check_memory(chosen, graph, settings, jobs, max_memory)
    experiments.check_data(settings)  # bad data fails here, once, rather than in every worker
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot make this folder: {err.strerror or err}", str(output)) from None
    with train_report.training_progress(Console(stderr=True)) as progress:
        if jobs > 1:
            progress.add_task(
                f"{sum(len(e.arms) for e in chosen) * num_seeds} runs, {jobs} at a time",
                total=None,
                loss=float("nan"),
                accuracy=float("nan"),
            )
        curves = experiments.run_experiments(
            chosen,
            graph,
            settings,
            jobs,
            lambda e, arm: train_report.batch_callback(progress, f"{e.name}: {arm.label}"),
        )
    out = console()
    for chosen_experiment in chosen:
        for path in train_report.write_experiment(chosen_experiment, curves[chosen_experiment.name], output):
            out.print(f"wrote {path}")
    summary = output / "summary.md"
    files.write_atomically(summary, train_report.summary_markdown(chosen, curves))
    out.print(f"wrote {summary}")
    finals = pd.concat([experiments.final_epochs(c) for c in curves.values()])
    train_report.experiment_table(finals, out, View(wide, columns))
    for chosen_experiment in chosen:
        verdict = experiments.lead(curves[chosen_experiment.name])
        out.print(f"{chosen_experiment.name}: {train_report.lead_sentence(verdict)}", highlight=False)
