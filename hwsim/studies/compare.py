"""Side by side: every network × hardware × policy as one row, or two runs layer by layer.

A comparison is a pandas DataFrame, the single source for the terminal table
(:mod:`hwsim.report.studies`), CSV, Markdown and JSON. Column names carry their units.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hwsim.cost.coding import MapZeros
from hwsim.cost.inference import Counting
from hwsim.errors import InputError
from hwsim.estimate import Estimate, estimate
from hwsim.model.expand import load_network
from hwsim.model.graph import Graph
from hwsim.spec.hardware import Precision, load_hardware
from hwsim.spec.onnx_file import is_onnx

if TYPE_CHECKING:
    import pandas as pd

ENERGY_COLUMNS = [
    "energy_j",
    "energy_compute_j",
    "energy_internal_j",
    "energy_external_j",
    "energy_static_j",
    "energy_per_image_j",
    "edp_js",
    "area_mm2",
]
"""Taken from :meth:`Estimate.summary`; ``area_mm2`` is missing (NaN) for a profile without an ``area:`` section."""
SUMMARY_COLUMNS = [
    "network",
    "hardware",
    "policy",
    "params",
    "macs",
    "bytes_moved",
    "latency_s",
    "images_per_s",
    "lower_bound_s",
    "efficiency",
    "lower_bound_cut_s",
    "efficiency_cut",
    "latency_vs_first",
    *ENERGY_COLUMNS,
    "note",
]
"""From :meth:`Estimate.summary`. A run that no schedule fits (or whose external memory overflows) is a row
with its figures missing (empty in CSV, null in JSON) and the reason in ``note``; the rest still compare."""


@dataclass(frozen=True)
class Comparison:
    """A table and the title that says what it compares."""

    title: str
    rows: pd.DataFrame


@dataclass(frozen=True)
class Refused:
    """A run of the grid that cannot be scheduled as asked, and why (the policy's or the profile's message)."""

    network: str
    hardware: str
    policy: str
    reason: str


Run = Estimate | Refused


def load_networks(networks: Sequence[str], input_shape: tuple[int, ...] | None = None) -> list[Graph]:
    """Each of ``networks`` (files, ONNX models or bundled names) as a graph, each file read once;
    ``input_shape`` fixes the open input dims of the ONNX models among them."""
    graphs = {name: load_network(name, input_shape if is_onnx(name) else None) for name in dict.fromkeys(networks)}
    return [graphs[name] for name in networks]


def run_grid(
    networks: Sequence[str] | Sequence[Graph],
    hardware: Sequence[str],
    policies: Sequence[str],
    counting: Counting | str = "exact",
    batch: int = 1,
    precision: Precision | str | None = None,
    steady_state: bool | None = None,
    input_shape: tuple[int, ...] | None = None,
    map_zeros: MapZeros = None,
) -> list[Run]:
    """One estimate per network × hardware × policy, in that nesting order; networks given by name are read
    with :func:`load_networks` (``input_shape`` is for those).

    ``map_zeros`` (:func:`hwsim.estimate.estimate`): one fraction for every network's maps, or fractions per map
    name, each network taking those that name its layers or its input.

    A run that cannot be scheduled is a :class:`Refused` in its place, so one network that does not fit one
    profile leaves the others to compare; when every run is refused, the first refusal is the error.
    """
    graphs = [n for n in networks if isinstance(n, Graph)]
    if len(graphs) < len(networks):
        graphs = load_networks([str(n) for n in networks], input_shape)
    profiles = {name: load_hardware(name) for name in dict.fromkeys(hardware)}
    runs: list[Run] = []
    refusals: list[InputError] = []
    for graph, h, p in itertools.product(graphs, hardware, policies):
        profile = profiles[h]
        try:
            zeros = _zeros_of(graph, map_zeros)
            runs.append(estimate(graph, profile, p, counting, batch, precision, steady_state, zeros))
        except InputError as refusal:
            refusals.append(refusal)
            runs.append(Refused(graph.name, profile.name, p, str(refusal)))
    if refusals and len(refusals) == len(runs):
        raise refusals[0]
    return runs


def _zeros_of(graph: Graph, map_zeros: MapZeros) -> MapZeros:
    """The zero fractions of ``graph``'s maps among ``map_zeros``: all of them where one fraction is given."""
    if map_zeros is None or isinstance(map_zeros, float | int):
        return map_zeros
    names = set(graph.map_names)
    return {name: value for name, value in map_zeros.items() if name in names} or None


def label(run: Run) -> str:
    if isinstance(run, Refused):
        return f"{run.network} on {run.hardware} ({run.policy})"
    s = run.schedule
    return f"{s.network} on {s.hardware} ({s.policy})"


def summary_table(runs: Sequence[Run]) -> Comparison:
    """One row per run, with its latency as a multiple of the first scheduled row's."""
    import pandas as pd  # deferred, as in hwsim.report.tables

    estimates = [run for run in runs if isinstance(run, Estimate)]
    if not estimates:
        raise InputError("nothing to compare: give at least one network")
    rows: list[dict[str, Any]] = []
    for e in runs:
        if isinstance(e, Refused):
            rows.append({"network": e.network, "hardware": e.hardware, "policy": e.policy, "note": e.reason})
            continue
        summary = e.summary()
        rows.append(
            {
                "network": e.schedule.network,
                "hardware": e.schedule.hardware,
                "policy": e.schedule.policy,
                "params": summary["params"],
                "macs": summary["macs"],
                "bytes_moved": summary["bytes_moved"],
                "latency_s": summary["total_time_s"],
                "images_per_s": summary["images_per_s"],
                "lower_bound_s": summary.get("lower_bound_s", math.nan),
                "efficiency": summary.get("efficiency", math.nan),
                "lower_bound_cut_s": summary.get("lower_bound_cut_s", math.nan),
                "efficiency_cut": summary.get("efficiency_cut", math.nan),
                **{column: summary[column] for column in ENERGY_COLUMNS},
                "note": "",
            }
        )
    first = estimates[0].schedule.total_s
    for row in rows:
        row["latency_vs_first"] = row.get("latency_s", math.nan) / first if first else math.nan
    s = estimates[0].schedule
    title = (
        f"comparison — counting {s.counting}, batch {s.batch}; latency_vs_first is relative to {label(estimates[0])}"
    )
    return Comparison(title, pd.DataFrame(rows, columns=SUMMARY_COLUMNS))


def layer_diff(a: Estimate, b: Estimate) -> Comparison:
    """Two runs step by step (matched by name, A's order first): times side by side, B - A and B / A."""
    import pandas as pd

    def steps(e: Estimate, side: str) -> pd.DataFrame:
        return pd.DataFrame(
            [(s.name, s.transfer_s, s.compute_s, s.total_s) for s in e.schedule.steps],
            columns=["layer", f"{side}_transfer_s", f"{side}_compute_s", f"{side}_total_s"],
        )

    table = steps(a, "a").merge(steps(b, "b"), on="layer", how="outer")
    order = list(dict.fromkeys([*(s.name for s in a.schedule.steps), *(s.name for s in b.schedule.steps)]))
    table = table.set_index("layer").loc[order].reset_index()  # an outer merge sorts by name
    table["delta_s"] = table["b_total_s"] - table["a_total_s"]
    table["b_over_a"] = table["b_total_s"] / table["a_total_s"]
    return Comparison(f"per layer — a: {label(a)}, b: {label(b)}", table)


def per_layer(runs: Sequence[Run]) -> Comparison:
    if len(runs) != 2:
        raise InputError(f"--per-layer compares exactly two runs, got {len(runs)} (networks × --hw × --policy)")
    a, b = runs
    for run in runs:
        if isinstance(run, Refused):
            raise InputError(f"{label(run)} cannot be scheduled: {run.reason}", field="--per-layer")
    assert isinstance(a, Estimate) and isinstance(b, Estimate)
    return layer_diff(a, b)


def to_csv(comparison: Comparison) -> str:
    return comparison.rows.to_csv(index=False)


def to_markdown(comparison: Comparison) -> str:
    return f"# {comparison.title}\n\n{comparison.rows.to_markdown(index=False, floatfmt='.6g', missingval='—')}\n"


def to_json(comparison: Comparison) -> str:
    rows = json.loads(comparison.rows.to_json(orient="records", double_precision=15))  # energies are small: keep digits
    return json.dumps({"title": comparison.title, "rows": rows}, indent=2) + "\n"


FORMATS: dict[str, Callable[[Comparison], str]] = {"csv": to_csv, "md": to_markdown, "json": to_json}
assert set(FORMATS) == {"csv", "md", "json"}, "the same formats as hwsim.report.tables, so report.format_for applies"
