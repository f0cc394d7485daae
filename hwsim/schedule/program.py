"""A schedule as a program: events in program order, grouped into steps, then timed and summarised.

Every policy writes its decisions as records through a :class:`Program`, which keeps the resident
byte count (so a policy can ask what still fits). Identical work repeated row after row (or chunk
after chunk) is written once, as a :class:`Loop` with a count and the rows (or channels) each
iteration moves every tensor along: a program grows with layers and tiles, not with rows.

:func:`finish` then times the program, either serially (each event after the previous one: the
paper's timing) or overlapped (the bus and every compute unit are separate resources; an event
waits only for what it depends on), and turns it into the report's steps. Overlap never lets memory
run ahead of capacity: events that take space (LOAD, ALLOC) start in program order, and one waits
until enough of the FREEs before it have happened that the bytes still pending release fit beside
the program's resident bytes at that point.

A loop is timed iteration by iteration until its iterations repeat (every event starts one period
after the same event of the iteration before, for two iterations running, and the simulation's
state has moved by that period too); the rest then follow by the period without being simulated.
The iterations before that are reported one by one, the rest as one repeated block
(:class:`hwsim.schedule.base.Repeat`). Timing the compact program gives what timing the unrolled
one gives (a property test checks it).

A policy times several candidate programs of one plan at each hardware, and one may begin as another
(a plan with later segments' weights loaded early begins as the plan without them): overlapped timing
resumes from the clock the earlier candidate's timing kept where their items part
(:meth:`Program.shared_prefix`), which gives the times simulating the common items again would give,
to the last bit (a property test checks it).
"""

from __future__ import annotations

import copy
import heapq
import math
import weakref
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple, overload

from hwsim.cost.coding import link_bytes
from hwsim.cost.cycles import layer_rate
from hwsim.cost.inference import LayerCost
from hwsim.model.graph import INPUT
from hwsim.model.regions import input_regions, input_rows
from hwsim.schedule.base import (
    COMPUTE,
    FREE,
    LOAD,
    STORE,
    Action,
    Direction,
    Event,
    Location,
    Region,
    Repeat,
    Span,
    Step,
    TensorId,
    Transfer,
    map_of,
    shifted,
    weights_of,
)
from hwsim.schedule.slices import by_input, column, passable, rows_of
from hwsim.spec.hardware import HardwareSpec

BUS = "bus"
"""The resource every LOAD and STORE uses: the external memory bus."""


@dataclass(frozen=True)
class StepPlan:
    """What the report says about one step besides its times: the layers and why tensors are where they are."""

    group: tuple[LayerCost, ...]
    inputs_at: tuple[Location, ...]
    output_at: Location
    note: str = ""
    tile_rows: int = 0
    chunk_channels: int = 0
    segment: int = -1
    """Steps of one segment run interleaved; they share its wall time (-1: a segment of its own)."""
    folded: tuple[str, ...] = ()
    """Layers folded away into this step's layers (batch norm into its conv)."""


def step_name(names: tuple[str, ...]) -> str:
    """``stage1.block1.dw_bn+dw_relu``: the first layer's full name, then the others' last parts."""
    return "+".join((names[0], *(n.rsplit(".", 1)[-1] for n in names[1:])))


class Record(NamedTuple):
    """An event before it is timed."""

    step: int
    action: Action
    region: Region
    bytes: int
    layer: str = ""
    reads: tuple[Region, ...] = ()
    unit: str = ""
    ops: float = 0.0
    part: Region | None = None
    wire: int = 0
    """A load's or store's bytes over the external link: ``bytes`` unless the link codes the map."""


@dataclass
class Loop:
    """Records repeated ``count`` times; iteration k moves every region of tensor t by k times its shifts."""

    rows: dict[TensorId, int]
    channels: dict[TensorId, int]
    body: list[Record | Loop] = field(default_factory=list)
    count: int = 1
    size: int = 0
    """Records per iteration, unrolled."""
    _timed_iterations: dict[int, list[Record | Loop]] = field(default_factory=dict, compare=False, repr=False)
    """The iterations timing has asked for, kept: a sweep times a shared program at every point."""
    _tensors: frozenset[TensorId] | None = field(default=None, compare=False, repr=False)

    @property
    def tensors(self) -> frozenset[TensorId]:
        """Every tensor its records write, read or free (the same in every iteration: a shift moves regions within
        their tensor). Timing compares a loop's iterations on these alone: no other tensor's last use can move."""
        if self._tensors is None:
            found: set[TensorId] = set()
            for item in self.body:
                if isinstance(item, Loop):
                    found |= item.tensors
                else:
                    found.add(item.region.tensor)
                    found.update(r.tensor for r in item.reads)
            self._tensors = frozenset(found)
        return self._tensors

    def shift(self, region: Region, k: int) -> Region:
        return shifted(region, self.rows, self.channels, k)

    def iteration(self, k: int) -> list[Record | Loop]:
        """The body as iteration ``k`` runs it."""
        if not k:
            return self.body
        return [_shifted(self, item, k) for item in self.body]

    def timed_iteration(self, k: int) -> list[Record | Loop]:
        """:meth:`iteration`, kept for the next timing. Timing simulates a loop's iterations only until they
        repeat, a few each, so what is kept stays small; :func:`unrolled_records` walks them all, uncached."""
        found = self._timed_iterations.get(k)
        if found is None:
            found = self._timed_iterations[k] = self.iteration(k)
        return found


def _shifted(loop: Loop, item: Record | Loop, k: int) -> Record | Loop:
    if isinstance(item, Loop):
        return Loop(item.rows, item.channels, [_shifted(loop, x, k) for x in item.body], item.count, item.size)
    # built field by field: ``_replace`` goes through keyword arguments and a dict, for every record of
    # every iteration timed
    step, action, region, size, layer, reads, unit, ops, part, wire = item
    shift = loop.shift
    return Record(
        step,
        action,
        shift(region, k),
        size,
        layer,
        tuple([shift(r, k) for r in reads]),
        unit,
        ops,
        shift(part, k) if part is not None else None,
        wire,
    )


def unrolled_records(items: list[Record | Loop]) -> Iterator[Record]:
    """Every record ``items`` stand for, in program order."""
    for item in items:
        if isinstance(item, Loop):
            for k in range(item.count):
                yield from unrolled_records(item.iteration(k))
        else:
            yield item


def _bus_work(items: list[Record | Loop]) -> tuple[int, int]:
    """The bytes the loads and stores among ``items`` move, and how many they are, loops unrolled."""
    size = transfers = 0
    for item in items:
        if isinstance(item, Loop):
            body_size, body_transfers = _bus_work(item.body)
            size += body_size * item.count
            transfers += body_transfers * item.count
        elif item.action is LOAD or item.action is STORE:
            size += item.wire
            transfers += 1
    return size, transfers


class Program:
    """Collects records step by step, loops among them, and tracks resident internal bytes in program order."""

    def __init__(self, costs: tuple[LayerCost, ...]) -> None:
        self.costs = {c.name: c for c in costs}
        self.cell_bytes: dict[TensorId, int] = {}
        self._full: dict[TensorId, Region] = {}
        for c in costs:
            h, _, ch = c.layer.output_shape
            self.cell_bytes[map_of(c.name)] = c.output_bytes // (h * ch)
            self._full[map_of(c.name)] = Region(map_of(c.name), (0, h), (0, ch))
            if c.weight_bytes:
                self.cell_bytes[weights_of(c.name)] = c.weight_bytes // ch
                self._full[weights_of(c.name)] = Region(weights_of(c.name), (0, 1), (0, ch))
            if passable(c):
                layout = column(c)
                self.cell_bytes[by_input(c.name)] = layout.unit
                self._full[by_input(c.name)] = Region(by_input(c.name), (0, layout.height), (0, ch))
            for name, shape, size in zip(c.layer.inputs, c.layer.input_shapes, c.input_bytes):
                if name == INPUT:
                    self.cell_bytes[map_of(INPUT)] = size // (shape[0] * shape[2])
                    self._full[map_of(INPUT)] = Region(map_of(INPUT), (0, shape[0]), (0, shape[2]))
        self.link = link_ratios(costs)
        """Per map the link codes: its bytes over the link per byte on chip."""
        self.kept = frozenset(weights_of(c.name) for c in costs if c.weights_resident)
        """Weights on chip before the run starts and after it ends (steady state): never loaded nor freed,
        and outside the capacity the policy schedules in (:mod:`hwsim.cost.steady`)."""
        self._family: list[weakref.ref[Program]] = []
        """The programs written as :meth:`scratch` copies of this one (recording), in order: a planner's candidates,
        which may begin alike (:meth:`shared_prefix`). Weak: each holds the list, and a program no cycle holds is
        freed as soon as its plan is."""
        self._empty(recording=True)

    def _empty(self, recording: bool) -> None:
        self.recording = recording
        """Whether records are kept (a program only counted keeps none, and the same accounting)."""
        self.plans: list[StepPlan] = []
        self.items: list[Record | Loop] = []
        self._open: list[_Open] = []
        self.peaks: list[int] = []
        self.peak = 0
        """The most bytes resident at once so far."""
        self.resident = 0
        self.moved = 0
        """Bytes loaded and stored so far, over the link (a map the link codes at its coded size; in a program
        only counted, :meth:`tally` without ``wire``, at its size on chip): the bus is busy at least this long
        over the bandwidth."""
        self._bus_after: tuple[list[int], list[int]] | None = None
        self._prefix: tuple[Program, int] | None = None
        self._marks: set[int] = set()
        """Where timing keeps its clock (:class:`_Saved`): the lengths of the prefixes later candidates share."""
        self._saved: dict[int, _Saved] = {}

    def bus_after(self) -> tuple[list[int], list[int]]:
        """Per top-level item (and past the last): the bytes the loads and stores from there on move, and how many
        they are, loops unrolled. The bus carries them one after another, so whatever the bandwidth, a program
        cannot end before its bus is free plus their time (:func:`timing` with a ``limit``). Counted once: a
        sweep times a shared program at every point."""
        if self._bus_after is None or len(self._bus_after[0]) != len(self.items) + 1:
            moved, count = [0] * (len(self.items) + 1), [0] * (len(self.items) + 1)
            for i in range(len(self.items) - 1, -1, -1):
                size, transfers = _bus_work([self.items[i]])
                moved[i], count[i] = moved[i + 1] + size, count[i + 1] + transfers
            self._bus_after = moved, count
        return self._bus_after

    def scratch(self, recording: bool = False) -> Program:
        """An empty program over the same layers, to write records into and count them (kept if ``recording``)."""
        other = Program.__new__(Program)
        other.costs, other.cell_bytes, other._full, other.kept = self.costs, self.cell_bytes, self._full, self.kept
        other.link = self.link
        other._family = self._family
        other._empty(recording)
        if recording:
            self._family.append(weakref.ref(other))
        return other

    def shared_prefix(self) -> tuple[Program, int] | None:
        """The earlier-written program of the same planner whose first items are this one's, the longest such
        prefix, and how many items it has (None: none begins alike). A policy times its candidates in the order it
        wrote them, at one hardware: this one's timing can resume where that one's passed the end of the prefix
        (a plan with later segments' weights loaded early begins as the plan without them). Found once: a sweep
        times the same candidates at every point."""
        if self._prefix is None and self.recording:
            best: tuple[Program, int] = (self, 0)
            for ref in self._family:
                other = ref()
                if other is self:
                    break
                if other is None:
                    continue
                alike = 0
                for mine, theirs in zip(self.items, other.items):
                    if mine != theirs:
                        break
                    alike += 1
                if alike > best[1]:
                    best = other, alike
            self._prefix = best
            if best[1]:
                best[0]._marks.add(best[1])
        return self._prefix if self._prefix is not None and self._prefix[1] else None

    def begin(self, plan: StepPlan) -> int:
        """Start a step; the records added with its index belong to it."""
        self.plans.append(plan)
        self.peaks.append(self.resident)
        return len(self.plans) - 1

    def bytes(self, region: Region) -> int:
        rows, chans = region.rows, region.channels
        return (rows[1] - rows[0]) * (chans[1] - chans[0]) * self.cell_bytes[region.tensor]

    def full(self, tensor: TensorId) -> Region:
        """All of a map (or all of a layer's weights)."""
        return self._full[tensor]

    def size(self, tensor: TensorId) -> int:
        return self.bytes(self._full[tensor])

    def _count(self, step: int) -> None:
        """A record of ``step`` was written with the program at its current resident bytes."""
        resident = self.resident
        if resident > self.peaks[step]:  # any record: steps of a segment interleave
            self.peaks[step] = resident
            if resident > self.peak:
                self.peak = resident
        if self._open:
            current = self._open[-1]
            current.records += 1
            if resident > current.busiest.get(step, -math.inf):
                current.busiest[step] = resident

    def _keep(self, record: Record | Loop) -> None:
        (self._open[-1].loop.body if self._open else self.items).append(record)

    def add(self, step: int, action: Action, region: Region, size: int) -> None:
        """Any record but a compute, when ``size`` (the region's bytes) is not 0: RESIDENT, LOAD and
        ALLOC take the space, FREE releases it, LOAD and STORE move the bytes. Weights kept on chip across
        images (steady state) are neither loaded nor freed."""
        if size and not (self.kept and (action is LOAD or action is FREE) and region.tensor in self.kept):
            wire = size
            if self.link and (action is LOAD or action is STORE):
                wire = link_bytes(size, self.link.get(region.tensor, 1.0))
            self.tally(step, action, size, wire)
            if self.recording:
                self._keep(Record(step, action, region, size, "", (), "", 0.0, None, wire))

    def tally(self, step: int, action: Action, size: int, wire: int | None = None) -> None:
        """What a record of ``size`` bytes (``wire`` of them over the link, if coded) does to the counts (for a
        program that keeps no records, without the region: what :meth:`add` counts)."""
        if action is FREE:
            self.resident -= size
            if self.resident <= self.peaks[step] and not self._open:
                return  # what _count would do: a free raises no step's peak, and counts in no loop
        else:
            if action is LOAD or action is STORE:
                self.moved += size if wire is None else wire
            if action is not STORE:
                self.resident += size
        self._count(step)

    def occupy(self, step: int, action: Action, region: Region) -> None:
        """RESIDENT, LOAD or ALLOC: the region takes internal space."""
        self.add(step, action, region, self.bytes(region))

    def store(self, step: int, region: Region) -> None:
        self.add(step, STORE, region, self.bytes(region))

    def free(self, step: int, region: Region) -> None:
        self.add(step, FREE, region, self.bytes(region))

    def compute(
        self,
        step: int,
        cost: LayerCost,
        rows: Span,
        channels: Span,
        reads: tuple[Region, ...] | None = None,
        part: Region | None = None,
    ) -> None:
        """Compute ``rows`` x ``channels`` of ``cost``'s output, reading what its receptive field needs
        (:func:`compute_reads`; ``reads`` when the caller has them already). ``part``: of a layer that
        accumulates its input, the input rows this compute adds (its share of the ops is theirs)."""
        if rows[1] <= rows[0] or channels[1] <= channels[0]:
            return
        self._count(step)
        if not self.recording:
            return
        layer = cost.layer
        h, _, ch = layer.output_shape
        if part is not None:
            reads = (part, *compute_reads(cost, rows, channels)[len(layer.inputs) :])
            share = (part.rows[1] - part.rows[0]) * (channels[1] - channels[0]) / (layer.input_shape[0] * ch)
        else:
            if reads is None:
                reads = compute_reads(cost, rows, channels)
            share = (rows[1] - rows[0]) * (channels[1] - channels[0]) / (h * ch)
        region = Region(map_of(layer.name), rows, channels)
        self._keep(Record(step, COMPUTE, region, 0, layer.name, reads, cost.unit, cost.ops * share, part))

    def compute_pass(self, step: int, cost: LayerCost, rows: Span, channels: Span, inputs: Span, first: bool) -> None:
        """One pass of ``rows`` x ``channels`` of a :func:`hwsim.schedule.slices.passable` layer's output over its
        input channels ``inputs``: it reads their receptive field and their weights (by input channel), and,
        after the ``first`` pass, the partial sums it adds to (the output region itself). ``part`` names the
        input channels added, whose share of the layer's ops the pass costs."""
        if rows[1] <= rows[0] or channels[1] <= channels[0] or inputs[1] <= inputs[0]:
            return
        self._count(step)
        if not self.recording:
            return
        layer = cost.layer
        h, _, ch = layer.output_shape
        part = Region(map_of(layer.inputs[0]), input_rows(layer, rows)[0], inputs)
        region = Region(map_of(layer.name), rows, channels)
        reads = (part, Region(by_input(layer.name), rows_of(cost, inputs), channels), *(() if first else (region,)))
        cells = (rows[1] - rows[0]) * (channels[1] - channels[0]) * (inputs[1] - inputs[0])
        share = cells / (h * ch * layer.input_shape[2])
        self._keep(Record(step, COMPUTE, region, 0, layer.name, reads, cost.unit, cost.ops * share, part))

    @contextmanager
    def repeated(self, count: int, rows: dict[TensorId, int], channels: dict[TensorId, int]) -> Iterator[None]:
        """Records written inside run ``count`` times, iteration k with every region of tensor t moved by
        k times ``rows[t]`` rows and ``channels[t]`` channels. The caller writes the first iteration."""
        for around in self._open:  # each axis of a tensor moves in one loop only (see _latest)
            assert not set(rows) & {t for t, v in around.loop.rows.items() if v}
            assert not set(channels) & {t for t, v in around.loop.channels.items() if v}
        current = _Open(Loop(rows, channels, count=count), self.resident, self.moved)
        self._open.append(current)
        yield
        self._open.pop()
        loop = current.loop
        if not current.records:
            return
        loop.size = sum(item.size * item.count if isinstance(item, Loop) else 1 for item in loop.body)
        if self.recording:
            self._keep(loop)
        if self._open:
            self._open[-1].records += current.records * count
        growth = self.resident - current.resident
        self.resident += (count - 1) * growth
        self.moved += (count - 1) * (self.moved - current.moved)
        later = max(count - 1, 0) * growth if growth > 0 else 0  # the last iteration is the busiest
        for step, most in current.busiest.items():
            if most + later > self.peaks[step]:
                self.peaks[step] = most + later
                if most + later > self.peak:
                    self.peak = most + later
            if self._open and most + later > self._open[-1].busiest.get(step, -math.inf):
                self._open[-1].busiest[step] = most + later


@dataclass
class _Open:
    """A loop being written: the resident and moved bytes when it began, its records so far, and per step
    its busiest point in its first iteration."""

    loop: Loop
    resident: int
    moved: int
    records: int = 0
    busiest: dict[int, int] = field(default_factory=dict)


def compute_reads(cost: LayerCost, rows: Span, channels: Span) -> tuple[Region, ...]:
    """What computing ``rows`` x ``channels`` of ``cost``'s output reads: its receptive field in each input,
    and its weights."""
    layer = cost.layer
    reads = [
        Region(map_of(tensor), rc[0], rc[1])
        for tensor, rc in zip(layer.inputs, input_regions(layer, rows, channels))
        if rc is not None
    ]
    if cost.weight_bytes:
        reads.append(Region(weights_of(layer.name), (0, 1), channels))
    return tuple(reads)


# ---- timing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """How a timed loop repeats: its iterations after the first reported one."""

    count: int
    period_s: float
    seq_stride: int
    rows: dict[TensorId, int]
    channels: dict[TensorId, int]


class Timed(NamedTuple):
    """A record with its times and place in the unrolled program; ``periods`` (innermost first) when it
    stands for a repeated block's iterations."""

    record: Record
    seq: int
    start: float
    end: float
    periods: tuple[Period, ...] = ()


EPSILON = 64 * 2.0**-52
"""Relative rounding of a time: times are sums of many durations, so a difference of two of them carries
a few dozen roundings of the larger."""


def _same(a: float, b: float, scale: float) -> bool:
    """Two differences of times (at most ``scale`` seconds) equal but for rounding."""
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + EPSILON * scale


class _Clock:
    """The timing both simulations share: the unrolled position of each record, and how loops are reported."""

    def __init__(self, hardware: HardwareSpec, costs: dict[str, LayerCost]) -> None:
        external = hardware.memory.external
        self.bandwidth, self.setup = external.effective_bandwidth, external.setup
        self.units, self.costs = hardware.compute, costs
        self.dispatch = {name: unit.dispatch for name, unit in hardware.compute.items() if unit.dispatch}
        self.dispatched: set[int] = set()
        self.rates: dict[str, float] = {}
        self.seq = 0

    def duration(self, r: Record) -> float:
        """How long a record takes on its resource: a transfer its bytes over the attained bandwidth plus its
        setup; a compute its ops at the rate its unit attains on its layer (the peak, or the array's cycles:
        :func:`hwsim.cost.cycles.layer_rate`), the first compute of each step after its unit's dispatch time."""
        action = r.action
        if action is LOAD or action is STORE:
            return r.wire / self.bandwidth + self.setup
        if action is COMPUTE:
            rate = self.rates.get(r.layer)
            if rate is None:
                rate = self.rates[r.layer] = layer_rate(self.costs[r.layer], self.units[r.unit])
            if self.dispatch and r.step not in self.dispatched:
                self.dispatched.add(r.step)
                return r.ops / rate + self.dispatch.get(r.unit, 0.0)
            return r.ops / rate
        return 0.0

    def items(self, items: list[Record | Loop]) -> list[Timed]:
        timed: list[Timed] = []
        append, record, new = timed.append, self.record, tuple.__new__  # a sweep times every event of every point
        seq = self.seq
        for item in items:
            if type(item) is Loop:
                self.seq = seq
                timed += self.loop(item)
                seq = self.seq
            else:
                start, end = record(item)  # type: ignore[arg-type]
                append(new(Timed, (item, seq, start, end, ())))
                seq += 1
        self.seq = seq
        return timed

    def record(self, r: Record) -> tuple[float, float]:
        raise NotImplementedError

    def loop(self, loop: Loop) -> list[Timed]:
        raise NotImplementedError


class _Serial(_Clock):
    """Every event starts as the one before ends (the paper's timing): a loop's iterations all last as long."""

    def __init__(self, hardware: HardwareSpec, costs: dict[str, LayerCost]) -> None:
        super().__init__(hardware, costs)
        self.clock = 0.0

    def record(self, r: Record) -> tuple[float, float]:
        start = self.clock
        self.clock += self.duration(r)
        return start, self.clock

    def loop(self, loop: Loop) -> list[Timed]:
        """The first iteration (which may pay its steps' dispatch), then the second, whose duration every
        later one repeats."""
        start = self.clock
        first = self.items(loop.body)
        if loop.count == 1:
            return first
        middle = self.clock
        second = self.items(loop.timed_iteration(1))
        period = self.clock - middle
        self.clock += (loop.count - 2) * period
        self.seq += (loop.count - 2) * loop.size
        if _same(period, middle - start, self.clock):
            repeat = Period(loop.count, period, loop.size, loop.rows, loop.channels)
            return [t._replace(periods=(*t.periods, repeat)) for t in first]
        repeat = Period(loop.count - 1, period, loop.size, loop.rows, loop.channels)
        return first + [t._replace(periods=(*t.periods, repeat)) for t in second]


class _Written(NamedTuple):
    """A region allocated, loaded or computed, when that ends; ``periods`` when it stands for repeated writes."""

    region: Region
    end: float
    periods: tuple[Period, ...] = ()


def _latest(w: _Written, region: Region) -> float | None:
    """When the latest of the writes ``w`` stands for that overlaps ``region`` ends (None: none overlaps).

    Each period moves a tensor along one axis (rows for row steps and bands, channels for weight
    chunks) and no two move the same axis, so the iterations that overlap form a box and the latest
    of them is each period's latest on its own axis."""
    _, (r0, r1), (c0, c1) = region
    _, (lo, hi), (clo, chi) = w.region
    t = region.tensor
    end = w.end
    for p in w.periods:
        dr, dc = p.rows.get(t, 0), p.channels.get(t, 0)
        if dr:
            k = _last_overlap(lo, hi, r0, r1, dr, p.count)
            if k is None:
                return None
            lo, hi = lo + k * dr, hi + k * dr
        elif dc:
            k = _last_overlap(clo, chi, c0, c1, dc, p.count)
            if k is None:
                return None
            clo, chi = clo + k * dc, chi + k * dc
        else:
            k = p.count - 1
        end += k * p.period_s
    return end if lo < r1 and r0 < hi and clo < c1 and c0 < chi else None


def _last_overlap(lo: int, hi: int, r0: int, r1: int, d: int, count: int) -> int | None:
    """The largest k < count with [lo + k d, hi + k d) overlapping [r0, r1) (d > 0), or None."""
    k_max = min(-((lo - r1) // d) - 1, count - 1)  # lo + k d < r1
    k_min = max((r0 - hi) // d + 1, 0)  # r0 < hi + k d
    return k_max if k_max >= k_min else None


class _State(NamedTuple):
    """What one iteration of a loop changes in the overlapped simulation, to tell whether iterations repeat:
    when the bus, the space-taking events and each unit are next free, the latest use of each tensor the loop
    touches, the resident bytes and the pending frees."""

    bus: float
    taken: float
    units: dict[str, float]
    uses: dict[TensorId, float]
    resident: int
    pending: list[tuple[float, int]]


def _changed(before: dict[TensorId, float], after: dict[TensorId, float]) -> set[TensorId]:
    """The tensors whose latest use ``after`` holds and ``before`` does not (another time, or none). A program has
    a use time per tensor and an iteration moves a few: compared as sets, not one by one."""
    return {t for t, _ in after.items() - before.items()}


class _Overlapped(_Clock):
    """The bus and each compute unit run concurrently (see the module docstring for the rules)."""

    def __init__(self, hardware: HardwareSpec, costs: dict[str, LayerCost]) -> None:
        super().__init__(hardware, costs)
        self.capacity = hardware.memory.internal.capacity
        self.bus = 0.0  # when the bus is next idle
        self.unit_free: dict[str, float] = defaultdict(float)  # per compute unit: when it is next idle
        self.written: dict[TensorId, list[_Written]] = defaultdict(list)
        self.last_use: dict[TensorId, float] = defaultdict(float)  # per tensor: when its latest use ends
        self.pending: list[tuple[float, int]] = []  # frees so far in program order, as a heap of (when, bytes)
        self.pending_bytes = 0  # of those, bytes not yet freed at time ``taken``
        self.taken = 0.0  # when the latest space-taking event started: they start in program order
        self.resident = 0  # in program order
        self.logs: list[list[tuple[TensorId, _Written]]] = []
        """Per loop iteration being simulated: what it wrote, to repeat it when the rest is extrapolated."""
        self.slack = math.inf
        """The least room left beside the bytes still pending release, over the space-taking events of the
        loop iteration being simulated (math.inf: none yet); -1 once one had to wait for a free."""

    @property
    def horizon(self) -> float:
        """The latest time the simulation has reached: the scale of the rounding in its times."""
        return max(self.bus, self.taken, *self.unit_free.values())

    def ready(self, region: Region) -> float:
        """When the latest allocation, load or compute of cells overlapping ``region`` ends (written in order)."""
        _, (r0, r1), (c0, c1) = region
        for w in reversed(self.written[region[0]]):
            if w.periods:
                when = _latest(w, region)
                if when is not None:
                    return when
                continue
            _, rows, chans = w.region
            if rows[0] < r1 and r0 < rows[1] and chans[0] < c1 and c0 < chans[1]:
                return w.end
        return 0.0

    def items(self, items: list[Record | Loop]) -> list[Timed]:
        """Every item's times, in program order. The simulation's hot loop (a sweep runs it for every event of
        every point): the state each record moves is held in locals, written back around a loop, which reads it."""
        timed: list[Timed] = []
        append, new, pop, push = timed.append, tuple.__new__, heapq.heappop, heapq.heappush
        unit_free, last_use, written, ready, duration_of = (
            self.unit_free,
            self.last_use,
            self.written,
            self.ready,
            self.duration,
        )
        bandwidth, setup, capacity, logs = self.bandwidth, self.setup, self.capacity, self.logs
        rates, dispatch, dispatched = self.rates, self.dispatch, self.dispatched
        bus, taken, resident, pending, pending_bytes, slack, seq = self._moving()
        for r in items:
            if type(r) is Loop:
                self._moved(bus, taken, resident, pending_bytes, slack, seq)
                timed += self.loop(r)
                bus, taken, resident, pending, pending_bytes, slack, seq = self._moving()
                continue
            action, region = r.action, r.region  # type: ignore[union-attr]
            t = region[0]
            if action is COMPUTE:
                rate = rates.get(r.layer)  # type: ignore[union-attr]
                if rate is None or dispatch and r.step not in dispatched:  # type: ignore[union-attr]
                    duration = duration_of(r)  # type: ignore[arg-type]
                else:  # what duration_of gives, without the call: a sweep times every compute of every point
                    duration = r.ops / rate  # type: ignore[union-attr]
                unit = r.unit  # type: ignore[union-attr]
                start = unit_free[unit]
                when = ready(region)
                if when > start:
                    start = when
                for read in r.reads:  # type: ignore[union-attr]
                    when = ready(read)
                    if when > start:
                        start = when
                end = unit_free[unit] = start + duration
                for read in r.reads:  # type: ignore[union-attr]
                    if end > last_use[read[0]]:
                        last_use[read[0]] = end
                w = new(_Written, (region, end, ()))
                written[t].append(w)
                if logs:
                    logs[-1].append((t, w))
            elif action is FREE:
                start = last_use[t]
                end = start + 0.0
                resident -= r.bytes  # type: ignore[union-attr]
                push(pending, (end, r.bytes))  # type: ignore[union-attr]
                pending_bytes += r.bytes  # type: ignore[union-attr]
            elif action is STORE:
                start = ready(region)
                if bus > start:
                    start = bus
                end = bus = start + (r.wire / bandwidth + setup)  # type: ignore[union-attr]
            else:  # LOAD, ALLOC, RESIDENT: they take space
                resident += r.bytes  # type: ignore[union-attr]
                start = taken if action is not LOAD or taken >= bus else bus
                # frees before it in program order that have happened by then
                while pending and pending[0][0] <= start:
                    pending_bytes -= pop(pending)[1]
                # then wait until enough others have happened: the space resident at any instant is then at
                # most what the program's order allows (capacity)
                room = capacity - resident
                if pending_bytes > room:
                    slack = -1.0  # waited: a loop whose resident bytes change no longer repeats
                    while pending and pending_bytes > room:
                        when, freed = pop(pending)
                        if when > start:
                            start = when
                        pending_bytes -= freed
                    while pending and pending[0][0] <= start:
                        pending_bytes -= pop(pending)[1]
                elif room - pending_bytes < slack:
                    slack = room - pending_bytes
                taken = start
                if action is LOAD:
                    end = bus = start + (r.wire / bandwidth + setup)  # type: ignore[union-attr]
                else:
                    end = start + 0.0
                w = new(_Written, (region, end, ()))
                written[t].append(w)
                if logs:
                    logs[-1].append((t, w))
            if end > last_use[t]:
                last_use[t] = end
            append(new(Timed, (r, seq, start, end, ())))
            seq += 1
        self._moved(bus, taken, resident, pending_bytes, slack, seq)
        return timed

    def _moving(self) -> tuple[float, float, int, list[tuple[float, int]], int, float, int]:
        """The state every record moves, for :meth:`items` to hold in locals (``pending`` is changed in place)."""
        return self.bus, self.taken, self.resident, self.pending, self.pending_bytes, self.slack, self.seq

    def _moved(self, bus: float, taken: float, resident: int, pending_bytes: int, slack: float, seq: int) -> None:
        """Write :meth:`items`'s locals back, where a loop reads them or the items end."""
        self.bus, self.taken, self.resident, self.pending_bytes, self.slack, self.seq = (
            bus,
            taken,
            resident,
            pending_bytes,
            slack,
            seq,
        )

    def copy(self) -> _Overlapped:
        """This clock as it stands, apart: timing one copy further leaves the other where it was."""
        other = copy.copy(self)
        other.dispatched, other.rates = set(self.dispatched), dict(self.rates)
        other.unit_free, other.last_use = defaultdict(float, self.unit_free), defaultdict(float, self.last_use)
        other.written = defaultdict(list, {t: list(w) for t, w in self.written.items()})
        other.pending, other.logs = list(self.pending), []
        return other

    def _state(self, tensors: frozenset[TensorId]) -> _State:
        """The state as a loop over ``tensors`` (:attr:`Loop.tensors`) can move it: the last uses of those alone."""
        last_use = self.last_use
        uses = {t: last_use[t] for t in tensors if t in last_use}
        return _State(self.bus, self.taken, dict(self.unit_free), uses, self.resident, sorted(self.pending))

    def loop(self, loop: Loop) -> list[Timed]:
        """Simulate iterations until two in a row repeat the one before by the same period (events, state),
        then extrapolate the rest; report the iterations before the repeating ones one by one."""
        iterations: list[list[Timed]] = []
        tensors = loop.tensors
        states = [self._state(tensors)]
        periods: list[float | None] = []  # periods[j]: by how much iteration j + 1 repeats iteration j
        n = loop.count
        for k in range(n):
            self.logs.append([])
            outer_slack, self.slack = self.slack, math.inf
            iterations.append(self.items(loop.timed_iteration(k)))
            log = self.logs.pop()
            slack = self.slack
            self.slack = min(outer_slack, slack)
            if self.logs:
                self.logs[-1].extend(log)
            states.append(self._state(tensors))
            if k:
                periods.append(
                    _period(iterations[-2], iterations[-1], states[-3], states[-2], states[-1], self.horizon)
                )
            if (
                k < n - 1
                and len(periods) >= 2
                and periods[-1] is not None
                and periods[-2] is not None
                and _same(periods[-1], periods[-2], self.horizon)
                and self._extrapolate(loop, k, periods[-1], states[-2], states[-1], log, slack)
            ):
                break
        first = len(iterations) - 1  # the first of the iterations that repeat the one before by the same period
        while (
            first > 0 and periods[first - 1] is not None and _same(periods[first - 1], periods[-1], self.horizon)  # type: ignore[arg-type]
        ):
            first -= 1
        explicit = [t for timed in iterations[:first] for t in timed]
        if first == n - 1:
            return explicit + iterations[first]
        repeat = Period(n - first, periods[-1], loop.size, loop.rows, loop.channels)  # type: ignore[arg-type]
        return explicit + [t._replace(periods=(*t.periods, repeat)) for t in iterations[first]]

    def _extrapolate(
        self,
        loop: Loop,
        k: int,
        period: float,
        before: _State,
        after: _State,
        log: list[tuple[TensorId, _Written]],
        slack: float,
    ) -> bool:
        """Move the simulation past iterations k+1 .. count-1, which repeat iteration k by ``period``:
        every scalar the iteration moved moves by the rest of the periods, and what it wrote is written
        again, as a repeated write. False (nothing changed) when the rest might not repeat: the resident
        bytes grow (or shrink) and an iteration had to wait for a free, or would have to."""
        rest = loop.count - 1 - k
        growth = after.resident - before.resident
        if growth and slack < 0 or growth > 0 and slack < rest * growth:
            return False
        if growth > 0:
            self.slack = min(self.slack, slack - rest * growth)
        shift = rest * period
        if not _same(after.bus - before.bus, 0.0, self.horizon):
            self.bus += shift
        if not _same(after.taken - before.taken, 0.0, self.horizon):
            self.taken += shift
        for unit, value in after.units.items():
            if not _same(value - before.units.get(unit, 0.0), 0.0, self.horizon):
                self.unit_free[unit] += shift
        horizon = self.horizon  # a tensor's last use is no resource's: moving it moves no horizon
        for t in _changed(before.uses, after.uses):  # the others moved by 0
            if not _same(after.uses[t] - before.uses.get(t, 0.0), 0.0, horizon):
                self.last_use[t] += shift
        self.resident += rest * growth
        self.pending = [(when + shift, size) for when, size in self.pending]
        heapq.heapify(self.pending)
        repeat = Period(rest, period, loop.size, loop.rows, loop.channels)
        for t, w in log:
            later = _Written(loop.shift(w.region, 1), w.end + period, (*w.periods, repeat))
            self.written[t].append(later)
            if self.logs:
                self.logs[-1].append((t, later))
        self.seq += rest * loop.size
        return True


def _period(
    previous: list[Timed], timed: list[Timed], s0: _State, s1: _State, s2: _State, scale: float
) -> float | None:
    """The period by which ``timed`` repeats ``previous`` (every event, and every scalar of the state it
    moved, moved by it; the pending frees too), or None if it does not."""
    if len(previous) != len(timed) or not timed:
        return None
    period = timed[0].start - previous[0].start
    if period < 0:
        return None
    # _same(a, b, scale) written out: a sweep checks every event of every iteration it times
    rounding, relative = EPSILON * scale, 1e-9
    for a, b in zip(previous, timed):
        moved = b[2] - a[2]
        if not abs(moved - period) <= relative * max(abs(moved), abs(period)) + rounding:
            return None
        moved = b[3] - a[3]
        if not abs(moved - period) <= relative * max(abs(moved), abs(period)) + rounding:
            return None
        if not a.periods and not b.periods:
            continue
        if len(a.periods) != len(b.periods):
            return None
        for p, q in zip(a.periods, b.periods):
            x, y = p.period_s, q.period_s
            if p.count != q.count or x != y and not abs(x - y) <= relative * max(abs(x), abs(y)) + rounding:
                return None
    if s2.resident - s1.resident != s1.resident - s0.resident:
        return None
    scalars = [(s2.bus, s1.bus, s0.bus), (s2.taken, s1.taken, s0.taken)]
    scalars += [(v, s1.units.get(u, 0.0), s0.units.get(u, 0.0)) for u, v in s2.units.items()]
    uses = _changed(s1.uses, s2.uses) | _changed(s0.uses, s1.uses)  # the others moved by 0 in both iterations
    scalars += [(s2.uses[t], s1.uses.get(t, 0.0), s0.uses.get(t, 0.0)) for t in uses]
    for value, value_1, value_0 in scalars:
        moved, before = value - value_1, value_1 - value_0
        # still in both iterations, or moved by the period in both
        if not (
            abs(moved) <= relative * abs(moved) + rounding and abs(before) <= relative * abs(before) + rounding
        ) and not (
            abs(moved - period) <= relative * max(abs(moved), abs(period)) + rounding
            and abs(before - period) <= relative * max(abs(before), abs(period)) + rounding
        ):
            return None
    if len(s2.pending) != len(s1.pending):
        return None
    for (when, size), (when_before, size_before) in zip(s2.pending, s1.pending):
        moved = when - when_before
        if size != size_before or not abs(moved - period) <= relative * max(abs(moved), abs(period)) + rounding:
            return None
    return period


def time_items(
    items: list[Record | Loop], hardware: HardwareSpec, overlap: bool, costs: dict[str, LayerCost]
) -> list[Timed]:
    """Every record's times (repeated blocks once, with how they repeat), overlapped or serial."""
    return (_Overlapped if overlap else _Serial)(hardware, costs).items(items)


LIMIT_BLOCK = 256
"""Top-level items timed between two checks of a :func:`timing` limit."""
LIMIT_MARGIN = 1e-9
"""How far (relatively) a program's bound must pass a limit to refuse it: far beyond the rounding of its times."""


class _Saved(NamedTuple):
    """An overlapped timing's clock after some first items of a program, at ``hardware``, and their times (the
    first ``length`` of ``timed``): where a candidate that begins alike resumes (:meth:`Program.shared_prefix`)."""

    hardware: HardwareSpec
    clock: _Overlapped
    timed: list[Timed]
    length: int


def _time_overlapped(program: Program, hardware: HardwareSpec, limit: float) -> list[Timed] | None:
    """:func:`time_items` of a program, overlapped, or None as soon as it cannot end by ``limit``: its bus is
    free no sooner than it is now plus the time of the loads and stores still to come (:meth:`Program.bus_after`),
    and the program ends no sooner than its bus.

    Where an earlier candidate of the same planner begins alike and was timed at this ``hardware`` past the common
    prefix, the timing starts from its clock there: the simulation is a function of the items before, so the
    times are the ones simulating the prefix again would give. The clock is kept where a later candidate resumes."""
    items, start, timed = program.items, 0, []
    clock = None
    shared = program.shared_prefix()
    if shared is not None:
        saved = shared[0]._saved.pop(shared[1], None)  # once resumed, not kept: it holds thousands of times
        if saved is not None and saved.hardware is hardware:
            clock, timed, start = saved.clock.copy(), saved.timed[: saved.length], shared[1]
    if clock is None:
        clock = _Overlapped(hardware, program.costs)
    program._saved = {}
    bounded = limit < math.inf
    moved, count = program.bus_after() if bounded else ([], [])
    blocks = range(LIMIT_BLOCK, len(items), LIMIT_BLOCK) if bounded else ()
    stops = sorted(s for s in {*blocks, *program._marks} if start < s < len(items))
    for stop in (*stops, len(items)):
        if bounded and clock.bus + (moved[start] / clock.bandwidth + count[start] * clock.setup) > limit * (
            1 + LIMIT_MARGIN
        ):
            return None
        timed += clock.items(items[start:stop])
        if stop in program._marks:
            program._saved[stop] = _Saved(hardware, clock.copy(), timed, len(timed))
        start = stop
    return timed


# ---- steps -------------------------------------------------------------------------------------


def link_ratios(costs: tuple[LayerCost, ...]) -> dict[TensorId, float]:
    """Per map the external link codes (:mod:`hwsim.cost.coding`): its bytes over the link per byte on chip."""
    link = {map_of(c.name): c.output_link for c in costs if c.output_link < 1.0}
    link.update({map_of(INPUT): c.input_link for c in costs if c.input_link < 1.0 and INPUT in c.layer.inputs})
    return link


def wire_bytes(e: Event, link: dict[TensorId, float]) -> int:
    """The bytes a load or store ``e`` puts on the external link: coded at its map's ``link`` ratio, if any."""
    return link_bytes(e.bytes, link[e.region.tensor]) if e.region.tensor in link else e.bytes


def transfers_of(events: list[Event], link: dict[TensorId, float]) -> tuple[Transfer, ...]:
    """The bytes each tensor moves over the link in each direction over ``events`` (repeated ones counted;
    coded maps at their ``link`` ratio): a step's transfers."""
    moved: dict[tuple[TensorId, Direction], int] = {}
    for e in events:
        if e.action is LOAD or e.action is STORE:
            key = (e.region.tensor, Direction.LOAD if e.action is LOAD else Direction.STORE)
            moved[key] = moved.get(key, 0) + wire_bytes(e, link) * e.instances
    return tuple(Transfer(tensor, direction, size) for (tensor, direction), size in moved.items())


def transfer_seconds(
    events: list[Event] | tuple[Event, ...], bandwidth: float, setup: float, link: dict[TensorId, float]
) -> float:
    """The bus time of the loads and stores among ``events`` (repeated ones counted): their bytes over the link
    (coded maps at their ``link`` ratio) over the bandwidth, and a setup each."""
    moved = [(wire_bytes(e, link), e.instances) for e in events if e.action is LOAD or e.action is STORE]
    return sum(size * times for size, times in moved) / bandwidth + sum(times for _, times in moved) * setup


class Timing(NamedTuple):
    """A program timed: every record's times, and the wall time each step adds (:func:`timing`)."""

    timed: list[Timed]
    totals: list[float]

    @property
    def total_s(self) -> float:
        """The schedule's: its steps' totals added up in order, as the steps :func:`finish` makes add them."""
        return sum(self.totals)


@overload
def timing(program: Program, hardware: HardwareSpec, overlap: bool) -> Timing: ...


@overload
def timing(program: Program, hardware: HardwareSpec, overlap: bool, limit: float) -> Timing | None: ...


def timing(program: Program, hardware: HardwareSpec, overlap: bool, limit: float = math.inf) -> Timing | None:
    """Time the program. A step's total is the wall time its segment adds (from the end of everything
    before it to the end of the segment), shared among the segment's steps in proportion to their busy
    time, so the steps' totals add up to the schedule's. Cheaper than :func:`finish`, which also builds the
    steps: a policy compares programs by their totals and builds the steps of the one it keeps.

    ``limit`` (overlapped timing): None instead, as soon as the program surely takes longer (its bus alone),
    for a policy that keeps a program only if it is faster than the best so far."""
    if overlap:
        within = _time_overlapped(program, hardware, limit)
        if within is None:
            return None
        timed = within
    else:
        assert limit == math.inf, "a limit bounds overlapped timing"
        timed = time_items(program.items, hardware, overlap, program.costs)
    count = len(program.plans)
    # per step: when its last event ends, and its busy time
    ends, busy = [0.0] * count, [0.0] * count
    for record, _, start, end, periods in timed:
        step = record.step
        times = 1
        last = end
        for p in periods:
            times *= p.count
            last += (p.count - 1) * p.period_s
        if last > ends[step]:
            ends[step] = last
        busy[step] += (end - start) * times
    segments: dict[int, list[int]] = defaultdict(list)
    for i, plan in enumerate(program.plans):
        segments[plan.segment if plan.segment >= 0 else -1 - i].append(i)
    totals = [0.0] * count
    done = 0.0
    for members in segments.values():  # in order of their first step
        end = max([done, *(ends[i] for i in members)])
        whole = sum(busy[i] for i in members)
        for i in members:
            totals[i] = (end - done) * (busy[i] / whole if whole else 1 / len(members))
        done = end
    return Timing(timed, totals)


def finish(program: Program, hardware: HardwareSpec, overlap: bool, timed: Timing | None = None) -> list[Step]:
    """Time the program (unless ``timed`` already: :func:`timing`) and summarise it step by step."""
    times = timed if timed is not None else timing(program, hardware, overlap)
    count = len(program.plans)
    by_step: list[list[Event]] = [[] for _ in range(count)]
    computing = [0.0] * count
    repeats: dict[tuple[int, ...], Repeat] = {}

    def repeat_of(periods: tuple[Period, ...]) -> Repeat | None:
        if not periods:
            return None
        key = tuple(map(id, periods))
        if key not in repeats:
            p = periods[0]
            repeats[key] = Repeat(p.count, p.period_s, p.seq_stride, p.rows, p.channels, 0, repeat_of(periods[1:]))
        return repeats[key]

    new = tuple.__new__  # Event's own constructor checks its arguments; these come straight from the program
    for record, seq, start, end, periods in times.timed:
        step, action, region, size, layer, reads, unit, ops, part, _ = record
        repeat = repeat_of(periods) if periods else None
        by_step[step].append(
            new(Event, (action, region, size, layer, reads, unit, ops, seq, start, end, None, repeat, part))
        )
        if action is COMPUTE:
            repeated = 1
            for p in periods:
                repeated *= p.count
            computing[step] += (end - start) * repeated
    totals = times.totals
    bandwidth, setup = hardware.memory.external.effective_bandwidth, hardware.memory.external.setup
    steps = []
    for i, (plan, events) in enumerate(zip(program.plans, by_step)):
        group, first, last_cost = plan.group, plan.group[0], plan.group[-1]
        names = tuple(c.name for c in group)
        transfers = transfers_of(events, program.link)
        steps.append(
            Step(
                name=step_name(names),
                layers=names + plan.folded,
                op="+".join(c.layer.op.value for c in group),
                input_shape=first.layer.input_shape,
                output_shape=last_cost.layer.output_shape,
                unit="+".join(dict.fromkeys(c.unit for c in group)),
                macs=sum(c.macs for c in group),
                ops=sum(c.ops for c in group),
                input_bytes=sum(first.input_bytes),
                output_bytes=last_cost.output_bytes,
                weight_bytes=sum(c.weight_bytes for c in group),
                inputs_at=plan.inputs_at,
                output_at=plan.output_at,
                weights_at=Location.EXTERNAL,
                transfers=transfers,
                transfer_s=transfer_seconds(events, bandwidth, setup, program.link),
                compute_s=computing[i],
                total_s=totals[i],
                peak_internal_bytes=program.peaks[i],
                note=plan.note,
                events=tuple(events),
                tile_rows=plan.tile_rows,
                chunk_channels=plan.chunk_channels,
            )
        )
    return steps
