"""Reports: one record per scheduled step is the single source for every output format.

Column names carry their units (``_bytes``, ``_s``) so CSV, Markdown and JSON need no legend;
the terminal table prints the same columns in human units. The files are written from the records
as pandas would write their DataFrame (:mod:`hwsim.report.records`), without pandas' start-up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwsim.errors import InputError
from hwsim.estimate import Estimate
from hwsim.report import records
from hwsim.report.terminal import FITTED, Column, View, print_table
from hwsim.schedule.base import Action, Schedule
from hwsim.schedule.energy import EnergyParts
from hwsim.units import format_duration, format_energy

if TYPE_CHECKING:
    import pandas as pd

    from hwsim.report.terminal import Screen

COLUMNS = [
    "layer",
    "op",
    "input_shape",
    "output_shape",
    "input_bytes",
    "output_bytes",
    "weight_bytes",
    "input_loc",
    "output_loc",
    "weight_loc",
    "peak_internal_bytes",
    "unit",
    "macs",
    "ops",
    "transfer_s",
    "compute_s",
    "total_s",
    "energy_j",
    "energy_compute_j",
    "energy_internal_j",
    "energy_external_j",
    "energy_static_j",
    "note",
]
ARRAY_COLUMNS = ["compute_cycles", "utilization"]
"""Added after ``compute_s`` when the profile has a systolic array: the cycles a step's layers keep it busy,
and their MACs over what it could do in them (empty for a step on no array)."""


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def layer_rows(
    schedule: Schedule,
    energy: Sequence[EnergyParts] | None = None,
    cycles: Sequence[int] | None = None,
    utilization: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """One record per scheduled step, with the keys of :data:`COLUMNS`; ``energy`` per step
    (:attr:`Estimate.step_energy`), or the energy columns are missing (NaN); ``cycles`` and ``utilization``
    per step (:attr:`Estimate.step_cycles`, :attr:`Estimate.step_utilization`) add :data:`ARRAY_COLUMNS`."""
    nan = float("nan")
    parts = energy if energy is not None else [EnergyParts(nan, nan, nan, nan)] * len(schedule.steps)
    rows = [
        {
            "layer": s.name,
            "op": s.op,
            "input_shape": _shape(s.input_shape),
            "output_shape": _shape(s.output_shape),
            "input_bytes": s.input_bytes,
            "output_bytes": s.output_bytes,
            "weight_bytes": s.weight_bytes,
            "input_loc": s.input_loc,
            "output_loc": s.output_loc,
            "weight_loc": s.weight_loc,
            "peak_internal_bytes": s.peak_internal_bytes,
            "unit": s.unit,
            "macs": s.macs,
            "ops": s.ops,
            "transfer_s": s.transfer_s,
            "compute_s": s.compute_s,
            "total_s": s.total_s,
            "energy_j": e.total_j,
            "energy_compute_j": e.compute_j,
            "energy_internal_j": e.internal_j,
            "energy_external_j": e.external_j,
            "energy_static_j": e.static_j,
            "note": s.note,
        }
        for s, e in zip(schedule.steps, parts)
    ]
    if cycles is not None and utilization is not None:
        for row, count, share in zip(rows, cycles, utilization):
            row.update(compute_cycles=count, utilization=share)
    return rows


def columns(with_array: bool) -> list[str]:
    """:data:`COLUMNS`, with :data:`ARRAY_COLUMNS` after ``compute_s`` for a profile with an array."""
    if not with_array:
        return COLUMNS
    at = COLUMNS.index("compute_s") + 1
    return [*COLUMNS[:at], *ARRAY_COLUMNS, *COLUMNS[at:]]


def layer_table(
    schedule: Schedule,
    energy: Sequence[EnergyParts] | None = None,
    cycles: Sequence[int] | None = None,
    utilization: Sequence[float] | None = None,
) -> pd.DataFrame:
    """One row per scheduled step, with the columns of :func:`columns` (see :func:`layer_rows`)."""
    import pandas as pd  # deferred: half a second of start-up that the terminal table does not need

    rows = layer_rows(schedule, energy, cycles, utilization)
    return pd.DataFrame(rows, columns=columns(cycles is not None))


def estimate_rows(estimate: Estimate) -> tuple[list[dict[str, Any]], list[str]]:
    """:func:`layer_rows` of an estimate and their :func:`columns`: energy per step, and cycles and utilisation
    when the profile has an array."""
    if estimate.has_array:
        array = (estimate.step_cycles, estimate.step_utilization)
        return layer_rows(estimate.schedule, estimate.step_energy, *array), columns(with_array=True)
    return layer_rows(estimate.schedule, estimate.step_energy), columns(with_array=False)


def top_layers(estimate: Estimate, n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` most expensive steps: (name, seconds)."""
    steps = sorted(estimate.schedule.steps, key=lambda s: s.total_s, reverse=True)[:n]
    return [(s.name, s.total_s) for s in steps]


def _header(estimate: Estimate) -> dict[str, Any]:
    s = estimate.schedule
    return {
        "network": s.network,
        "hardware": s.hardware,
        "policy": s.policy,
        "counting": s.counting,
        "batch": s.batch,
        "precision": s.precision,
        **({"maps_on_link": estimate.link_note} if estimate.link_note else {}),
    }


def to_json(estimate: Estimate) -> str:
    rows, keys = estimate_rows(estimate)
    document = {
        **_header(estimate),
        # a missing figure (area without an ``area:`` section) is null: NaN is not JSON
        "summary": {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in estimate.summary().items()},
        "top_layers": [{"layer": name, "total_s": t} for name, t in top_layers(estimate)],
        # 15 digits, not pandas' 10 decimals: a layer's energy is microjoules, and would keep only 4 digits
        "layers": records.to_json_records(rows, keys),
    }
    return json.dumps(document, indent=2) + "\n"


def to_csv(estimate: Estimate) -> str:
    return records.to_csv(*estimate_rows(estimate))


def to_markdown(estimate: Estimate) -> str:
    summary = estimate.summary()
    header = _header(estimate)
    lines = [f"# {header['network']} on {header['hardware']}", ""]
    lines += [f"- {k}: {v}" for k, v in header.items() if k not in ("network", "hardware")]
    lines += [
        f"- {k}: {v:.6g}" if isinstance(v, float) else f"- {k}: {v}" for k, v in summary.items() if k not in header
    ]  # batch is in both
    lines += ["", records.to_markdown(*estimate_rows(estimate), ".6g"), ""]
    return "\n".join(lines)


FORMATS: dict[str, Callable[[Estimate], str]] = {"json": to_json, "csv": to_csv, "md": to_markdown}


def format_for(path: Path, explicit: str | None) -> str:
    """The output format: ``--format`` if given, else the file's suffix."""
    fmt = explicit or path.suffix.lstrip(".").lower()
    fmt = {"markdown": "md"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise InputError(
            f"cannot tell the format from {path.name!r}; use a .csv, .md or .json suffix or --format", str(path)
        )
    return fmt


def _short_loc(loc: str) -> str:
    return "+".join("int" if part == "internal" else "ext" for part in loc.split("+"))


TERMINAL_COLUMNS = [
    Column("layer", "layer", elide=True, priority=0),
    Column("op", "op", elide=True, priority=1, floor=10),
    Column("input_shape", "in shape"),
    Column("output_shape", "out shape"),
    Column("input_bytes", "in", "bytes"),
    Column("output_bytes", "out", "bytes"),
    Column("weight_bytes", "weights", "bytes"),
    Column("placement", "in/out/w", priority=2),
    Column("peak_internal_bytes", "peak", "bytes"),
    Column("unit", "unit"),
    Column("macs", "MACs", "count"),
    Column("ops", "ops", "count"),
    Column("transfer_s", "transfer", "time", priority=3),
    Column("compute_s", "compute", "time", priority=4),
    Column("total_s", "total", "time", priority=5),
    Column("energy_j", "energy", "energy"),
    Column("note", "note", wrap=True),
]
"""The terminal table: :data:`COLUMNS` in human units, and where each tensor lives (int or ext) in one column."""
ARRAY_TERMINAL_COLUMNS = [Column("compute_cycles", "cycles", "count"), Column("utilization", "util", "percent")]
"""After ``compute`` when the profile has a systolic array."""


def terminal_rows(
    schedule: Schedule,
    energy: Sequence[EnergyParts] | None = None,
    cycles: Sequence[int] | None = None,
    utilization: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """:func:`layer_rows` with the ``placement`` the terminal shows (``int/int/ext``), without pandas."""
    return [
        {**row, "placement": "/".join(_short_loc(row[k]) for k in ("input_loc", "output_loc", "weight_loc"))}
        for row in layer_rows(schedule, energy, cycles, utilization)
    ]


def terminal_columns(with_array: bool) -> list[Column]:
    if not with_array:
        return TERMINAL_COLUMNS
    at = next(i for i, c in enumerate(TERMINAL_COLUMNS) if c.key == "compute_s") + 1
    return [*TERMINAL_COLUMNS[:at], *ARRAY_TERMINAL_COLUMNS, *TERMINAL_COLUMNS[at:]]


def render_table(estimate: Estimate, console: Screen, view: View = FITTED) -> None:
    """The per-layer table, as much of it as fits the terminal, and the summary under it."""
    header = _header(estimate)
    title = (
        f"{header['network']} on {header['hardware']} — policy {header['policy']}, "
        f"counting {header['counting']}, batch {header['batch']}, {header['precision']}"
    )
    array = (estimate.step_cycles, estimate.step_utilization) if estimate.has_array else (None, None)
    rows = terminal_rows(estimate.schedule, estimate.step_energy, *array)
    print_table(console, rows, terminal_columns(estimate.has_array), title, view)
    render_summary(estimate, console)


def busy_times(schedule: Schedule) -> dict[str, float]:
    """Seconds each resource works during the run: ``bus`` (its loads and stores), then each compute unit.

    Under an overlapping schedule they run at once, so their sum exceeds the run's time.
    """
    busy = {"bus": schedule.transfer_s}
    for step in schedule.steps:
        for event in step.events:
            if event.action is Action.COMPUTE:
                busy[event.unit] = busy.get(event.unit, 0.0) + (event.end_s - event.start_s) * event.instances
    return busy


def overlapped(schedule: Schedule) -> bool:
    """Whether the resources worked at the same time: their busy times add up to more than the run."""
    return sum(busy_times(schedule).values()) > schedule.total_s * (1 + 1e-9)


def busy_shares(schedule: Schedule) -> str:
    """``bus busy 12.11 ms (29 % of the run), matrix busy 36.9 ms (88 %)``, and whether the shares overlap."""
    total = schedule.total_s or 1.0
    parts = [
        f"{name} busy {format_duration(seconds)} ({seconds / total * 100:.0f} %{' of the run' if i == 0 else ''})"
        for i, (name, seconds) in enumerate(busy_times(schedule).items())
    ]
    how = (
        "they overlap, so the shares add up to more than 100 %"
        if overlapped(schedule)
        else "one at a time, so the shares add up to 100 %"
    )
    return ", ".join(parts) + f"; {how}"


def _sub_batches(summary: dict[str, float | int]) -> str:
    """`` in 16 sub-batches of 1`` when the batch ran in sub-batches (weights loaded once per sub-batch)."""
    batch, size = int(summary["batch"]), int(summary["sub_batch"])
    if size >= batch:
        return ""
    return f" in {batch // size} sub-batches of {size}" + (f" and one of {batch % size}" if batch % size else "")


def energy_line(summary: dict[str, Any]) -> str:
    """Energy per image and where it goes, as docs/energy.md models it; the area when the profile gives one."""
    per_image = summary["batch"]
    parts = ", ".join(
        f"{name} {format_energy(summary[f'energy_{name}_j'] / per_image)}"
        for name in ("compute", "internal", "external", "static")
    )
    area = summary["area_mm2"]
    return f"energy {format_energy(summary['energy_per_image_j'])} per image ({parts})" + (
        "" if math.isnan(area) else f", area {area:.4g} mm²"
    )


def render_summary(estimate: Estimate, console: Screen) -> None:
    summary = estimate.summary()
    lines = [
        f"[bold]total latency[/bold] {format_duration(summary['total_time_s'])} "
        f"per batch of {summary['batch']}{_sub_batches(summary)}"
        f" ({format_duration(summary['latency_per_image_s'])} per image, {summary['images_per_s']:,.4g} images/s)",
        f"lower bound {format_duration(summary['lower_bound_s'])} per batch, "
        f"efficiency {summary['efficiency'] * 100:.1f} % (bound / predicted); "
        f"cut bound {format_duration(summary['lower_bound_cut_s'])}, "
        f"efficiency {summary['efficiency_cut'] * 100:.1f} %",
        busy_shares(estimate.schedule),
        f"parameters {summary['params']:,}   MACs {summary['macs']:,}   ops {summary['ops']:,}"
        f"   bytes moved {summary['bytes_moved']:,}",
        energy_line(summary),
        "most expensive: " + ", ".join(f"{name} ({format_duration(t)})" for name, t in top_layers(estimate)),
        *([f"note: {estimate.link_note}"] if estimate.link_note else []),
    ]
    for line in lines:
        console.print(line, highlight=False)
