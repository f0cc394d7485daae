"""Design-space sweeps: vary numeric hardware fields over a grid and re-schedule at every point.

Costs depend on the graph, the counting, the batch, the precision and which unit runs each op,
never on capacities, bandwidths or throughputs, so the graph is costed once and only the
scheduling is repeated. The paper policy has a vectorised fast path (:mod:`hwsim.studies.sweep_paper`)
that gives exactly the numbers of :func:`hwsim.estimate`; other policies are scheduled point by point,
in chunks spread over a pool of workers (:mod:`hwsim.studies.parallel`), each finished chunk handed to
the caller at once so it can be written before the sweep ends, and a resumed sweep skips what it has.
Instead of a cap on their points, they have a budget of estimated time: the CPU time of a few points,
times the points, over the workers.

Only the swept points are scheduled, never the profile's own values. A point where no schedule fits
(the policy raises :class:`InputError`) is a row with NaN times and the policy's reason in ``note``.
"""

from __future__ import annotations

import math
import re
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from hwsim.cost.bound import lower_bound
from hwsim.cost.coding import MapZeros
from hwsim.cost.inference import Counting, LayerCost
from hwsim.errors import InputError
from hwsim.estimate import coded_costs, cost_run, estimate
from hwsim.model.graph import Graph
from hwsim.schedule.base import collector_paused
from hwsim.schedule.planner import Plans, plans_shared
from hwsim.spec.hardware import ComputeUnit, HardwareSpec, Precision
from hwsim.studies import sweep_paper
from hwsim.studies.parallel import Pool, Serial
from hwsim.units import format_duration, format_quantity, parse_quantity

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
POINT_KEYS = {metric: SUMMARY_KEYS[metric] for metric in sweep_paper.SCHEDULE_METRICS} | {"area_mm2": "area_mm2"}
"""What scheduling one point gives (:func:`schedule_points`), by name -> its :meth:`Estimate.summary` key: the
schedule's metrics, and the profile's silicon area (a search may minimise it)."""
NOTE = "note"
"""The last column: empty, or why no schedule fits at this point (the policy's message)."""

MAX_POINTS = 1_000_000
"""The largest grid a sweep schedules (paper fast path: about 5 s, and 25 s to write its 165 MB CSV)."""
MAX_AXIS_POINTS = 10_000
"""Points per ``--vary``: finer than any plot can show."""
MAX_HOURS = 1.0
"""The budget of a sweep scheduled point by point (strict, optimized): its estimated CPU time over its workers,
in hours. More workers (local, or a Dask cluster) raise it; a longer design-space study is split, or resumed."""
SAMPLE_GROUP_POINTS = 8
"""Points of a capacity each worker is sent first, timed one by one, to estimate what the sweep will take: the
first plans, the others share its plans, as the points of a capacity do (:func:`_scheduled`)."""
POOL_MIN_SECONDS = 2.0
"""Below this much estimated CPU time the rest of a sweep runs here: starting workers would cost more."""
CHUNK_SECONDS = 0.5
"""About this much work per task sent to a worker: few enough messages, rows written soon after they finish."""
PLANNED_FIELD = "memory.internal.capacity"
"""The field plans read that sweeps vary most: a task holds the points of one value where it can."""

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


@dataclass(frozen=True)
class Range:
    """A ``--vary`` as written: a field, its kind of quantity, its bounds (SI units), its spacing and, if given,
    its number of points."""

    field: str
    kind: str
    lo: float
    hi: float
    scale: str = "log"
    count: int | None = None


def parse_range(text: str, hardware: HardwareSpec) -> Range:
    """``FIELD=LO..HI[:lin|log][:N]`` -> a :class:`Range`; errors name ``--vary``."""

    def fail(message: str) -> InputError:
        return InputError(f"{text!r}: {message}", field="--vary")

    match = _VARY.match(text.strip())
    if not match:
        raise fail("expected FIELD=LO..HI[:lin|log][:N], e.g. memory.internal.capacity=256KB..8MB:log:6")
    field = match["field"].strip()
    fields = numeric_fields(hardware)
    if field not in fields:
        raise fail(f"no numeric field {field!r} in {hardware.name}; choose one of {', '.join(fields)}")
    scale, count = "log", None
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
    return Range(field, fields[field], lo, hi, scale, count)


def parse_axis(text: str, hardware: HardwareSpec) -> Axis:
    """``FIELD=LO..HI[:lin|log][:N]`` (default log, 5 points) -> an :class:`Axis`; errors name ``--vary``."""
    vary = parse_range(text, hardware)
    count = vary.count or 5
    spaced = np.geomspace if vary.scale == "log" else np.linspace
    values = spaced(vary.lo, vary.hi, count)
    # the same rule as parse_quantity for every value, should rounding push one outside [lo, hi]
    values = np.clip(values, vary.lo, vary.hi)
    if not (np.isfinite(values).all() and values.min() >= 1):
        raise InputError(f"{text!r}: every value must be finite and at least 1 in the base unit", field="--vary")
    return Axis(vary.field, vary.kind, tuple(as_written(v) for v in written(vary.kind, values)), vary.scale)


def written(kind: str, values: np.ndarray) -> np.ndarray:
    """Values as a profile holds them: a memory holds whole bytes."""
    return np.round(values) if kind == "bytes" else values


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


def check_grid(axes: Sequence[Axis]) -> None:
    """Refuse, before any work, a grid too large to hold in memory (any policy; the time a policy scheduled
    point by point would take is checked by :func:`check_budget` once a few points are timed)."""
    size = grid_size(axes)
    if size > MAX_POINTS:
        shape = " x ".join(f"{len(axis.values):,}" for axis in axes)
        raise InputError(
            f"the grid has {size:,} points ({shape}); the limit is {MAX_POINTS:,}: give fewer points", field="--vary"
        )


def check_budget(points: int, seconds_per_point: float, workers: int, policy: str, what: str = "points") -> None:
    """Refuse a sweep (or a search: ``what`` is then ``trials``) whose estimated CPU time over its workers
    exceeds :data:`MAX_HOURS`."""
    hours = points * seconds_per_point / workers / 3600
    if hours > MAX_HOURS:
        raise InputError(
            f"{points:,} {what} under policy {policy} would take about {hours:.1f} hours on {workers} "
            f"worker{'s' if workers > 1 else ''} ({format_duration(seconds_per_point)} of CPU a point); the limit is "
            f"{MAX_HOURS:g} hour: give fewer {what}, or more workers (--workers, --dask)",
            field="--vary",
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
    map_zeros: MapZeros = None
    """The maps' zero fractions the run was given (``--map-zeros``): ``costs`` move them coded where the link codes."""


def cost_once(
    graph: Graph,
    hardware: HardwareSpec,
    policy: str,
    counting: Counting | str,
    batch: int,
    precision: Precision | str | None,
    map_zeros: MapZeros = None,
) -> Costed:
    """Validate the options as :func:`estimate` does and cost the graph, without scheduling the profile."""
    costs, counting, precision = cost_run(graph, hardware, policy, counting, batch, precision)
    costs = coded_costs(costs, hardware, precision, map_zeros)
    return Costed(graph, hardware, costs, policy, counting.name, batch, precision.value, map_zeros)


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


Results = tuple[dict[str, np.ndarray], list[str]]
"""Metrics by name (an array each, NaN where no schedule fits) and a note per point (empty, or why not)."""
Resumed = Mapping[int, tuple[Mapping[str, float], str]]
"""Points a sweep already has (read back from its file), by grid index: their metrics and note."""


@dataclass(frozen=True)
class Row:
    """One finished point as the sweep's file holds it: its grid index, and one value per :func:`columns`
    (swept values, whole ones as ``int``; :data:`METRICS`, ``bytes_moved`` an ``int`` or None where
    infeasible; the note)."""

    index: int
    values: tuple[Any, ...]


def columns(axes: Sequence[Axis]) -> list[str]:
    """The columns of a sweep's rows: a column per axis, then :data:`METRICS`, then :data:`NOTE`."""
    return [a.column for a in axes] + METRICS + [NOTE]


def run(
    graph: Graph,
    hardware: HardwareSpec,
    axes: Sequence[Axis],
    policy: str = "paper",
    counting: Counting | str = "exact",
    batch: int = 1,
    precision: Precision | str | None = None,
    on_progress: Callable[[int], None] | None = None,
    pool: Pool | None = None,
    resumed: Resumed | None = None,
    on_rows: Callable[[list[Row]], None] | None = None,
    map_zeros: MapZeros = None,
) -> SweepResult:
    """Schedule ``graph`` at every point of the grid of ``axes``; ``on_progress(n)`` after each n points done.
    ``map_zeros``: the maps' zero fractions, as :func:`estimate` takes them.

    A policy scheduled point by point runs on ``pool`` (default: here), skips the points ``resumed`` holds,
    and hands each finished chunk of points to ``on_rows`` at once, in the order they finish. The paper
    policy computes every point at once, in seconds, and needs neither.

    Raises :class:`InputError` when the grid is too large, would take longer than :data:`MAX_HOURS` on the
    pool's workers, or when no point at all can be scheduled.
    """
    import pandas as pd

    if not axes:
        raise InputError("nothing to sweep: give at least one --vary")
    if len({a.field for a in axes}) != len(axes):
        raise InputError("a field is varied twice", field="--vary")
    check_grid(axes)
    base = cost_once(graph, hardware, policy, counting, batch, precision, map_zeros)
    points = grid(axes)
    bound = lower_bounds(base, points)
    if is_fast(policy, hardware):
        metrics, notes = sweep_paper.evaluate(base, points, on_progress)
    else:
        progress = _Progress(axes, points, bound, on_progress, on_rows)
        metrics, notes = _scheduled(base, points, pool or Serial(), resumed or {}, progress)
    metrics["lower_bound_s"] = bound
    metrics["efficiency"] = efficiencies(bound, metrics["total_s"])
    columns = {a.column: whole_if_integral(points[a.field]) for a in axes} | {m: metrics[m] for m in METRICS}
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


@dataclass(frozen=True)
class _Progress:
    """Where finished points go while a sweep runs: rows to the caller, a count to its progress bar."""

    axes: Sequence[Axis]
    points: dict[str, np.ndarray]
    bound: np.ndarray
    on_progress: Callable[[int], None] | None
    on_rows: Callable[[list[Row]], None] | None

    def finished(self, indices: list[int], metrics: dict[str, np.ndarray], notes: list[str]) -> None:
        if self.on_rows:
            self.on_rows(self.rows(indices, metrics, notes))
        if self.on_progress:
            self.on_progress(len(indices))

    def rows(self, indices: list[int], metrics: dict[str, np.ndarray], notes: list[str]) -> list[Row]:
        """The rows of ``indices``, with the values the sweep's DataFrame will hold for them."""
        at = np.array(indices)
        chunk = {m: metrics[m][at] for m in sweep_paper.SCHEDULE_METRICS}
        chunk["lower_bound_s"] = self.bound[at]
        chunk["efficiency"] = efficiencies(chunk["lower_bound_s"], chunk["total_s"])
        rows = []
        for k, index in enumerate(indices):
            values: list[Any] = [column[index].item() for column in self.swept]
            for metric in METRICS:
                value = chunk[metric][k].item()
                if metric == "bytes_moved":  # whole bytes, or nothing where no schedule fits
                    value = None if math.isnan(value) else int(value)
                values.append(value)
            rows.append(Row(index, (*values, notes[index])))
        return rows

    @cached_property
    def swept(self) -> list[np.ndarray]:
        """Each axis's column of the grid, as the DataFrame holds it (whole numbers as integers)."""
        return [whole_if_integral(self.points[a.field]) for a in self.axes]


def _scheduled(
    base: Costed, points: dict[str, np.ndarray], pool: Pool, resumed: Resumed, progress: _Progress
) -> Results:
    """Every point not ``resumed`` scheduled by :func:`schedule_points`: a few here first, timed, to check the
    budget, then the rest in chunks on ``pool`` (or here, when that is quicker than starting workers)."""
    n = len(next(iter(points.values())))
    metrics = {m: np.full(n, np.nan) for m in sweep_paper.SCHEDULE_METRICS}
    notes = [""] * n
    for index, (values, note) in resumed.items():
        for metric in metrics:
            metrics[metric][index] = values[metric]
        notes[index] = note
    pending = [i for i in range(n) if i not in resumed]
    if not pending:
        return metrics, notes

    def keep(indices: list[int], results: Results) -> None:
        got, got_notes = results
        for metric in metrics:
            metrics[metric][indices] = got[metric]
        for index, note in zip(indices, got_notes):
            notes[index] = note
        progress.finished(indices, metrics, notes)

    # The first point is timed here: it plans its capacity, so it says (if anything, too high) whether the sweep
    # is worth starting workers for. Then a group of points of other capacities, spread over the grid, goes to
    # each worker, timed point by point: the first plans, the others only time the plan's programs, as most
    # points do. The budget is checked on them all, before anything else is sent, and their rows are kept. With
    # one capacity only, its middle point is timed here too, for the points that only time.
    planned = points.get(PLANNED_FIELD)
    groups = _groups(pending, planned)
    head = [groups[0][0], groups[0][len(groups[0]) // 2]][: 1 if len(groups) > 1 else len(groups[0])]
    sampled = {index: timed_points(base, _take(points, [index])) for index in head}
    first_seconds = [sampled[head[0]][1]]
    later_seconds = [seconds for index, (_, seconds) in sampled.items() if index != head[0]]
    guess = estimated_cpu(first_seconds, later_seconds, len(groups), len(pending))
    runner = pool if guess * (len(pending) - len(head)) / len(pending) >= POOL_MIN_SECONDS else Serial()
    spread = sorted({round(k * (len(groups) - 1) / runner.workers) for k in range(1, runner.workers + 1)} - {0})
    tasks = [groups[k][:SAMPLE_GROUP_POINTS] for k in spread]
    for k, timed in runner.imap(timed_each, base, [_take(points, list(task)) for task in tasks]) if tasks else ():
        sampled |= dict(zip(tasks[k], timed))
        first_seconds.append(timed[0][1])
        later_seconds += [seconds for _, seconds in timed[1:]]
    per_point = estimated_cpu(first_seconds, later_seconds, len(groups), len(pending)) / len(pending)
    check_budget(len(pending), per_point, pool.workers, base.policy)
    for index in sorted(sampled):
        keep([index], sampled[index][0])
    rest = [i for i in pending if i not in sampled]
    if per_point * len(rest) < POOL_MIN_SECONDS:
        runner = Serial()
    timed_only = sum(later_seconds) / len(later_seconds) if later_seconds else per_point
    size = max(1, min(round(CHUNK_SECONDS / max(timed_only, 1e-6)), math.ceil(len(rest) / (4 * runner.workers))))
    chunks = _chunks(rest, planned, size, runner.workers)
    for k, results in runner.imap(schedule_points, base, [_take(points, chunk) for chunk in chunks]):
        keep(chunks[k], results)
    return metrics, notes


def _groups(indices: list[int], planned: np.ndarray | None) -> list[list[int]]:
    """``indices`` by their ``planned`` value (a capacity), in order: the points that share their plans."""
    if planned is None:
        return [indices]
    groups: dict[float, list[int]] = {}
    for index in indices:
        groups.setdefault(float(planned[index]), []).append(index)
    return list(groups.values())


def estimated_cpu(first_seconds: list[float], later_seconds: list[float], groups: int, points: int) -> float:
    """CPU seconds of ``points`` points in ``groups`` capacities, from the first points of some capacities (each
    plans, then times) and later points of them (each only times the plan's programs): a sweep plans each capacity
    once where it is scheduled. Without later points, every point is taken to plan."""
    planned = sum(first_seconds) / len(first_seconds)
    if not later_seconds:
        return points * planned
    return groups * planned + (points - groups) * sum(later_seconds) / len(later_seconds)


def timed_points(base: Costed, points: dict[str, np.ndarray]) -> tuple[Results, float]:
    """:func:`schedule_points`, and the CPU seconds it took where it ran: a sweep's sample, to estimate the rest."""
    start = time.process_time()
    results = schedule_points(base, points)
    return results, time.process_time() - start


def timed_each(base: Costed, points: dict[str, np.ndarray]) -> list[tuple[Results, float]]:
    """:func:`timed_points` of each point in turn, where it runs (a worker): a capacity's first point plans, the
    others share its plans."""
    n = len(next(iter(points.values())))
    return [timed_points(base, _take(points, [i])) for i in range(n)]


def _chunks(indices: list[int], planned: np.ndarray | None, size: int, workers: int) -> list[list[int]]:
    """``indices`` in tasks of about ``size`` points, those of one ``planned`` value (a capacity) together:
    a worker plans each capacity it is sent once (:func:`schedule_points` shares plans), so a group cut
    over two workers is planned twice. Groups stay whole when there are enough of them to keep ``workers``
    busy (two per worker), small ones sharing a task, but for the last ones that would not share out evenly,
    cut in one piece a worker; with fewer groups, they are cut in tasks of ``size``."""
    if planned is None:
        return [indices[i : i + size] for i in range(0, len(indices), size)]
    groups = _groups(indices, planned)
    whole = len(groups) >= 2 * workers
    # whole groups that do not share out evenly leave workers idle at the end: the last (groups mod workers) are
    # cut, one piece a worker, where larger than a task (a plan more each, against a group's time on one worker
    # while the others wait)
    uneven = len(groups) % workers if whole else 0
    chunks: list[list[int]] = []
    for k, group in enumerate(groups):
        if k >= len(groups) - uneven and len(group) > size:
            piece = -(-len(group) // workers)
            chunks += [group[i : i + piece] for i in range(0, len(group), piece)]
        elif not whole and len(group) > size:
            chunks += [group[i : i + size] for i in range(0, len(group), size)]
        elif chunks and len(chunks[-1]) + len(group) <= size:
            chunks[-1] += group
        else:
            chunks.append(group)
    return chunks


def _take(points: dict[str, np.ndarray], indices: list[int]) -> dict[str, np.ndarray]:
    at = np.array(indices)
    return {field: values[at] for field, values in points.items()}


def resumed_points(axes: Sequence[Axis], rows: Iterable[Sequence[str]]) -> dict[int, tuple[dict[str, float], str]]:
    """The rows of a sweep's file read back (each its text cells, in :func:`columns` order), by grid index:
    their metrics and note; the first of two rows for one point. Raises ValueError at a row that is not a
    point of this grid."""
    positions = [{value: i for i, value in enumerate(axis.values)} for axis in axes]
    found: dict[int, tuple[dict[str, float], str]] = {}
    for cells in rows:
        if len(cells) != len(axes) + len(METRICS) + 1:
            raise ValueError(f"{len(cells)} cells, not {len(axes) + len(METRICS) + 1}")
        index = 0
        for axis, position, cell in zip(axes, positions, cells):
            value = float(cell)
            if value not in position:
                raise ValueError(f"{axis.field} = {cell} is not a value of this sweep")
            index = index * len(axis.values) + position[value]
        metrics = dict(zip(METRICS, (float(cell) if cell else math.nan for cell in cells[len(axes) : -1])))
        found.setdefault(index, (metrics, cells[-1]))
    return found


def whole_if_integral(values: np.ndarray) -> np.ndarray:
    """Whole numbers as integers, so the CSV says ``2000000000``, as the user wrote it, not ``2000000000.0``."""
    integral = np.all(values == np.round(values)) and np.all(np.abs(values) < 2.0**53)
    return values.astype(np.int64) if integral else values


def describe_point(axes: Sequence[Axis], row: pd.Series) -> str:
    """``memory.internal.capacity = 1 MB, memory.external.bandwidth = 2 GB/s`` for one row."""
    return ", ".join(f"{a.field} = {a.human(row[a.column])}" for a in axes)


def lower_bounds(base: Costed, points: dict[str, np.ndarray]) -> np.ndarray:
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


def efficiencies(bound: np.ndarray, total: np.ndarray) -> np.ndarray:
    """bound / total as in :meth:`Estimate.summary` (1 when nothing takes time), NaN where infeasible."""
    efficiency = np.full(len(total), np.nan)
    feasible = ~np.isnan(total)
    efficiency[feasible] = 1.0
    timed = feasible.copy()
    timed[feasible] = total[feasible] > 0
    efficiency[timed] = bound[timed] / total[timed]
    return efficiency


_PLANS: dict[int, Plans] = {}
"""Per sweep (its costed graph, by identity, while it lives), the plans its points share."""


def _plans_of(base: Costed) -> Plans:
    """Where a sweep's plans are kept, for as long as its costed graph lives: a worker receives that once and
    schedules chunk after chunk of points, and a capacity's points span several chunks."""
    key = id(base)
    if key not in _PLANS:
        _PLANS[key] = Plans()
        weakref.finalize(base, _PLANS.pop, key, None)
    return _PLANS[key]


def schedule_points(base: Costed, points: dict[str, np.ndarray]) -> Results:
    """:func:`estimate` itself at every point, :data:`POINT_KEYS` of its summary: slower than the paper policy's
    fast path, but right for any policy. NaN and a note where none fits. A worker's task.

    Re-costing the graph per point costs a millisecond against the scheduling's tens, and keeps every check
    :func:`estimate` makes (capacity of both memories) in one place.

    The garbage collector stays paused over the points, as a policy pauses it while it schedules: a point's
    schedule, tens of thousands of objects in no cycle, is freed by reference counting when the point is done,
    but with the collector back on between its scheduling and its summary, it was scanned on its way out (about
    14 ms of a HairNet point's 90 with the plans of a capacity kept); the few cycles a chunk leaves wait for the
    collector's next pass.
    """
    n = len(next(iter(points.values())))
    metrics = {m: np.full(n, np.nan) for m in POINT_KEYS}
    notes = [""] * n
    # points that differ only in fields no plan reads (bandwidth, ...) share plans
    with plans_shared(_plans_of(base)), collector_paused():
        for i in range(n):
            hw = variant(base.hardware, {field: float(values[i]) for field, values in points.items()})
            try:
                run = estimate(
                    base.graph, hw, base.policy, base.counting, base.batch, base.precision, map_zeros=base.map_zeros
                )
                summary = run.summary(bounds=False)  # the sweep bounds every point at once (lower_bounds)
            except InputError as refusal:  # the options were checked once: this is the point's hardware
                notes[i] = str(refusal)
            else:
                for metric, key in POINT_KEYS.items():
                    metrics[metric][i] = summary[key]
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
