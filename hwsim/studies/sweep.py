"""Design-space sweeps: vary numeric hardware fields over a grid and re-schedule at every point.

Costs depend on the graph, the counting, the batch, the precision and which unit runs each op,
never on capacities, bandwidths or throughputs, so the graph is costed once and only the
scheduling is repeated. The paper policy has a vectorised fast path (:mod:`hwsim.studies.sweep_paper`)
that gives exactly the numbers of :func:`hwsim.estimate`; other policies are scheduled point by point.

Only the swept points are scheduled, never the profile's own values. A point where no schedule fits
(the policy raises :class:`InputError`) is a row with NaN times and the policy's reason in ``note``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from hwsim.cost.bound import lower_bound
from hwsim.cost.inference import Counting, LayerCost
from hwsim.errors import InputError
from hwsim.estimate import cost_run, estimate
from hwsim.model.graph import Graph
from hwsim.spec.hardware import ComputeUnit, HardwareSpec, Precision
from hwsim.studies import sweep_paper
from hwsim.units import format_quantity, parse_quantity

if TYPE_CHECKING:
    import pandas as pd

KIND_OF_LEAF = {"capacity": "bytes", "bandwidth": "bandwidth", "throughput": "throughput", "clock": "frequency"}
"""Numeric hardware fields by their last name, and the kind of quantity :mod:`hwsim.units` parses."""
UNIT_SUFFIX = {"bytes": "_bytes", "bandwidth": "_bytes_per_s", "throughput": "_ops_per_s", "frequency": "_hz"}
UNIT_SYMBOL = {"bytes": "B", "bandwidth": "B/s", "throughput": "FLOP/s", "frequency": "Hz"}
SUMMARY_KEYS = {
    "total_s": "total_time_s",
    "transfer_s": "transfer_time_s",
    "compute_s": "compute_time_s",
    "bytes_moved": "bytes_moved",
    "images_per_s": "images_per_s",
    "lower_bound_s": "lower_bound_s",
    "efficiency": "efficiency",
    "energy_j": "energy_j",
    "energy_compute_j": "energy_compute_j",
    "energy_internal_j": "energy_internal_j",
    "energy_external_j": "energy_external_j",
    "energy_static_j": "energy_static_j",
    "energy_per_image_j": "energy_per_image_j",
    "edp_js": "edp_js",
}
"""Sweep columns and the :meth:`Estimate.summary` keys they hold."""
METRICS = list(SUMMARY_KEYS)
NOTE = "note"
"""The last column: empty, or why no schedule fits at this point (the policy's message)."""

MAX_POINTS = 1_000_000
"""The largest grid a sweep schedules (paper fast path: about 5 s, and 25 s to write its 165 MB CSV)."""
MAX_POINTS_SCHEDULED = 1_000
"""The largest grid for policies scheduled point by point (0.1 to 1 s per point of HairNet)."""
MAX_AXIS_POINTS = 10_000
"""Points per ``--vary``: finer than any plot can show."""

SATURATION_TOLERANCE = 0.05
"""More of a resource "stops paying" at the smallest value whose latency is within 5 % of the best."""

_VARY = re.compile(r"^(?P<field>[^=]+)=(?P<lo>[^.:][^:]*?)\.\.(?P<hi>[^:]+)(?P<options>(?::[^:]*)*)$")


@dataclass(frozen=True)
class Axis:
    """One swept field: its dotted path, its kind of quantity, the values it takes (SI units) and how they
    are spaced (``log`` or ``lin``)."""

    field: str
    kind: str
    values: tuple[float, ...]
    scale: str = "log"

    @property
    def column(self) -> str:
        return self.field + UNIT_SUFFIX[self.kind]

    def human(self, value: float) -> str:
        """``2e6`` -> ``2 MB`` in this axis's unit."""
        return format_quantity(value, UNIT_SYMBOL[self.kind])


def numeric_fields(hardware: HardwareSpec) -> dict[str, str]:
    """Every sweepable field of ``hardware`` by dotted path (``compute.matrix.throughput``) -> kind. A unit with
    a clock (an array or lanes) sweeps its clock: its throughput follows from it."""
    fields = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, BaseModel):
            children = [(name, getattr(node, name)) for name in type(node).model_fields]
        elif isinstance(node, dict):
            children = list(node.items())
        else:
            return
        for name, child in children:
            child_path = f"{path}.{name}" if path else name
            clocked = isinstance(node, ComputeUnit) and node.clock is not None
            if (name == "clock" and not clocked) or (name == "throughput" and clocked):
                continue
            if name in KIND_OF_LEAF and not isinstance(child, (BaseModel, dict)):
                fields[child_path] = KIND_OF_LEAF[name]
            else:
                walk(child, child_path)

    walk(hardware, "")
    return fields


def parse_axis(text: str, hardware: HardwareSpec) -> Axis:
    """``FIELD=LO..HI[:lin|log][:N]`` (default log, 5 points) -> an :class:`Axis`; errors name ``--vary``."""

    def fail(message: str) -> InputError:
        return InputError(f"{text!r}: {message}", field="--vary")

    match = _VARY.match(text.strip())
    if not match:
        raise fail("expected FIELD=LO..HI[:lin|log][:N], e.g. memory.internal.capacity=256KB..8MB:log:6")
    field = match["field"].strip()
    fields = numeric_fields(hardware)
    if field not in fields:
        raise fail(f"no numeric field {field!r} in {hardware.name}; choose one of {', '.join(fields)}")
    scale, count = "log", 5
    for option in filter(None, match["options"].split(":")):
        if option in ("lin", "log"):
            scale = option
        elif option.isdigit() and int(option) >= 1:
            count = int(option)
            if count > MAX_AXIS_POINTS:
                raise fail(f"{count:,} points on one axis; at most {MAX_AXIS_POINTS:,}")
        else:
            raise fail(f"unknown option {option!r}: give lin or log, and a number of points of at least 1")
    try:
        lo, hi = (parse_quantity(match[end].strip(), fields[field]) for end in ("lo", "hi"))
    except ValueError as err:
        raise fail(str(err)) from None
    if lo > hi:
        raise fail(f"the range runs from low to high, got {match['lo']} > {match['hi']}")
    if count == 1 and lo != hi:
        raise fail("one point needs LO == HI")
    values = np.geomspace(lo, hi, count) if scale == "log" else np.linspace(lo, hi, count)
    # the same rule as parse_quantity for every value, should rounding push one outside [lo, hi]
    values = np.clip(values, lo, hi)
    if not (np.isfinite(values).all() and values.min() >= 1):
        raise fail("every value must be finite and at least 1 in the base unit")
    if fields[field] == "bytes":
        values = np.round(values)  # a memory holds whole bytes
    return Axis(field, fields[field], tuple(as_written(v) for v in values), scale)


def as_written(value: float) -> float:
    """A grid value without the float noise of its spacing: ``2000000000.0000002`` -> ``2e9``.

    Twelve significant digits: far beyond any hardware figure, and short of the last digits'
    rounding in geomspace and linspace.
    """
    return float(f"{value:.12g}")


def variant(hardware: HardwareSpec, point: dict[str, float]) -> HardwareSpec:
    """``hardware`` with the fields of ``point`` (dotted path -> value) replaced, validated again."""
    data = hardware.model_dump()
    for path, value in point.items():
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
        if leaf == "clock":
            node["throughput"] = None  # it follows from the new clock
    return HardwareSpec.model_validate(data)


def grid_size(axes: Sequence[Axis]) -> int:
    return math.prod(len(axis.values) for axis in axes)


def is_fast(policy: str, hardware: HardwareSpec) -> bool:
    """Whether ``policy`` on ``hardware`` has the vectorised fast path (a profile timed by its peaks alone:
    :attr:`HardwareSpec.timed_by_peak`); the others are scheduled point by point."""
    return policy in sweep_paper.FAST_POLICIES and hardware.timed_by_peak


def check_grid(axes: Sequence[Axis], policy: str, hardware: HardwareSpec) -> None:
    """Refuse, before any work, a grid too large to schedule in reasonable time and memory."""
    size = grid_size(axes)
    fast = is_fast(policy, hardware)
    limit = MAX_POINTS if fast else MAX_POINTS_SCHEDULED
    if size > limit:
        shape = " x ".join(f"{len(axis.values):,}" for axis in axes)
        how = "" if fast else f" for policy {policy}, which is scheduled point by point"
        raise InputError(
            f"the grid has {size:,} points ({shape}); the limit is {limit:,}{how}: give fewer points", field="--vary"
        )


def grid(axes: Sequence[Axis]) -> dict[str, np.ndarray]:
    """The full grid as one array per field, the last axis varying fastest."""
    mesh = np.meshgrid(*(np.array(axis.values) for axis in axes), indexing="ij")
    return {axis.field: values.ravel() for axis, values in zip(axes, mesh)}


@dataclass(frozen=True)
class Costed:
    """What every point of a sweep shares: the graph costed once on the profile, and the run's options."""

    graph: Graph
    hardware: HardwareSpec
    costs: tuple[LayerCost, ...]
    policy: str
    counting: str
    batch: int
    precision: str


def cost_once(
    graph: Graph,
    hardware: HardwareSpec,
    policy: str,
    counting: Counting | str,
    batch: int,
    precision: Precision | str | None,
) -> Costed:
    """Validate the options as :func:`estimate` does and cost the graph, without scheduling the profile."""
    costs, counting, precision = cost_run(graph, hardware, policy, counting, batch, precision)
    return Costed(graph, hardware, costs, policy, counting.name, batch, precision.value)


@dataclass(frozen=True)
class SweepResult:
    network: str
    hardware: str
    policy: str
    axes: tuple[Axis, ...]
    rows: pd.DataFrame
    """One row per point: a column per axis (``Axis.column``), then :data:`METRICS`, then :data:`NOTE`."""

    @property
    def infeasible(self) -> pd.DataFrame:
        """The rows where no schedule fits."""
        return self.rows[self.rows[NOTE] != ""]


def run(
    graph: Graph,
    hardware: HardwareSpec,
    axes: Sequence[Axis],
    policy: str = "paper",
    counting: Counting | str = "exact",
    batch: int = 1,
    precision: Precision | str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SweepResult:
    """Schedule ``graph`` at every point of the grid of ``axes``; ``on_progress(n)`` after each n points done.

    Raises :class:`InputError` when the grid is too large or when no point at all can be scheduled.
    """
    import pandas as pd

    if not axes:
        raise InputError("nothing to sweep: give at least one --vary")
    if len({a.field for a in axes}) != len(axes):
        raise InputError("a field is varied twice", field="--vary")
    check_grid(axes, policy, hardware)
    base = cost_once(graph, hardware, policy, counting, batch, precision)
    points = grid(axes)
    evaluate = sweep_paper.evaluate if is_fast(policy, hardware) else _point_by_point
    metrics, notes = evaluate(base, points, on_progress)
    metrics["lower_bound_s"] = _lower_bound(base, points)
    metrics["efficiency"] = _efficiency(metrics["lower_bound_s"], metrics["total_s"])
    columns = {a.column: _whole_if_integral(points[a.field]) for a in axes} | {m: metrics[m] for m in METRICS}
    # whole bytes, and an empty cell (not NaN, not 0) where nothing was scheduled
    infeasible = np.isnan(metrics["total_s"])
    columns["bytes_moved"] = pd.arrays.IntegerArray(np.nan_to_num(metrics["bytes_moved"]).astype(np.int64), infeasible)
    rows = pd.DataFrame(columns | {NOTE: notes})
    result = SweepResult(graph.name, hardware.name, policy, tuple(axes), rows)
    if len(result.infeasible) == len(rows):
        first = result.infeasible.iloc[0]
        raise InputError(
            f"every one of the {len(rows):,} points is infeasible under policy {policy}; "
            f"at {describe_point(axes, first)}: {first[NOTE]}",
            field="--vary",
        )
    return result


def _whole_if_integral(values: np.ndarray) -> np.ndarray:
    """Whole numbers as integers, so the CSV says ``2000000000``, as the user wrote it, not ``2000000000.0``."""
    integral = np.all(values == np.round(values)) and np.all(np.abs(values) < 2.0**53)
    return values.astype(np.int64) if integral else values


def describe_point(axes: Sequence[Axis], row: pd.Series) -> str:
    """``memory.internal.capacity = 1 MB, memory.external.bandwidth = 2 GB/s`` for one row."""
    return ", ".join(f"{a.field} = {a.human(row[a.column])}" for a in axes)


def _lower_bound(base: Costed, points: dict[str, np.ndarray]) -> np.ndarray:
    """:func:`hwsim.cost.bound.lower_bound` at every point, vectorised.

    Its compulsory bytes and ops per unit do not depend on the swept values; evaluated at 1 B/s and
    1 op/s they come out as themselves, so each point divides them by its own bandwidth and throughputs.
    """
    hw = base.hardware
    if not hw.timed_by_peak:  # cycles, overheads or steady state: the bound of each point's own profile
        n = len(next(iter(points.values())))
        return np.array(
            [
                lower_bound(
                    base.costs, variant(hw, {field: float(values[i]) for field, values in points.items()})
                ).total_s
                for i in range(n)
            ]
        )
    ones = {"memory.external.bandwidth": 1.0} | {f"compute.{unit}.throughput": 1.0 for unit in hw.compute}
    per_unit = lower_bound(base.costs, variant(hw, ones))
    n = len(next(iter(points.values())))
    bound = np.broadcast_to(
        per_unit.transfer_s / points.get("memory.external.bandwidth", hw.memory.external.bandwidth), n
    )
    for unit, ops in per_unit.compute_s.items():
        bound = np.maximum(bound, ops / points.get(f"compute.{unit}.throughput", hw.compute[unit].throughput))
    return np.array(bound, dtype=float)


def _efficiency(bound: np.ndarray, total: np.ndarray) -> np.ndarray:
    """bound / total as in :meth:`Estimate.summary` (1 when nothing takes time), NaN where infeasible."""
    efficiency = np.full(len(total), np.nan)
    feasible = ~np.isnan(total)
    efficiency[feasible] = 1.0
    timed = feasible.copy()
    timed[feasible] = total[feasible] > 0
    efficiency[timed] = bound[timed] / total[timed]
    return efficiency


def _point_by_point(
    base: Costed, points: dict[str, np.ndarray], on_progress: Callable[[int], None] | None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """:func:`estimate` itself at every point: slower, but right for any policy. NaN and a note where none fits.

    Re-costing the graph per point costs milliseconds against the scheduling's tenths of a second,
    and keeps every check :func:`estimate` makes (capacity of both memories) in one place.
    """
    n = len(next(iter(points.values())))
    metrics = {m: np.full(n, np.nan) for m in sweep_paper.SCHEDULE_METRICS}
    notes = [""] * n
    for i in range(n):
        hw = variant(base.hardware, {field: float(values[i]) for field, values in points.items()})
        try:
            summary = estimate(base.graph, hw, base.policy, base.counting, base.batch, base.precision).summary()
        except InputError as refusal:  # the options were checked once: this is the point's hardware
            notes[i] = str(refusal)
        else:
            for metric in metrics:
                metrics[metric][i] = summary[SUMMARY_KEYS[metric]]
        if on_progress:
            on_progress(1)
    return metrics, notes


def saturation(values: np.ndarray, latency: np.ndarray, tolerance: float = SATURATION_TOLERANCE) -> float:
    """The smallest value whose latency is within ``tolerance`` of the best along this axis.

    Infeasible points (NaN latency) are ignored; NaN when there is no feasible point.
    """
    values, latency = np.asarray(values, dtype=float), np.asarray(latency, dtype=float)
    feasible = ~np.isnan(latency)
    if not feasible.any():
        return math.nan
    values, latency = values[feasible], latency[feasible]
    order = np.argsort(values)
    values, latency = values[order], latency[order]
    return float(values[np.argmax(latency <= latency.min() * (1 + tolerance))])
