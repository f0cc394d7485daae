"""Reports: one pandas DataFrame per schedule is the single source for every output format.

Column names carry their units (``_bytes``, ``_s``) so CSV, Markdown and JSON need no legend;
the rich table prints the same columns in human units.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from hwsim.errors import InputError
from hwsim.estimate import Estimate
from hwsim.schedule.base import Schedule
from hwsim.schedule.energy import EnergyParts

if TYPE_CHECKING:
    import pandas as pd

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


def layer_table(
    schedule: Schedule,
    energy: Sequence[EnergyParts] | None = None,
    cycles: Sequence[int] | None = None,
    utilization: Sequence[float] | None = None,
) -> pd.DataFrame:
    """One row per scheduled step, with the columns of :data:`COLUMNS`; ``energy`` per step
    (:attr:`Estimate.step_energy`), or the energy columns are missing (NaN); ``cycles`` and ``utilization``
    per step (:attr:`Estimate.step_cycles`, :attr:`Estimate.step_utilization`) add :data:`ARRAY_COLUMNS`."""
    import pandas as pd  # deferred: half a second of start-up that the terminal table does not need

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
    table = pd.DataFrame(rows, columns=COLUMNS)
    if cycles is not None and utilization is not None:
        at = COLUMNS.index("compute_s") + 1
        table.insert(at, "compute_cycles", list(cycles))
        table.insert(at + 1, "utilization", list(utilization))
    return table


def estimate_table(estimate: Estimate) -> pd.DataFrame:
    """:func:`layer_table` of an estimate: energy per step, and cycles and utilisation when the profile has an array."""
    if estimate.has_array:
        return layer_table(estimate.schedule, estimate.step_energy, estimate.step_cycles, estimate.step_utilization)
    return layer_table(estimate.schedule, estimate.step_energy)


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
    }


def to_json(estimate: Estimate) -> str:
    table = estimate_table(estimate)
    document = {
        **_header(estimate),
        # a missing figure (area without an ``area:`` section) is null: NaN is not JSON
        "summary": {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in estimate.summary().items()},
        "top_layers": [{"layer": name, "total_s": t} for name, t in top_layers(estimate)],
        # 15 digits, not pandas' 10 decimals: a layer's energy is microjoules, and would keep only 4 digits
        "layers": json.loads(table.to_json(orient="records", double_precision=15)),
    }
    return json.dumps(document, indent=2) + "\n"


def to_csv(estimate: Estimate) -> str:
    return estimate_table(estimate).to_csv(index=False)


def to_markdown(estimate: Estimate) -> str:
    summary = estimate.summary()
    header = _header(estimate)
    lines = [f"# {header['network']} on {header['hardware']}", ""]
    lines += [f"- {k}: {v}" for k, v in header.items() if k not in ("network", "hardware")]
    lines += [f"- {k}: {v:.6g}" if isinstance(v, float) else f"- {k}: {v}" for k, v in summary.items()]
    lines += ["", estimate_table(estimate).to_markdown(index=False, floatfmt=".6g"), ""]
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


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.4g}"


def _mb(size: int) -> str:
    return f"{size / 1e6:.4g}"


def _short_loc(loc: str) -> str:
    return "+".join("int" if part == "internal" else "ext" for part in loc.split("+"))


def render_table(estimate: Estimate, console: Console) -> None:
    """The per-layer table and the summary under it, in human units."""
    header = _header(estimate)
    title = (
        f"{header['network']} on {header['hardware']} — policy {header['policy']}, "
        f"counting {header['counting']}, batch {header['batch']}, {header['precision']}"
    )
    table = Table(title=title, header_style="bold", show_lines=False, pad_edge=False)
    for name, justify in [
        ("layer", "left"),
        ("op", "left"),
        ("in", "right"),
        ("out", "right"),
        ("in MB", "right"),
        ("out MB", "right"),
        ("w MB", "right"),
        ("in/out/w", "left"),
        ("peak MB", "right"),
        ("unit", "left"),
        ("MMACs", "right"),
        ("Mops", "right"),
        ("xfer ms", "right"),
        ("compute ms", "right"),
        ("total ms", "right"),
    ]:
        table.add_column(name, justify=justify, no_wrap=name in ("layer",))  # type: ignore[arg-type]
    for s in estimate.schedule.steps:
        table.add_row(
            s.name,
            s.op,
            _shape(s.input_shape),
            _shape(s.output_shape),
            _mb(s.input_bytes),
            _mb(s.output_bytes),
            _mb(s.weight_bytes),
            "/".join(_short_loc(loc) for loc in (s.input_loc, s.output_loc, s.weight_loc)),
            _mb(s.peak_internal_bytes),
            s.unit,
            f"{s.macs / 1e6:.4g}",
            f"{s.ops / 1e6:.4g}",
            _ms(s.transfer_s),
            _ms(s.compute_s),
            _ms(s.total_s),
        )
    console.print(table)
    render_summary(estimate, console)


def _sub_batches(summary: dict[str, float | int]) -> str:
    """`` in 16 sub-batches of 1`` when the batch ran in sub-batches (weights loaded once per sub-batch)."""
    batch, size = int(summary["batch"]), int(summary["sub_batch"])
    if size >= batch:
        return ""
    return f" in {batch // size} sub-batches of {size}" + (f" and one of {batch % size}" if batch % size else "")


def render_summary(estimate: Estimate, console: Console) -> None:
    summary = estimate.summary()
    total = summary["total_time_s"] or 1.0
    lines = [
        f"[bold]total latency[/bold] {_ms(summary['total_time_s'])} "
        f"ms per batch of {summary['batch']}{_sub_batches(summary)}"
        f" ({_ms(summary['latency_per_image_s'])} ms per image, {summary['images_per_s']:.4g} images/s)",
        f"lower bound {_ms(summary['lower_bound_s'])} ms per batch, "
        f"efficiency {summary['efficiency']:.1%} (bound / predicted)",
        f"transfer {_ms(summary['transfer_time_s'])} ms ({summary['transfer_time_s'] / total:.0%}),"
        f" compute {_ms(summary['compute_time_s'])} ms ({summary['compute_time_s'] / total:.0%})",
        f"parameters {summary['params']:,}   MACs {summary['macs']:,}   ops {summary['ops']:,}"
        f"   bytes moved {summary['bytes_moved']:,}",
        "most expensive: " + ", ".join(f"{name} ({_ms(t)} ms)" for name, t in top_layers(estimate)),
    ]
    for line in lines:
        console.print(line, highlight=False)
