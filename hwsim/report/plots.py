"""Pictures of a schedule and of a sweep: per-layer time bars, the roofline, sweep heatmaps and lines.

matplotlib is imported inside the functions that draw, so commands that draw nothing start fast.
Figures are built with ``matplotlib.figure.Figure`` (no pyplot state, no display needed) and
written through :func:`hwsim.report.tables.write_atomically`, PNG or SVG by the file's suffix.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwsim import files
from hwsim.errors import InputError
from hwsim.estimate import Estimate
from hwsim.report.tables import busy_times, overlapped
from hwsim.schedule.base import Action
from hwsim.studies.sweep import UNIT_SYMBOL, Axis, SweepResult, saturation
from hwsim.units import format_duration, format_quantity

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hwsim.schedule.base import Step

IMAGE_FORMATS = ("png", "svg")
TRANSFER_COLOUR, COMPUTE_COLOUR, SPAN_COLOUR = "#d95f02", "#1b9e77", "#d9d9d9"
UNIT_COLOURS = ("#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")
LABELLED_POINTS = 8
"""The roofline names this many of the most expensive layers; more would hide the points."""
STOPS_PAYING = "stops paying: the smallest value within 5 % of the best {what}; at the range's end, it still pays"


@dataclass(frozen=True)
class SweepMetric:
    """What a sweep plot shows: a column of the sweep's rows, its scale to the plotted unit, and its part."""

    name: str
    column: str
    scale: float
    label: str
    part: str | None = None
    """A column drawn dashed beside it in a one-axis plot (transfer time: what more bandwidth buys)."""
    part_label: str = ""


SWEEP_METRICS = {
    "latency": SweepMetric("latency", "total_s", 1e3, "latency per batch (ms)", "transfer_s", "of which transfer"),
    "energy": SweepMetric("energy", "energy_per_image_j", 1e3, "energy per image (mJ)"),
    "edp": SweepMetric("energy x delay", "edp_js", 1e6, "energy x delay per image (mJ x ms)"),
}
"""``--plot-metric``: what colours the heatmap, or runs up the y axis; the "stops paying" marks follow it."""


def image_format(path: Path) -> str:
    """``png`` or ``svg`` from the file's suffix; anything else is one clear error before any work."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in IMAGE_FORMATS:
        raise InputError(f"cannot tell the image format from {path.name!r}; use a .png or .svg suffix", str(path))
    return fmt


def save(figure: Figure, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``figure``; ``metadata`` becomes the PNG's text chunks (keys as in ``Figure.savefig``)."""
    buffer = io.BytesIO()
    fmt = image_format(path)
    figure.savefig(buffer, format=fmt, dpi=120, metadata=metadata if fmt == "png" else None)
    files.write_atomically(path, buffer.getvalue())


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _title(estimate: Estimate, what: str) -> str:
    s = estimate.schedule
    return (
        f"{what}: {s.network} on {s.hardware} (policy {s.policy}, "
        f"counting {s.counting}, batch {s.batch}, {s.precision})"
    )


def layer_bars_summary(estimate: Estimate) -> str:
    """The per-layer plot's last title lines, whose numbers add up.

    Serial: ``total 121.4 ms = transfer 115.8 ms + compute 5.68 ms, one after another``. Overlapped,
    the busy times add up to more than the run, so each is a share of it: ``total 42.13 ms,
    overlapped:`` then ``bus busy 12.11 ms (29 % of the run), matrix busy 19.56 ms (46 %), ...``.
    """
    schedule = estimate.schedule
    if not overlapped(schedule):
        return (
            f"total {format_duration(schedule.total_s)} = transfer {format_duration(schedule.transfer_s)}"
            f" + compute {format_duration(schedule.compute_s)}, one after another"
        )
    total = schedule.total_s
    shares = ", ".join(
        f"{name} busy {format_duration(seconds)} ({seconds / total * 100:.0f} %{' of the run' if i == 0 else ''})"
        for i, (name, seconds) in enumerate(busy_times(schedule).items())
    )
    return f"total {format_duration(total)}, transfers overlapped with compute:\n{shares}"


SPAN_BRIDGE = 0.01
"""A step's span bridges its own idle gaps shorter than this share of the run (row by row, it waits on
its neighbours); longer ones (the other sub-batches' turns) split it."""


def merged(intervals: list[tuple[float, float]], bridge: float) -> list[tuple[float, float]]:
    """``(start, end)`` intervals joined where they overlap or lie less than ``bridge`` apart, as ``(start, width)``."""
    joined: list[list[float]] = []
    for start, end in sorted(intervals):
        if joined and start - joined[-1][1] <= bridge:
            joined[-1][1] = max(joined[-1][1], end)
        else:
            joined.append([start, end])
    return [(start, end - start) for start, end in joined]


def layer_bars(estimate: Estimate) -> Figure:
    """Each step on its own row at the times it really ran: its span, and in it when the bus and the compute
    units were busy.

    A serial schedule runs a step's transfers, then its compute, one step after another. An overlapped
    one moves data while it computes and streams chains of steps row by row, so spans overlap and
    bus and compute segments run side by side. A batch run in sub-batches shows one span per sub-batch.
    """
    from matplotlib.patches import Patch

    schedule = estimate.schedule
    steps = schedule.steps
    run_ms = schedule.total_s * 1e3
    figure = _figure(10, 1.9 + 0.19 * len(steps))
    ax = figure.subplots()
    for row, step in enumerate(steps):
        timed = [e for e in step.events if e.action in (Action.LOAD, Action.STORE, Action.COMPUTE)]
        ms = [(e.start_s * 1e3, e.end_s * 1e3, e.action is Action.COMPUTE) for e in timed]
        spans = merged([(a, b) for a, b, _ in ms], SPAN_BRIDGE * run_ms)
        ax.broken_barh(spans, (row - 0.45, 0.9), color=SPAN_COLOUR)
        ax.broken_barh(merged([(a, b) for a, b, c in ms if not c], 0.0), (row - 0.4, 0.38), color=TRANSFER_COLOUR)
        ax.broken_barh(merged([(a, b) for a, b, c in ms if c], 0.0), (row + 0.02, 0.38), color=COMPUTE_COLOUR)
    ax.set_yticks(np.arange(len(steps)), [s.name for s in steps], fontsize=7)
    ax.set_ylim(len(steps) - 0.5, -0.5)  # first layer on top
    ax.set_xlim(0, run_ms)
    ax.set_xlabel("time in the run (ms)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(_title(estimate, "Per-layer timeline") + f"\n{layer_bars_summary(estimate)}", fontsize=9)
    figure.legend(
        handles=[
            Patch(color=SPAN_COLOUR, label="span: from the step's first transfer or compute to its last"),
            Patch(color=TRANSFER_COLOUR, label="bus busy (loads and stores)"),
            Patch(color=COMPUTE_COLOUR, label="compute busy"),
        ],
        loc="outside lower center",
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    return figure


def _op_units(precision: str) -> tuple[str, str]:
    """``('FLOPS', 'FLOP')`` for floating point, ``('OPS', 'op')`` for integers: an int8 MAC is no FLOP."""
    return ("OPS", "op") if precision.startswith("int") else ("FLOPS", "FLOP")


def roofline(estimate: Estimate) -> Figure:
    """Each step at (ops / bytes moved, ops / its time) under the memory roof and one roof per compute unit.

    A step that moves no bytes has no finite intensity; it is drawn at the right edge, as a triangle.
    On a profile with a systolic array, the steps it runs sit on a disc in the colour of their utilisation
    (MACs / (rows x cols x cycles)), and the named ones carry it: how far below its roof the mapping keeps a layer.
    """
    hw = estimate.hardware
    bandwidth = hw.memory.external.effective_bandwidth
    rate, op = _op_units(estimate.schedule.precision)
    kept = [(s, u) for s, u in zip(estimate.schedule.steps, _utilization(estimate)) if s.ops > 0 and s.total_s > 0]
    steps = [s for s, _ in kept]
    utilization = np.array([u for _, u in kept])
    moved = np.array([s.bytes_moved for s in steps], dtype=float)
    ops = np.array([s.ops for s in steps], dtype=float)
    achieved = ops / np.array([s.total_s for s in steps])
    finite = moved > 0
    intensity = np.divide(ops, moved, out=np.zeros_like(ops), where=finite)
    peak = max(unit.throughput for unit in hw.compute.values())
    ridge_max = peak / bandwidth
    lo = 0.5 * min(
        intensity[finite].min() if finite.any() else 1.0,
        0.1 * min(u.throughput for u in hw.compute.values()) / bandwidth,
    )
    hi = max(intensity[finite].max() if finite.any() else 1.0, ridge_max) * 10
    intensity = np.where(finite, intensity, hi)

    figure = _figure(10, 6.5)
    ax = figure.subplots()
    ax.set_xscale("log")
    ax.set_yscale("log")
    x = np.geomspace(lo, hi, 200)
    units = list(hw.compute)
    for i, (name, unit) in enumerate(hw.compute.items()):
        colour = UNIT_COLOURS[i % len(UNIT_COLOURS)]
        ax.plot(
            x,
            np.minimum(bandwidth * x, unit.throughput),
            color=colour,
            lw=2,
            label=f"roof of {name}: {format_quantity(unit.throughput, rate)}",
        )
        mine = np.array([s.unit.split("+")[-1] == name for s in steps])
        for shape, where in (("o", mine & finite), ("<", mine & ~finite)):
            if where.any():
                ax.scatter(
                    intensity[where],
                    achieved[where],
                    color=colour,
                    marker=shape,
                    s=28,
                    edgecolor="black",
                    linewidth=0.4,
                    zorder=3,
                )
    on_array = ~np.isnan(utilization)
    if on_array.any():
        rings = ax.scatter(
            intensity[on_array],
            achieved[on_array],
            c=utilization[on_array],
            cmap="viridis",
            vmin=0.0,
            vmax=1.0,
            s=120,
            marker="o",
            zorder=2,
        )
        figure.colorbar(rings, ax=ax, label="array utilisation: MACs / (rows × cols × cycles)")
    ax.plot([], [], color="grey", lw=0, marker="<", label="moves no external bytes (intensity ∞)")
    ax.plot(
        x,
        bandwidth * x,
        color="black",
        lw=1,
        ls="--",
        label=f"memory roof: {format_quantity(bandwidth, 'B/s')} × intensity",
    )
    for (x_at, y_at), names in _labels_by_position(steps, intensity, achieved, utilization).items():
        ax.annotate("\n".join(names), (x_at, y_at), textcoords="offset points", xytext=(6, -3), fontsize=7, va="top")
    ax.set_xlim(lo, hi * 1.5)
    ax.set_ylim(achieved.min() / 3, peak * 3)
    ax.set_xlabel(f"arithmetic intensity ({op}s / byte moved over the external bus)")
    ax.set_ylabel(f"attained performance ({rate})")
    ax.grid(which="major", alpha=0.3)
    ax.set_title(
        _title(estimate, "Roofline")
        + f"\ncompute units: {', '.join(units)}; the {LABELLED_POINTS} slowest layers named",
        fontsize=10,
    )
    ax.legend(loc="lower right", fontsize=8)
    return figure


def _utilization(estimate: Estimate) -> tuple[float, ...]:
    """Per step: its array utilisation, NaN off arrays (all NaN on a profile without one)."""
    return estimate.step_utilization if estimate.has_array else (np.nan,) * len(estimate.schedule.steps)


def _labels_by_position(
    steps: Sequence[Step], intensity: np.ndarray, achieved: np.ndarray, utilization: np.ndarray
) -> dict[tuple[float, float], list[str]]:
    """Names of the slowest steps (with their array utilisation, if any), those drawn at the same spot joined into
    one label so none overprints another."""
    labels: dict[tuple[float, float], list[str]] = {}
    for index in np.argsort([-s.total_s for s in steps])[:LABELLED_POINTS]:
        spot = (float(intensity[index]), float(achieved[index]))
        near = next(
            (p for p in labels if abs(np.log10(p[0] / spot[0])) < 0.05 and abs(np.log10(p[1] / spot[1])) < 0.05), spot
        )
        share = utilization[index]
        labels.setdefault(near, []).append(steps[index].name + ("" if np.isnan(share) else f" ({share * 100:.2g} %)"))
    return labels


def _axis_label(axis: Axis) -> str:
    return f"{axis.field} ({UNIT_SYMBOL[axis.kind]})"


MAX_TICKS = 15
"""Tick labels per sweep axis; a long axis labels every k-th value."""
MAX_FIGURE_INCHES = (16.0, 12.0)
"""A heatmap grows with its grid up to this size, so a large grid cannot make a gigantic image."""
INFEASIBLE_COLOUR = "#bdbdbd"


def _ticks(axis: Axis) -> tuple[np.ndarray, list[str]]:
    """Positions (indices into ``axis.values``) and labels of at most :data:`MAX_TICKS` ticks."""
    positions = np.arange(0, len(axis.values), -(-len(axis.values) // MAX_TICKS))
    return positions, [axis.human(axis.values[i]) for i in positions]


def check_sweep_axes(count: int) -> None:
    if count not in (1, 2):
        raise InputError(f"a sweep plot shows one or two axes, got {count}; write the CSV instead", field="--plot")


def sweep_figure(result: SweepResult, metric: str = "latency") -> Figure:
    """One axis: the metric (:data:`SWEEP_METRICS`) against the swept value. Two: a heatmap of it. Both mark
    where more stops paying."""
    check_sweep_axes(len(result.axes))
    shown = SWEEP_METRICS[metric]
    return _sweep_lines(result, shown) if len(result.axes) == 1 else _sweep_heatmap(result, shown)


def _sweep_title(result: SweepResult) -> str:
    return f"Sweep: {result.network} on variants of {result.hardware} (policy {result.policy})"


def _sweep_lines(result: SweepResult, shown: SweepMetric) -> Figure:
    """The metric (and its part); infeasible points are gaps in the lines and grey crosses on the axis."""
    (axis,) = result.axes
    values = result.rows[axis.column].to_numpy()
    latency = result.rows[shown.column].to_numpy() * shown.scale
    infeasible = np.isnan(latency)
    knee = saturation(values, latency)
    figure = _figure(9, 5.5)
    ax = figure.subplots()
    ax.plot(values, latency, marker="o" if len(values) <= 200 else None, color=COMPUTE_COLOUR, label=shown.name)
    if shown.part:
        part = result.rows[shown.part].to_numpy() * shown.scale
        ax.plot(values, part, ls="--", color=TRANSFER_COLOUR, label=shown.part_label)
    if infeasible.any():
        ax.plot(
            values[infeasible],
            np.zeros(infeasible.sum()),
            transform=ax.get_xaxis_transform(),
            ls="none",
            marker="x",
            color="grey",
            clip_on=False,
            label=f"infeasible: no schedule fits ({infeasible.sum()} of {len(values)})",
        )
    ax.axvline(knee, color="black", ls=":", label=f"stops paying: {axis.human(knee)}")
    ax.set_xscale("log" if axis.scale == "log" else "linear")  # as the grid was spaced: --vary ...:log
    positions, labels = _ticks(axis)
    ax.set_xticks(np.array(axis.values)[positions], labels, rotation=30, ha="right")
    ax.minorticks_off()
    ax.set_xlabel(_axis_label(axis))
    ax.set_ylabel(shown.label)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(_sweep_title(result) + "\n" + STOPS_PAYING.format(what=shown.name), fontsize=10)
    return figure


def _sweep_heatmap(result: SweepResult, shown: SweepMetric) -> Figure:
    """The metric over the grid; infeasible cells grey and hatched; the "stops paying" marks per row and column."""
    import matplotlib
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Patch, Rectangle

    x_axis, y_axis = result.axes[1], result.axes[0]  # the last axis varies fastest: columns
    latency = result.rows[shown.column].to_numpy().reshape(len(y_axis.values), len(x_axis.values)) * shown.scale
    infeasible = np.isnan(latency)
    low, high = np.min(latency[~infeasible]), np.max(latency[~infeasible])  # run() refuses an all-infeasible grid
    width, height = 1.6 + 1.05 * len(x_axis.values), 1.6 + 0.6 * len(y_axis.values)
    figure = _figure(max(6.0, min(width, MAX_FIGURE_INCHES[0])), max(4.0, min(height, MAX_FIGURE_INCHES[1])))
    ax = figure.subplots()
    cmap = matplotlib.colormaps["viridis_r"].with_extremes(bad=INFEASIBLE_COLOUR)
    image = ax.imshow(
        np.ma.masked_invalid(latency),
        origin="lower",
        aspect="auto",
        cmap=cmap,
        norm=LogNorm(low, high) if high > low else None,
        interpolation="nearest",
    )
    figure.colorbar(image, ax=ax, label=shown.label)
    if infeasible.any() and infeasible.sum() <= 10_000:
        for row, col in zip(*np.nonzero(infeasible)):
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, facecolor="none", edgecolor="grey", hatch="//", lw=0))
    if latency.size <= 400:
        middle = np.sqrt(low * high)
        for (row, col), value in np.ndenumerate(latency):
            if not np.isnan(value):
                ax.text(
                    col,
                    row,
                    f"{value:.3g}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > middle else "black",
                )
    xs, ys = np.arange(len(x_axis.values)), np.arange(len(y_axis.values))
    x_knees = [saturation(np.array(x_axis.values), latency[r]) for r in ys]
    y_knees = [saturation(np.array(y_axis.values), latency[:, c]) for c in xs]
    rows_marked = [(x_axis.values.index(k), r) for k, r in zip(x_knees, ys) if not np.isnan(k)]
    columns_marked = [(c, y_axis.values.index(k)) for k, c in zip(y_knees, xs) if not np.isnan(k)]
    scale = min(1.0, 20 / max(len(xs), len(ys)))  # markers shrink with the cells
    if rows_marked:
        marked_x, marked_y = zip(*rows_marked)
        ax.scatter(
            marked_x,
            marked_y,
            marker="s",
            s=260 * scale**2,
            facecolor="none",
            edgecolor="red",
            linewidth=1.6 * scale,
            label=f"more {x_axis.field.rsplit('.', 1)[-1]} stops paying (this row)",
        )
    if columns_marked:
        marked_x, marked_y = zip(*columns_marked)
        ax.scatter(
            marked_x,
            marked_y,
            marker="o",
            s=330 * scale**2,
            facecolor="none",
            edgecolor="orange",
            linewidth=1.6 * scale,
            label=f"more {y_axis.field.rsplit('.', 1)[-1]} stops paying (this column)",
        )
    handles, _ = ax.get_legend_handles_labels()
    if infeasible.any():
        handles.append(
            Patch(
                facecolor=INFEASIBLE_COLOUR,
                edgecolor="grey",
                hatch="//",
                label=f"infeasible: no schedule fits ({infeasible.sum()} of {latency.size})",
            )
        )
    x_positions, x_labels = _ticks(x_axis)
    y_positions, y_labels = _ticks(y_axis)
    ax.set_xticks(x_positions, x_labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(y_positions, y_labels, fontsize=8)
    ax.set_xlabel(_axis_label(x_axis))
    ax.set_ylabel(_axis_label(y_axis))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8, frameon=False)
    ax.set_title(_sweep_title(result) + "\n" + STOPS_PAYING.format(what=shown.name), fontsize=10)
    return figure
