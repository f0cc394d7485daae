"""What ``hwsim search`` shows: the Pareto front as a table, and a picture of the trade-off."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np

from hwsim.report.plots import COMPUTE_COLOUR, TRANSFER_COLOUR
from hwsim.report.terminal import FITTED, Column, View, print_table
from hwsim.studies.search import FRONT, MEETS, TRIAL, Objective, SearchResult
from hwsim.studies.sweep import NOTE, UNIT_SYMBOL

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hwsim.report.terminal import Screen

CHARACTERS_PER_INCH = 15
"""About how many characters of a 10-point title fit an inch of the figure."""
KIND_OF_COLUMN = {"time": "time", "energy": "energy", "area": "number", "number": "number"}
"""The terminal column kind of each objective kind (hardware fields show in their own units)."""
HEADING = {"area_mm2": "area mm²", "edp_js": "energy x delay J s", "images_per_s": "images/s"}
"""Headings of the objectives whose unit the column kind does not name."""
AXIS_LABEL = {
    "total_s": ("latency per batch (ms)", 1e3),
    "energy_per_image_j": ("energy per image (mJ)", 1e3),
    "area_mm2": ("area (mm²)", 1.0),
    "edp_js": ("energy x delay per image (mJ x ms)", 1e6),
    "images_per_s": ("images per second", 1.0),
    "bytes_moved": ("bytes moved (MB)", 1e-6),
}
"""A plot axis per objective column: its label and the scale to its unit."""


def front_columns(result: SearchResult) -> list[Column]:
    """The trial, the searched values, then each objective, the most important first."""
    searched = [
        Column(d.column, d.field.split(".", 1)[-1], d.range.kind, priority=1 + i)
        for i, d in enumerate(result.dimensions)
    ]
    first = 1 + len(searched)
    objectives = [
        Column(o.column, HEADING.get(o.column, o.name), KIND_OF_COLUMN.get(o.kind, o.kind), priority=first + i)
        for i, o in enumerate(result.objectives)
        if o.column not in {d.column for d in result.dimensions}
    ]
    return [Column(TRIAL, "trial", "int", priority=0), *searched, *objectives]


def render_front(result: SearchResult, console: Screen, view: View = FITTED) -> None:
    front = result.front
    title = (
        f"{result.network} on variants of {result.hardware} (policy {result.policy}): the Pareto front of "
        f"{', '.join(o.name for o in result.objectives)}, {len(front):,} of {len(result.trials):,} trials"
    )
    print_table(console, front, front_columns(result), title, view)


def summary(result: SearchResult) -> str:
    """``200 trials (nsga2, seed 0): 14 on the front; 31 miss the constraints; 5 have no schedule``."""
    trials = result.trials
    unscheduled = int((trials[NOTE] != "").sum())
    missed = int((~trials[MEETS].fillna(True).astype(bool)).sum())  # NA: no schedule, counted apart
    parts = [
        f"{len(trials):,} trials ({result.sampler}, seed {result.seed}): {int(trials[FRONT].sum()):,} on the front"
    ]
    if result.constraints:
        parts.append(f"{missed:,} miss {' and '.join(c.text for c in result.constraints)}")
    if unscheduled:
        parts.append(f"{unscheduled:,} have no schedule")
    return "; ".join(parts)


def _label(objective: Objective) -> tuple[str, float]:
    if objective.column in AXIS_LABEL:
        return AXIS_LABEL[objective.column]
    return f"{objective.name} ({UNIT_SYMBOL.get(objective.kind, '')})", 1.0


def front_figure(result: SearchResult) -> Figure:
    """Every trial with a schedule against each pair of objectives, the front joined as a staircase (two
    objectives) or marked (more); one objective: its value by trial, and the best so far."""
    from matplotlib.figure import Figure

    objectives = result.objectives
    pairs = [(i, j) for i in range(len(objectives)) for j in range(i + 1, len(objectives))] or [(0, 0)]
    size = (5.5 * min(len(pairs), 3), 4.8 * -(-len(pairs) // 3))
    figure = Figure(figsize=size, layout="constrained")
    axes = np.atleast_1d(figure.subplots(-(-len(pairs) // 3), min(len(pairs), 3))).ravel()
    for ax, (i, j) in zip(axes, pairs):
        if i == j:
            _by_trial(ax, result, objectives[0])
        else:
            _pair(ax, result, objectives[i], objectives[j])
    constraints = f"; {' and '.join(c.text for c in result.constraints)}" if result.constraints else ""
    title = (
        f"Search: {result.network} on variants of {result.hardware} (policy {result.policy}, {result.sampler}, "
        f"seed {result.seed}){constraints}"
    )
    width = round(size[0] * CHARACTERS_PER_INCH)  # wrapped, or a long title runs off the figure
    figure.suptitle("\n".join([*textwrap.wrap(title, width), *textwrap.wrap(summary(result), width)]), fontsize=10)
    return figure


def _pair(ax: Axes, result: SearchResult, x: Objective, y: Objective) -> None:
    trials = result.trials[result.trials[NOTE] == ""]
    (x_label, x_scale), (y_label, y_scale) = _label(x), _label(y)
    meets = trials[MEETS].fillna(False).astype(bool).to_numpy()
    xs, ys = trials[x.column].to_numpy(float) * x_scale, trials[y.column].to_numpy(float) * y_scale
    ax.scatter(xs[meets], ys[meets], s=14, color="#bdbdbd", label="trials")
    if (~meets).any():
        ax.scatter(
            xs[~meets], ys[~meets], s=14, marker="x", color=TRANSFER_COLOUR, alpha=0.6, label="miss the constraints"
        )
    front = result.front
    fx, fy = front[x.column].to_numpy(float) * x_scale, front[y.column].to_numpy(float) * y_scale
    if len(result.objectives) == 2:
        order = np.argsort(fx, kind="stable")
        ax.step(fx[order], fy[order], where="post", color=COMPUTE_COLOUR, lw=1.2)
    ax.scatter(fx, fy, s=30, color=COMPUTE_COLOUR, zorder=3, label=f"Pareto front ({len(front)})")
    _set_scale(ax, "x", xs)
    _set_scale(ax, "y", ys)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _set_scale(ax: Axes, which: str, values: np.ndarray) -> None:
    """Log where the values span more than a factor of 20 (and are all positive), else linear. A log axis is
    ticked at 1, 2 and 5 of each decade in plain numbers: matplotlib's own labels of a short log axis, 2 x 10^0
    beside 3 x 10^0, run into each other."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    positive = values[np.isfinite(values) & (values > 0)]
    wide = len(positive) == np.isfinite(values).sum() and len(positive) and positive.max() > 20 * positive.min()
    if not wide:
        return
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


def _by_trial(ax: Axes, result: SearchResult, objective: Objective) -> None:
    trials = result.trials
    label, scale = _label(objective)
    values = np.where(trials[NOTE] == "", trials[objective.column].to_numpy(float), np.nan) * scale
    ax.scatter(trials[TRIAL], values, s=12, color="#bdbdbd", label="trials")
    kept = np.where(trials[MEETS].fillna(False).astype(bool), values, np.nan)
    best = (np.fmax if objective.maximize else np.fmin).accumulate(kept)
    ax.plot(trials[TRIAL], best, color=COMPUTE_COLOUR, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
