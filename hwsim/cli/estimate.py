"""Commands that schedule networks on hardware: estimate, compare, sweep, roofline."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from hwsim import api, bundled, files
from hwsim.cli.common import (
    POLICIES_IN_A_LINE,
    batch_option,
    check_outputs,
    check_plot_path,
    console,
    counting_option,
    emit,
    file_option,
    format_option,
    input_shape_option,
    load_inputs,
    map_zeros_option,
    output_format,
    output_option,
    plot_option,
    pool_options,
    precision_option,
    reports_input_errors,
    require_suffix,
    run_options,
    save_plot,
    steady_state_option,
    table_options,
    vary_option,
)
from hwsim.errors import InputError
from hwsim.report import tables
from hwsim.report.terminal import View
from hwsim.schedule import POLICIES
from hwsim.spec.zeros import map_zeros_from


@click.command()
@run_options
@steady_state_option
@map_zeros_option
@output_option("Write the report to a file (.csv, .md, .json).")
@format_option
@table_options
@plot_option
@file_option(
    "--trace",
    "trace_path",
    help="Also write the schedule as Chrome trace-event JSON (Perfetto, chrome://tracing).",
)
@reports_input_errors
def estimate(
    network: str,
    hardware: str,
    policy: str,
    counting: str,
    batch: int,
    precision: str | None,
    steady_state: bool | None,
    map_zeros: str | None,
    output: Path | None,
    fmt: str | None,
    wide: bool,
    columns: tuple[str, ...],
    plot: Path | None,
    trace_path: Path | None,
    input_shape: tuple[int, ...] | None,
) -> None:
    """Estimate per-layer and total latency of NETWORK on a hardware profile.

    NETWORK is a YAML file, an ONNX model (.onnx) or a bundled name (default: hairnet).

    \b
    hwsim estimate networks/hairnet.yaml --hw hardware/paper-accelerator.yaml -o report.md
    hwsim estimate networks/hairnet-paper.yaml --hw hardware/paper-appendix.yaml --counting paper
    hwsim estimate resnet18.onnx --hw edge-npu                 # an ONNX model as it is
    hwsim estimate networks/hairnet.yaml --plot layers.png     # transfer vs compute per layer
    hwsim estimate --policy optimized --trace schedule.json    # timeline for Perfetto
    hwsim estimate mobilenet-v1 --hw tpu-v1 --policy optimized --steady-state   # weights stay on chip
    hwsim estimate alexnet --hw eyeriss-v1 --policy strict --map-zeros 0.6     # maps run-length coded in DRAM
    """
    target_format = output_format(output, fmt)
    check_plot_path(plot)
    require_suffix(trace_path, (".json",), "a trace is Chrome trace-event JSON")
    graph, profile = load_inputs(network, hardware, [output, plot, trace_path], input_shape)
    zeros = map_zeros_from(map_zeros, graph.map_names) if map_zeros is not None else None
    result = api.estimate(graph, profile, policy, counting, batch, precision, steady_state, zeros)
    emit(result, output, target_format, tables.FORMATS, tables.render_table, View(wide, columns))
    if plot:
        from hwsim.report.plots import layer_bars

        save_plot(layer_bars, result, plot)
    if trace_path:
        from hwsim.report.trace import to_trace_json
        from hwsim.schedule.program import link_ratios

        trace = to_trace_json(result.schedule, result.step_energy, link_ratios(result.costs))
        files.write_atomically(trace_path, trace)
        click.echo(f"wrote {trace_path}")


@click.command()
@click.argument("networks", nargs=-1)
@click.option(
    "--hw", "hardware", multiple=True, help="Hardware profile (repeatable; default: the paper's accelerator)."
)
@click.option(
    "--policy",
    "policies",
    type=click.Choice(list(POLICIES)),
    multiple=True,
    help="How layers are scheduled; repeat it to compare (default: paper).\n" + POLICIES_IN_A_LINE,
)
@counting_option
@batch_option
@precision_option
@steady_state_option
@map_zeros_option
@click.option("--per-layer", is_flag=True, help="Diff exactly two runs layer by layer.")
@output_option("Write the table to a file (.csv, .md, .json).")
@format_option
@table_options
@input_shape_option
@reports_input_errors
def compare(
    networks: tuple[str, ...],
    hardware: tuple[str, ...],
    policies: tuple[str, ...],
    counting: str,
    batch: int,
    precision: str | None,
    steady_state: bool | None,
    map_zeros: str | None,
    per_layer: bool,
    output: Path | None,
    fmt: str | None,
    wide: bool,
    columns: tuple[str, ...],
    input_shape: tuple[int, ...] | None,
) -> None:
    """Compare NETWORKS × hardware × policies side by side, one row per combination.

    Each row: parameters, MACs, bytes moved, latency, images/s, lower bound, efficiency and
    latency as a multiple of the first row's.

    \b
    hwsim compare hairnet alexnet hairnet-standard --hw paper-accelerator
    hwsim compare hairnet --hw paper-accelerator --hw edge-npu -o cmp.md
    hwsim compare hairnet hairnet-dense --per-layer       # two runs, layer by layer
    hwsim compare alexnet vgg16 --hw eyeriss-v1 --map-zeros 0.5   # maps run-length coded in DRAM
    """
    from hwsim.report.studies import render_comparison
    from hwsim.studies import compare as comparing

    target_format = output_format(output, fmt)
    check_outputs(
        [bundled.resolve("networks", n) for n in networks] + [bundled.resolve("hardware", h) for h in hardware],
        [output],
    )
    graphs = comparing.load_networks(networks or [bundled.DEFAULT_NETWORK], input_shape)
    names = {name for graph in graphs for name in graph.map_names}
    zeros = map_zeros_from(map_zeros, names) if map_zeros is not None else None
    estimates = comparing.run_grid(
        graphs,
        hardware or [bundled.DEFAULT_HARDWARE],
        policies or ["paper"],
        counting,
        batch,
        precision,
        steady_state,
        map_zeros=zeros,
    )
    table = comparing.per_layer(estimates) if per_layer else comparing.summary_table(estimates)
    emit(table, output, target_format, comparing.FORMATS, render_comparison, View(wide, columns))


PROGRESS_THRESHOLD = 2000
"""Sweeps with more points than this show a progress bar (on stderr, on a terminal)."""
PROGRESS_THRESHOLD_SCHEDULED = 10
"""The same for policies scheduled point by point, at 0.05 to 1 s a point."""
INTERRUPTED_EXIT = 130
"""The shell's code for a command stopped by Ctrl-C."""


@click.command()
@run_options
@map_zeros_option
@vary_option("A numeric hardware field and its range (repeatable: the full grid). Default log, 5 points.")
@output_option("Write every point as CSV (without it, up to 1,000 points are printed as a table).")
@click.option(
    "--resume",
    is_flag=True,
    help="Keep the points the -o file already has and schedule only the rest (strict, optimized).",
)
@pool_options
@table_options
@plot_option
@click.option(
    "--plot-metric",
    type=click.Choice(["latency", "energy", "edp"]),
    default="latency",
    show_default=True,
    help="What the plot shows: latency per batch, energy per image (docs/energy.md), or energy x delay.",
)
@reports_input_errors
def sweep(
    network: str,
    hardware: str,
    varies: tuple[str, ...],
    policy: str,
    counting: str,
    batch: int,
    precision: str | None,
    map_zeros: str | None,
    output: Path | None,
    resume: bool,
    workers: int | None,
    dask: str | None,
    wide: bool,
    columns: tuple[str, ...],
    plot: Path | None,
    plot_metric: str,
    input_shape: tuple[int, ...] | None,
) -> None:
    """Sweep hardware fields over a grid and schedule NETWORK at every point.

    FIELD is a dotted path into the profile: memory.internal.capacity, memory.external.bandwidth,
    compute.matrix.throughput, ... Values take units (256KB, 0.5GB/s, 2TFLOPS). The plot marks
    where more of a resource stops paying: the smallest value within 5 % of the best latency.
    A point where no schedule fits is a CSV row with empty times and the reason in `note`.
    At most 1,000,000 points and 10,000 per axis. strict and optimized schedule point by point on
    every core (--workers, or a Dask cluster with --dask), write rows to -o as they finish (Ctrl-C
    keeps them; --resume finishes the sweep), and may take at most an hour of estimated CPU time
    per worker.

    \b
    hwsim sweep hairnet --hw paper-accelerator --vary memory.internal.capacity=256KB..8MB:log:6 \\
        --vary memory.external.bandwidth=0.5GB/s..32GB/s:log:7 -o sweep.csv --plot sweep.png
    hwsim sweep hairnet --vary memory.internal.capacity=64KB..4MB:log:7 --plot energy.png --plot-metric energy
    hwsim sweep hairnet --policy optimized --vary memory.internal.capacity=64KB..8MB:log:100 \\
        --vary memory.external.bandwidth=0.5GB/s..32GB/s:log:100 -o big.csv --resume
    """
    from hwsim.report.streaming import RowFile
    from hwsim.report.studies import MAX_SWEEP_ROWS, render_sweep
    from hwsim.studies import parallel
    from hwsim.studies import sweep as sweeping

    require_suffix(output, (".csv",), "a sweep is written as CSV")
    check_plot_path(plot)
    graph, profile = load_inputs(network, hardware, [output, plot], input_shape)
    zeros = map_zeros_from(map_zeros, graph.map_names) if map_zeros is not None else None
    axes = [sweeping.parse_axis(text, profile) for text in varies]
    if plot:
        from hwsim.report.plots import check_sweep_axes

        check_sweep_axes(len(axes))
    sweeping.check_grid(axes)
    points = sweeping.grid_size(axes)
    fast = sweeping.is_fast(policy, profile)
    if resume and not output:
        raise InputError("continues the file given with -o; there is none", field="--resume")
    stream = None if fast or not output else RowFile(output, axes)
    resumed = stream.read_back() if stream and resume else {}
    # the paper policy computes every point at once, here: no workers to start
    with contextlib.nullcontext(parallel.Serial()) if fast else parallel.opened(workers, dask) as pool:
        threshold = PROGRESS_THRESHOLD if fast else PROGRESS_THRESHOLD_SCHEDULED
        with progress_bar(points, threshold, done=len(resumed)) as advance:
            try:
                result = sweeping.run(
                    graph,
                    profile,
                    axes,
                    policy,
                    counting,
                    batch,
                    precision,
                    on_progress=advance,
                    pool=pool,
                    resumed=resumed,
                    on_rows=stream.append if stream else None,
                    map_zeros=zeros,
                )
            except InputError:
                if stream and stream.started:
                    stream.discard()
                raise
            except KeyboardInterrupt:
                if stream:
                    stream.close()
                kept = f"; {output} keeps the points that finished: run it again with --resume" if stream else ""
                click.echo(f"interrupted{kept}", err=True)
                sys.exit(INTERRUPTED_EXIT)
    infeasible = result.infeasible
    if stream:
        stream.finish(result)
    elif output:
        files.write_atomically(output, result.rows.to_csv(index=False))
    if output:
        click.echo(
            f"wrote {output} ({points:,} points" + (f", {len(infeasible):,} infeasible)" if len(infeasible) else ")")
        )
    elif points <= MAX_SWEEP_ROWS:
        render_sweep(result, console(), View(wide, columns))
    else:
        click.echo(f"{points:,} points are too many to print; write them with -o sweep.csv")
    best = result.rows.loc[result.rows["total_s"].idxmin()]
    click.echo(f"best: {sweeping.describe_point(axes, best)} -> {best['total_s'] * 1e3:.4g} ms")
    if len(infeasible):
        first = infeasible.iloc[0]
        click.echo(
            f"infeasible: {len(infeasible):,} of {points:,} points, no schedule fits; "
            f"e.g. at {sweeping.describe_point(axes, first)}: {first[sweeping.NOTE]}"
        )
    if plot:
        from hwsim.report.plots import sweep_figure

        save_plot(functools.partial(sweep_figure, metric=plot_metric), result, plot)


@contextlib.contextmanager
def progress_bar(
    points: int, threshold: int = PROGRESS_THRESHOLD, done: int = 0, what: str = "points"
) -> Iterator[Callable[[int], None] | None]:
    """A progress bar with the time left, on stderr when it is a terminal, for more than ``threshold`` points
    (``done`` of them already); yields its callback, or None."""
    from rich.console import Console

    stderr = Console(stderr=True)
    if points <= threshold or not stderr.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (BarColumn(), MofNCompleteColumn(), TextColumn(what), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, TextColumn("left"), console=stderr, transient=True) as progress:
        task = progress.add_task(what, total=points, completed=done)
        yield lambda count: progress.advance(task, count)


@click.command()
@run_options
@steady_state_option
@map_zeros_option
@output_option("The image (.png or .svg).", default=Path("roofline.png"), show_default=True)
@reports_input_errors
def roofline(
    network: str,
    hardware: str,
    policy: str,
    counting: str,
    batch: int,
    precision: str | None,
    steady_state: bool | None,
    map_zeros: str | None,
    input_shape: tuple[int, ...] | None,
    output: Path,
) -> None:
    """Draw the roofline: every layer of NETWORK under the memory roof and one roof per compute unit.

    A layer's arithmetic intensity is its ops over the bytes it moves over the external bus.

    \b
    hwsim roofline networks/hairnet.yaml --hw hardware/paper-accelerator.yaml -o roofline.png
    """
    from hwsim.report.plots import roofline as draw

    check_plot_path(output)
    graph, profile = load_inputs(network, hardware, [output], input_shape)
    zeros = map_zeros_from(map_zeros, graph.map_names) if map_zeros is not None else None
    result = api.estimate(graph, profile, policy, counting, batch, precision, steady_state, zeros)
    save_plot(draw, result, output)
