"""Design-space sweeps: vary numeric hardware fields over a grid and re-schedule at every point.

Costs depend on the graph, the counting, the batch, the precision and which unit runs each op,
never on capacities, bandwidths or throughputs, so the graph is costed once and only the
scheduling is repeated. The paper policy has a vectorised fast path (:mod:`hwsim.sweep_paper`)
that gives the numbers of :func:`hwsim.api.estimate` (to rounding); other policies are scheduled point by point.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from pydantic import BaseModel

from hwsim import api, sweep_paper
from hwsim.costs import Counting
from hwsim.errors import InputError
from hwsim.graph import Graph
from hwsim.schedule import POLICIES
from hwsim.schedule.base import Schedule
from hwsim.spec.hardware import HardwareSpec, Precision
from hwsim.units import format_quantity, parse_quantity

if TYPE_CHECKING:
    import pandas as pd

KIND_OF_LEAF = {"capacity": "bytes", "bandwidth": "bandwidth", "throughput": "throughput"}
"""Numeric hardware fields by their last name, and the kind of quantity :mod:`hwsim.units` parses."""
UNIT_SUFFIX = {"bytes": "_bytes", "bandwidth": "_bytes_per_s", "throughput": "_ops_per_s"}
UNIT_SYMBOL = {"bytes": "B", "bandwidth": "B/s", "throughput": "FLOP/s"}
SUMMARY_KEYS = {
    "total_s": "total_time_s", "transfer_s": "transfer_time_s", "compute_s": "compute_time_s",
    "bytes_moved": "bytes_moved", "images_per_s": "images_per_s",
}
"""Sweep columns and the :meth:`Estimate.summary` keys they hold."""
METRICS = list(SUMMARY_KEYS)

SATURATION_TOLERANCE = 0.05
"""More of a resource "stops paying" at the smallest value whose latency is within 5 % of the best."""

_VARY = re.compile(r"^(?P<field>[^=]+)=(?P<lo>[^.:][^:]*?)\.\.(?P<hi>[^:]+)(?P<options>(?::[^:]*)*)$")


@dataclass(frozen=True)
class Axis:
    """One swept field: its dotted path, its kind of quantity and the values it takes (SI units)."""

    field: str
    kind: str
    values: tuple[float, ...]

    @property
    def column(self) -> str:
        return self.field + UNIT_SUFFIX[self.kind]

    def human(self, value: float) -> str:
        """``2e6`` -> ``2 MB`` in this axis's unit."""
        return format_quantity(value, UNIT_SYMBOL[self.kind])


def numeric_fields(hardware: HardwareSpec) -> dict[str, str]:
    """Every sweepable field of ``hardware`` by dotted path (``compute.matrix.throughput``) -> kind."""
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
    return Axis(field, fields[field], tuple(float(v) for v in values))


def variant(hardware: HardwareSpec, point: dict[str, float]) -> HardwareSpec:
    """``hardware`` with the fields of ``point`` (dotted path -> value) replaced, validated again."""
    data = hardware.model_dump()
    for path, value in point.items():
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    return HardwareSpec.model_validate(data)


def grid(axes: Sequence[Axis]) -> dict[str, np.ndarray]:
    """The full grid as one array per field, the last axis varying fastest."""
    points = np.array(list(itertools.product(*(axis.values for axis in axes))), dtype=float)
    return {axis.field: points[:, i] for i, axis in enumerate(axes)}


@dataclass(frozen=True)
class SweepResult:
    network: str
    hardware: str
    policy: str
    axes: tuple[Axis, ...]
    rows: "pd.DataFrame"
    """One row per point: a column per axis (``Axis.column``), then :data:`METRICS`."""


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
    """Schedule ``graph`` at every point of the grid of ``axes``; ``on_progress(n)`` after each n points done."""
    import pandas as pd

    if not axes:
        raise InputError("nothing to sweep: give at least one --vary")
    if len({a.field for a in axes}) != len(axes):
        raise InputError("a field is varied twice", field="--vary")
    # api.estimate validates the options and costs the graph: the costs every point shares
    base = api.estimate(graph, hardware, policy, counting, batch, precision)
    points = grid(axes)
    evaluate = sweep_paper.evaluate if policy in sweep_paper.FAST_POLICIES else _point_by_point
    metrics = evaluate(base, points, on_progress)
    rows = pd.DataFrame({**{a.column: points[a.field] for a in axes}, **{m: metrics[m] for m in METRICS}})
    return SweepResult(graph.name, hardware.name, policy, tuple(axes), rows)


def _point_by_point(
    base: api.Estimate, points: dict[str, np.ndarray], on_progress: Callable[[int], None] | None
) -> dict[str, np.ndarray]:
    """The policy itself at every point: slower, but right for any policy."""
    s = base.schedule
    n = len(next(iter(points.values())))
    metrics = {m: np.empty(n) for m in METRICS}
    for i in range(n):
        hw = variant(base.hardware, {field: float(values[i]) for field, values in points.items()})
        steps = POLICIES[s.policy](base.graph, base.costs, hw)
        schedule = Schedule(s.policy, s.network, hw.name, s.counting, s.batch, s.precision, tuple(steps))
        summary = api.Estimate(base.graph, hw, base.costs, schedule).summary()
        for metric, key in SUMMARY_KEYS.items():
            metrics[metric][i] = summary[key]
        if on_progress:
            on_progress(1)
    return metrics


def saturation(values: np.ndarray, latency: np.ndarray, tolerance: float = SATURATION_TOLERANCE) -> float:
    """The smallest value whose latency is within ``tolerance`` of the best along this axis."""
    order = np.argsort(values)
    values, latency = np.asarray(values)[order], np.asarray(latency)[order]
    return float(values[np.argmax(latency <= latency.min() * (1 + tolerance))])
