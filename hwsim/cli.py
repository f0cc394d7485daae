"""The ``hwsim`` command: a thin shell over :mod:`hwsim.api` — parse arguments, call, render.

Every bad input ends in one line on stderr and exit code 2; no traceback reaches the user.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import click
from rich.console import Console

from hwsim import api, bundled, experiments, report
from hwsim.costs import COUNTINGS
from hwsim.errors import InputError
from hwsim.schedule import POLICIES
from hwsim.spec.hardware import Precision

INPUT_ERROR_EXIT = 2


def reports_input_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an :class:`InputError` raised anywhere below a command into one line and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(INPUT_ERROR_EXIT)

    return wrapper


def console() -> Console:
    """Wide enough for the per-layer table when output is not a terminal (pipes, tests)."""
    return Console(width=None if sys.stdout.isatty() else 220, soft_wrap=False)


network_argument = click.argument("network", default=bundled.DEFAULT_NETWORK, required=False)
hardware_option = click.option(
    "--hw", "hardware", default=bundled.DEFAULT_HARDWARE, show_default=True,
    help="Hardware profile: a YAML file or a bundled name.",
)
policy_option = click.option("--policy", type=click.Choice(list(POLICIES)), default="paper", show_default=True, help="Scheduler.")
counting_option = click.option(
    "--counting", type=click.Choice(list(COUNTINGS)), default="exact", show_default=True,
    help="exact: the arithmetic really done; paper: the appendix's conventions.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hwsim")
def main() -> None:
    """How fast will this network run on that accelerator, and why?

    \b
    hwsim estimate                                   # HairNet on the paper's accelerator
    hwsim estimate networks/alexnet.yaml --hw hardware/paper-accelerator.yaml -o alexnet.md
    hwsim reproduce                                  # the paper's appendix and its errata
    """


batch_option = click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Images per batch.")
precision_option = click.option(
    "--precision", type=click.Choice([p.value for p in Precision]), default=None, help="Override the profile's precision."
)
format_option = click.option("--format", "fmt", type=click.Choice(sorted(report.FORMATS)), help="Report format (default: from the output's suffix).")
plot_option = click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Also draw a plot (.png or .svg).")


def check_plot_path(plot: Path | None) -> None:
    """Reject an image suffix we cannot write before any work is done."""
    if plot:
        from hwsim import plots

        plots.image_format(plot)


def save_plot(draw: Callable[[Any], Any], subject: Any, plot: Path) -> None:
    from hwsim import plots

    plots.save(draw(subject), plot)
    click.echo(f"wrote {plot}")


@main.command()
@network_argument
@hardware_option
@policy_option
@counting_option
@batch_option
@precision_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to a file (.csv, .md, .json).")
@format_option
@plot_option
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the schedule as Chrome trace-event JSON (Perfetto, chrome://tracing).")
@reports_input_errors
def estimate(network: str, hardware: str, policy: str, counting: str, batch: int, precision: str | None, output: Path | None, fmt: str | None, plot: Path | None, trace_path: Path | None) -> None:
    """Estimate per-layer and total latency of NETWORK on a hardware profile.

    NETWORK is a YAML file or a bundled name (default: hairnet).

    \b
    hwsim estimate networks/hairnet.yaml --hw hardware/paper-accelerator.yaml -o report.md
    hwsim estimate networks/hairnet-paper.yaml --hw hardware/paper-appendix.yaml --counting paper
    hwsim estimate networks/hairnet.yaml --plot layers.png     # transfer vs compute per layer
    hwsim estimate --policy optimized --trace schedule.json    # timeline for Perfetto
    """
    target_format = report.format_for(output, fmt) if output else fmt
    check_plot_path(plot)
    result = api.estimate(api.load_network(network), api.load_hardware(hardware), policy, counting, batch, precision)
    if output:
        report.write_atomically(output, report.FORMATS[target_format](result))
        click.echo(f"wrote {output}")
    elif target_format:
        click.echo(report.FORMATS[target_format](result), nl=False)
    else:
        report.render_table(result, console())
    if plot:
        from hwsim.plots import layer_bars

        save_plot(layer_bars, result, plot)
    if trace_path:
        from hwsim.trace import to_trace_json

        report.write_atomically(trace_path, to_trace_json(result.schedule))
        click.echo(f"wrote {trace_path}")


@main.command()
@click.argument("networks", nargs=-1)
@click.option("--hw", "hardware", multiple=True, help="Hardware profile (repeatable; default: the paper's accelerator).")
@click.option("--policy", "policies", type=click.Choice(list(POLICIES)), multiple=True, help="Scheduler (repeatable; default: paper).")
@counting_option
@batch_option
@precision_option
@click.option("--per-layer", is_flag=True, help="Diff exactly two runs layer by layer.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the table to a file (.csv, .md, .json).")
@format_option
@reports_input_errors
def compare(networks: tuple[str, ...], hardware: tuple[str, ...], policies: tuple[str, ...], counting: str, batch: int,
            precision: str | None, per_layer: bool, output: Path | None, fmt: str | None) -> None:
    """Compare NETWORKS × hardware × policies side by side, one row per combination.

    Each row: parameters, MACs, bytes moved, latency, images/s, lower bound, efficiency and
    latency as a multiple of the first row's.

    \b
    hwsim compare hairnet alexnet hairnet-standard --hw paper-accelerator
    hwsim compare hairnet --hw paper-accelerator --hw edge-npu -o cmp.md
    hwsim compare hairnet hairnet-dense --per-layer       # two runs, layer by layer
    """
    from hwsim import compare as comparing

    target_format = report.format_for(output, fmt) if output else fmt
    estimates = comparing.run_grid(
        networks or [bundled.DEFAULT_NETWORK], hardware or [bundled.DEFAULT_HARDWARE], policies or ["paper"],
        counting, batch, precision,
    )
    table = comparing.per_layer(estimates) if per_layer else comparing.summary_table(estimates)
    if output:
        report.write_atomically(output, comparing.FORMATS[target_format](table))
        click.echo(f"wrote {output}")
    elif target_format:
        click.echo(comparing.FORMATS[target_format](table), nl=False)
    else:
        comparing.render(table, console())


PROGRESS_THRESHOLD = 2000
"""Sweeps with more points than this show a progress bar (on stderr)."""


@main.command()
@network_argument
@hardware_option
@click.option("--vary", "varies", multiple=True, required=True, metavar="FIELD=LO..HI[:lin|log][:N]",
              help="A numeric hardware field and its range (repeatable: the full grid). Default log, 5 points.")
@policy_option
@counting_option
@batch_option
@precision_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write every point as CSV.")
@plot_option
@reports_input_errors
def sweep(network: str, hardware: str, varies: tuple[str, ...], policy: str, counting: str, batch: int,
          precision: str | None, output: Path | None, plot: Path | None) -> None:
    """Sweep hardware fields over a grid and schedule NETWORK at every point.

    FIELD is a dotted path into the profile: memory.internal.capacity, memory.external.bandwidth,
    compute.matrix.throughput, ... Values take units (256KB, 0.5GB/s, 2TFLOPS). The plot marks
    where more of a resource stops paying: the smallest value within 5 % of the best latency.

    \b
    hwsim sweep hairnet --hw paper-accelerator --vary memory.internal.capacity=256KB..8MB:log:6 \\
        --vary memory.external.bandwidth=0.5GB/s..32GB/s:log:7 -o sweep.csv --plot sweep.png
    """
    from hwsim import sweep as sweeping

    if output and output.suffix.lower() != ".csv":
        raise InputError(f"a sweep is written as CSV; use a .csv suffix, not {output.name!r}", str(output))
    check_plot_path(plot)
    graph, profile = api.load_network(network), api.load_hardware(hardware)
    axes = [sweeping.parse_axis(text, profile) for text in varies]
    if plot:
        from hwsim.plots import check_sweep_axes

        check_sweep_axes(len(axes))
    points = 1
    for axis in axes:
        points *= len(axis.values)
    with progress_bar(points) as advance:
        result = sweeping.run(graph, profile, axes, policy, counting, batch, precision, on_progress=advance)
    if output:
        report.write_atomically(output, result.rows.to_csv(index=False))
        click.echo(f"wrote {output} ({points} points)")
    best = result.rows.loc[result.rows["total_s"].idxmin()]
    click.echo("best: " + ", ".join(f"{a.field} = {a.human(best[a.column])}" for a in axes) + f" -> {best['total_s'] * 1e3:.4g} ms")
    if plot:
        from hwsim.plots import sweep_figure

        save_plot(sweep_figure, result, plot)


@contextlib.contextmanager
def progress_bar(points: int) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr for long sweeps; yields the callback that advances it, or None."""
    if points <= PROGRESS_THRESHOLD:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("sweeping", total=points)
        yield lambda done: progress.advance(task, done)


@main.command()
@network_argument
@hardware_option
@policy_option
@counting_option
@batch_option
@precision_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("roofline.png"), show_default=True,
              help="The image (.png or .svg).")
@reports_input_errors
def roofline(network: str, hardware: str, policy: str, counting: str, batch: int, precision: str | None, output: Path) -> None:
    """Draw the roofline: every layer of NETWORK under the memory roof and one roof per compute unit.

    A layer's arithmetic intensity is its ops over the bytes it moves over the external bus.

    \b
    hwsim roofline networks/hairnet.yaml --hw hardware/paper-accelerator.yaml -o roofline.png
    """
    from hwsim.plots import roofline as draw

    check_plot_path(output)
    result = api.estimate(api.load_network(network), api.load_hardware(hardware), policy, counting, batch, precision)
    save_plot(draw, result, output)


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Also write the claims as Markdown (.md).")
@reports_input_errors
def claims(output: Path | None) -> None:
    """The paper's claims as numbers: HairNet's share of AlexNet's parameters, depthwise separable
    vs standard convolution stage by stage against 1/N + 1/K^2, and the dense head's parameter ratio."""
    from hwsim import claims as paper_claims

    if output and output.suffix.lower() not in (".md", ".markdown"):
        raise InputError(f"claims are written as Markdown; use a .md suffix, not {output.name!r}", str(output))
    scalars, stages = paper_claims.all_claims()
    paper_claims.render(scalars, stages, console())
    if output:
        report.write_atomically(output, paper_claims.to_markdown(scalars, stages))
        click.echo(f"wrote {output}")


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Also write the row-by-row comparison as CSV.")
@reports_input_errors
def reproduce(output: Path | None) -> None:
    """The paper's appendix row by row beside hwsim's, then its errata corrected one at a time."""
    from hwsim import reproduce as reproduction

    comparison = reproduction.compare_appendix()
    reproduction.render(comparison, reproduction.errata_chain(), console())
    if output:
        report.write_atomically(output, comparison.rows.to_csv(index=False))
        click.echo(f"wrote {output}")


@main.command()
@network_argument
@counting_option
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Images per batch.")
@reports_input_errors
def verify(network: str, counting: str, batch: int) -> None:
    """Execute NETWORK in the NumPy reference and compare its ops with the cost model, layer by layer.

    Runs an inference forward, a training forward and backward under cross-entropy, and one Adam
    step, counting every operation performed. Exits 1 if any modelled count differs.

    \b
    hwsim verify networks/hairnet.yaml
    hwsim verify networks/hairnet-paper.yaml --counting paper   # where the paper's counts go wrong
    """
    from hwsim import verify as verification

    result = verification.verify(api.load_network(network), api.counting_named(counting), batch)
    verification.render_verification(result, console())
    sys.exit(1 if result.differences else 0)


@main.command()
@network_argument
@counting_option
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Images per batch.")
@click.option("--write", "write_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the counts as a golden CSV file.")
@click.option("--check", "check_path", type=click.Path(dir_okay=False, path_type=Path), help="Compare with a golden CSV file; exit 1 on any difference.")
@reports_input_errors
def ops(network: str, counting: str, batch: int, write_path: Path | None, check_path: Path | None) -> None:
    """Modelled ops of NETWORK per layer: inference forward, training forward, backward, Adam step.

    \b
    hwsim ops networks/hairnet.yaml
    hwsim ops networks/hairnet.yaml --write tests/golden/hairnet.ops.csv
    hwsim ops networks/hairnet.yaml --check tests/golden/hairnet.ops.csv
    """
    from hwsim import verify as verification

    if write_path and check_path:
        raise InputError("--write and --check exclude each other")
    rows = verification.op_table(api.load_network(network), api.counting_named(counting), batch)
    if write_path:
        report.write_atomically(write_path, verification.format_op_table(rows))
        click.echo(f"wrote {write_path}")
    elif check_path:
        differences = verification.golden_differences(verification.read_golden(check_path), rows)
        for line in differences:
            click.echo(line)
        click.echo(f"{len(differences)} differences from {check_path}" if differences else f"matches {check_path}")
        sys.exit(1 if differences else 0)
    else:
        click.echo(verification.format_op_table(rows), nl=False)


def training_data_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--data FOLDER (CIFAR-10) or the generated set (--images, --data-seed)."""
    for option in reversed((
        click.option("--data", "data_folder", type=str, help="A CIFAR-10 folder (python or binary format); default: the generated shapes."),
        click.option("--images", "num_images", type=click.IntRange(min=2), help="Use this many images (generated default: 3000; CIFAR-10: all)."),
        click.option("--data-seed", type=int, help="Seed of the generated images (default 0; predict: the training seed + 1)."),
    )):
        command = option(command)
    return command


@main.command()
@click.argument("network")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), help="Default: adam (or the checkpoint's).")
@click.option("--lr", "learning_rate", type=float, help="Learning rate (Adam's alpha); default 0.001 for Adam, 0.01 for SGD.")
@click.option("--momentum", type=float, help="SGD momentum (default 0).")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True, help="Epochs to train (more epochs when resuming).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per step (default 64).")
@click.option("--seed", type=int, help="Seed of the weights, the validation split and the shuffling (default 0).")
@click.option("--validation", "validation_fraction", type=float, help="Held-out fraction of the images (default 0.1).")
@training_data_options
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), help="Save the run here (.npz) after every epoch.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), help="Continue the run saved in this checkpoint (and save it back there).")
@click.option("--metrics", type=click.Path(dir_okay=False, path_type=Path), help="Write the per-epoch metrics as CSV after every epoch.")
@reports_input_errors
def train(network: str, epochs: int, checkpoint: Path | None, resume: Path | None, metrics: Path | None, **given: Any) -> None:
    """Train NETWORK on the NumPy reference, with a held-out validation split.

    \b
    hwsim train networks/hairnet-cifar10-small.yaml --optimizer adam --epochs 5 --checkpoint run.npz
    hwsim train networks/hairnet-cifar10-small.yaml --resume run.npz --epochs 5
    hwsim train networks/hairnet-cifar10.yaml --data ~/datasets/cifar-10-batches-py --metrics curves.csv
    """
    from hwsim import runs, train_report

    graph = api.load_network(network)
    out = console()
    with train_report.training_progress(Console(stderr=True)) as progress:
        run = runs.train_network(graph, given, epochs, resume, checkpoint, metrics,
                                 on_batch=train_report.batch_callback(progress, f"{graph.name}"),
                                 on_epoch=lambda run: out.print(train_report.epoch_line(run.history[-1])))
    out.print(f"{graph.name}: trained to epoch {run.epoch} with {run.settings.optimizer.describe()} on {run.settings.data.describe()}")
    for path in (checkpoint or resume, metrics):
        if path:
            click.echo(f"wrote {path}")


@main.command()
@click.argument("network")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), required=True, help="A checkpoint written by hwsim train.")
@training_data_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write every image's prediction as CSV.")
@reports_input_errors
def predict(network: str, checkpoint: Path, data_folder: str | None, num_images: int | None, data_seed: int | None, output: Path | None) -> None:
    """Accuracy of a trained checkpoint on test images it never saw, per class.

    Test images: CIFAR-10's test batch when trained on (or given) --data, else a generated set
    from the training data seed + 1.

    \b
    hwsim predict networks/hairnet-cifar10-small.yaml --checkpoint run.npz
    hwsim predict networks/hairnet-cifar10.yaml --checkpoint run.npz --data ~/datasets/cifar-10-batches-py -o predictions.csv
    """
    from hwsim import runs, train_report

    test_set, probabilities, loss, accuracy = runs.evaluate_checkpoint(api.load_network(network), checkpoint, data_folder, num_images, data_seed)
    out = console()
    out.print(train_report.prediction_table(test_set, probabilities))
    out.print(f"accuracy {accuracy:.4f} (loss {loss:.4f}) on {len(test_set)} test images")
    if output:
        report.write_atomically(output, train_report.predictions_frame(test_set, probabilities).to_csv(index=False))
        click.echo(f"wrote {output}")


@main.command()
@click.argument("which", type=click.Choice([*experiments.EXPERIMENTS, "all"]))
@click.option("--network", default=experiments.DEFAULT_NETWORK, show_default=True, help="The network every variant starts from.")
@click.option("--epochs", type=click.IntRange(min=1), default=experiments.DEFAULT_EPOCHS, show_default=True)
@click.option("--images", "num_images", type=click.IntRange(min=2), default=experiments.DEFAULT_IMAGES, show_default=True,
              help="Generated images (or CIFAR-10 training images) per run.")
@click.option("--data", "data_folder", type=str, help="A CIFAR-10 folder; default: the generated shapes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=2, show_default=True, help="Runs trained at once, in worker processes (1: one at a time, with a progress bar per batch).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for <experiment>.csv and <experiment>.png.")
@reports_input_errors
def experiment(which: str, network: str, epochs: int, num_images: int, data_folder: str | None, seed: int, jobs: int, output: Path) -> None:
    """Section 4.2's training experiments: learning curves as CSV and PNG, like Figures 3 and 4.

    \b
    hwsim experiment batchnorm --epochs 3 -o results/   # same high SGD rate, with vs without batch norm
    hwsim experiment head -o results/                   # fully convolutional head vs dense layer after GAP
    hwsim experiment all -o docs/experiments/           # also: optimizer (Adam vs SGD)
    """
    import pandas as pd

    from hwsim import train_report
    from hwsim.train import DataSource

    if not output.is_dir():
        raise InputError("no such directory", str(output))
    chosen = list(experiments.EXPERIMENTS.values()) if which == "all" else [experiments.EXPERIMENTS[which]]
    settings = experiments.ExperimentSettings(epochs, DataSource(data_folder, num_images, seed), seed=seed)
    graph = api.load_network(network)
    settings.data.training_set()  # bad data fails here, once, rather than in every worker
    with train_report.training_progress(Console(stderr=True)) as progress:
        if jobs > 1:
            progress.add_task(f"{sum(len(e.arms) for e in chosen)} runs, {jobs} at a time", total=None, loss=float("nan"), accuracy=float("nan"))
        curves = experiments.run_experiments(chosen, graph, settings, jobs,
                                             lambda e, arm: train_report.batch_callback(progress, f"{e.name}: {arm.label}"))
    out = console()
    for chosen_experiment in chosen:
        for path in experiments.write_experiment(chosen_experiment, curves[chosen_experiment.name], output):
            out.print(f"wrote {path}")
    out.print(train_report.experiment_table(pd.concat([experiments.final_epochs(c) for c in curves.values()])))


if __name__ == "__main__":
    main()
