"""hwsim search: the Pareto front of hardware variants, found by Optuna instead of a grid."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hwsim import files
from hwsim.cli.common import (
    check_plot_path,
    console,
    file_option,
    load_inputs,
    map_zeros_option,
    output_option,
    plot_option,
    pool_options,
    reports_input_errors,
    require_suffix,
    run_options,
    save_plot,
    table_options,
    vary_option,
)
from hwsim.cli.estimate import INTERRUPTED_EXIT, progress_bar
from hwsim.report.terminal import View
from hwsim.spec.zeros import map_zeros_from


@click.command()
@run_options
@map_zeros_option
@vary_option(
    "A numeric hardware field and its range (repeatable), searched continuously (default log), or among N values."
)
@click.option(
    "--objective",
    "objectives",
    multiple=True,
    required=True,
    metavar="NAME",
    help="What to minimise (repeatable): latency, energy, area, edp, bytes, a varied field; throughput is maximised.",
)
@click.option(
    "--constraint",
    "constraints",
    multiple=True,
    metavar="NAME<=VALUE",
    help="A bound every trial on the front meets (repeatable): latency<=10ms, energy<2mJ, area<=5mm2.",
)
@click.option("--trials", type=click.IntRange(min=1), default=200, show_default=True, help="How many points to try.")
@click.option(
    "--sampler",
    type=click.Choice(["nsga2", "tpe"]),
    default="nsga2",
    show_default=True,
    help="Optuna's NSGA-II (a genetic algorithm) or TPE.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="The same seed, the same trials.")
@output_option("Write every trial as CSV.")
@file_option("--front", "front_path", help="Write the Pareto front as CSV.")
@pool_options
@table_options
@plot_option
@reports_input_errors
def search(
    network: str,
    hardware: str,
    policy: str,
    counting: str,
    batch: int,
    precision: str | None,
    map_zeros: str | None,
    varies: tuple[str, ...],
    objectives: tuple[str, ...],
    constraints: tuple[str, ...],
    trials: int,
    sampler: str,
    seed: int,
    output: Path | None,
    front_path: Path | None,
    workers: int | None,
    dask: str | None,
    wide: bool,
    columns: tuple[str, ...],
    plot: Path | None,
    input_shape: tuple[int, ...] | None,
) -> None:
    """Search hardware fields for the Pareto front of NETWORK's latency, energy, area, ...

    Optuna proposes the points (pip install 'hwsim[search]'); hwsim schedules them on every core
    (--workers) or a Dask cluster (--dask), as hwsim sweep does. The front: the trials with a
    schedule that meet every --constraint and that no other such trial beats on every objective.
    Area needs an area: section in the profile (docs/energy.md). Seeded: the same command gives
    the same trials, on any number of workers.

    \b
    hwsim search hairnet --policy optimized --vary memory.internal.capacity=64KB..8MB \\
        --vary memory.external.bandwidth=0.5GB/s..32GB/s --objective latency --objective energy \\
        --constraint "latency<=10ms" --trials 300 -o trials.csv --front front.csv --plot front.png
    """
    from hwsim.report.search import render_front, summary
    from hwsim.studies import parallel
    from hwsim.studies import search as searching

    require_suffix(output, (".csv",), "the trials are written as CSV")
    require_suffix(front_path, (".csv",), "the front is written as CSV")
    check_plot_path(plot)
    graph, profile = load_inputs(network, hardware, [output, front_path, plot], input_shape)
    zeros = map_zeros_from(map_zeros, graph.map_names) if map_zeros is not None else None
    dimensions = [searching.parse_dimension(text, profile) for text in varies]
    chosen = [searching.objective_named(name, dimensions) for name in objectives]
    bounds = [searching.parse_constraint(text, dimensions) for text in constraints]
    with parallel.opened(workers, dask) as pool, progress_bar(trials, 0, what="trials") as advance:
        try:
            result = searching.run(
                graph,
                profile,
                dimensions,
                chosen,
                bounds,
                trials,
                sampler,
                seed,
                policy,
                counting,
                batch,
                precision,
                pool=pool,
                on_progress=advance,
                map_zeros=zeros,
            )
        except KeyboardInterrupt:
            click.echo("interrupted: a search writes its trials when it ends", err=True)
            sys.exit(INTERRUPTED_EXIT)
    for path, table in ((output, result.trials), (front_path, result.front)):
        if path:
            files.write_atomically(path, table.to_csv(index=False))
            click.echo(f"wrote {path} ({len(table):,} trials)")
    if not front_path:
        render_front(result, console(), View(wide, columns))
    click.echo(summary(result))
    if plot:
        from hwsim.report.search import front_figure

        save_plot(front_figure, result, plot)
