"""A schedule as a program: events in program order, grouped into steps, then timed and summarised.

Every policy writes its decisions as :class:`Event` s through a :class:`Program`, which keeps the
resident byte count (so a policy can ask what still fits). :func:`finish` then times the program,
either serially (each event after the previous one: the paper's timing) or overlapped (the bus
and every compute unit are separate resources; an event waits only for what it depends on), and
turns it into the report's steps.

Overlap never lets memory run ahead of capacity: events that take space (LOAD, ALLOC) start in
program order, and one waits until enough of the FREEs before it have happened that the bytes still
pending release fit beside the program's resident bytes at that point.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass

from hwsim.cost.cycles import layer_rate
from hwsim.cost.inference import LayerCost
from hwsim.model.graph import INPUT
from hwsim.schedule.base import (
    COMPUTE,
    FREE,
    LOAD,
    STORE,
    Action,
    Direction,
    Event,
    Region,
    Step,
    Transfer,
    weights_of,
)
from hwsim.schedule.regions import Span, input_regions
from hwsim.spec.hardware import HardwareSpec

BUS = "bus"
"""The resource every LOAD and STORE uses: the external memory bus."""


@dataclass(frozen=True)
class StepPlan:
    """What the report says about one step besides its times: the layers and why tensors are where they are."""

    group: tuple[LayerCost, ...]
    input_loc: str
    output_loc: str
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


Record = tuple[int, Action, Region, int, str, tuple[Region, ...], str, float]
"""An event before it is timed: (step, action, region, bytes, layer, reads, unit, ops)."""


class Program:
    """Collects events step by step and tracks resident internal bytes."""

    def __init__(self, costs: tuple[LayerCost, ...]) -> None:
        self.costs = {c.name: c for c in costs}
        self.cell_bytes: dict[str, int] = {}
        for c in costs:
            h, _, ch = c.layer.output_shape
            self.cell_bytes[c.name] = c.output_bytes // (h * ch)
            if c.weight_bytes:
                self.cell_bytes[weights_of(c.name)] = c.weight_bytes // ch
            for name, shape, size in zip(c.layer.inputs, c.layer.input_shapes, c.input_bytes):
                if name == INPUT:
                    self.cell_bytes[INPUT] = size // (shape[0] * shape[2])
        self._full: dict[str, Region] = {}
        self.plans: list[StepPlan] = []
        self.events: list[Record] = []
        self.peaks: list[int] = []
        self.resident = 0
        self.moved = 0
        """Bytes loaded and stored so far: the bus is busy at least this long over the bandwidth."""
        self.kept = frozenset(weights_of(c.name) for c in costs if c.weights_resident)
        """Weights on chip before the run starts and after it ends (steady state): never loaded nor freed,
        and outside the capacity the policy schedules in (:mod:`hwsim.cost.steady`)."""

    def begin(self, plan: StepPlan) -> int:
        """Start a step; the events added with its index belong to it."""
        self.plans.append(plan)
        self.peaks.append(self.resident)
        return len(self.plans) - 1

    def bytes(self, region: Region) -> int:
        rows, chans = region.rows, region.channels
        return (rows[1] - rows[0]) * (chans[1] - chans[0]) * self.cell_bytes[region.tensor]

    def full(self, tensor: str) -> Region:
        """All of a map (or all of a layer's weights)."""
        if tensor not in self._full:
            self._full[tensor] = self._whole(tensor)
        return self._full[tensor]

    def _whole(self, tensor: str) -> Region:
        if tensor == INPUT:
            layer = next(c.layer for c in self.costs.values() if INPUT in c.layer.inputs)
            h, _, ch = layer.input_shapes[layer.inputs.index(INPUT)]
            return Region(tensor, (0, h), (0, ch))
        if tensor.endswith(".weights"):
            return Region(tensor, (0, 1), (0, self.costs[tensor[: -len(".weights")]].layer.output_shape[2]))
        h, _, ch = self.costs[tensor].layer.output_shape
        return Region(tensor, (0, h), (0, ch))

    def add(self, step: int, action: Action, region: Region, size: int) -> None:
        """Any event but a compute, when ``size`` (the region's bytes) is not 0: RESIDENT, LOAD and
        ALLOC take the space, FREE releases it, LOAD and STORE move the bytes. For callers that know
        the size already; the others use :meth:`occupy`, :meth:`store` and :meth:`free`."""
        if not size or (self.kept and (action is LOAD or action is FREE) and region.tensor in self.kept):
            return
        if action is FREE:
            self.resident -= size
        else:
            if action is LOAD or action is STORE:
                self.moved += size
            if action is not STORE:
                self.resident += size
        if self.resident > self.peaks[step]:  # any event: steps of a segment interleave
            self.peaks[step] = self.resident
        self.events.append((step, action, region, size, "", (), "", 0.0))

    def occupy(self, step: int, action: Action, region: Region) -> None:
        """RESIDENT, LOAD or ALLOC: the region takes internal space."""
        self.add(step, action, region, self.bytes(region))

    def store(self, step: int, region: Region) -> None:
        self.add(step, STORE, region, self.bytes(region))

    def free(self, step: int, region: Region) -> None:
        self.add(step, FREE, region, self.bytes(region))

    def compute(
        self, step: int, cost: LayerCost, rows: Span, channels: Span, reads: tuple[Region, ...] | None = None
    ) -> None:
        """Compute ``rows`` x ``channels`` of ``cost``'s output, reading what its receptive field needs
        (:func:`compute_reads`; ``reads`` when the caller has them already)."""
        layer = cost.layer
        h, _, ch = layer.output_shape
        if rows[1] <= rows[0] or channels[1] <= channels[0]:
            return
        if reads is None:
            reads = compute_reads(cost, rows, channels)
        share = (rows[1] - rows[0]) * (channels[1] - channels[0]) / (h * ch)
        region = tuple.__new__(Region, (layer.name, rows, channels))  # without the named tuple's constructor call
        self.events.append((step, COMPUTE, region, 0, layer.name, reads, cost.unit, cost.ops * share))
        if self.resident > self.peaks[step]:
            self.peaks[step] = self.resident


def compute_reads(cost: LayerCost, rows: Span, channels: Span) -> tuple[Region, ...]:
    """What computing ``rows`` x ``channels`` of ``cost``'s output reads: its receptive field in each input,
    and its weights."""
    layer = cost.layer
    reads = [
        Region(tensor, rc[0], rc[1])
        for tensor, rc in zip(layer.inputs, input_regions(layer, rows, channels))
        if rc is not None
    ]
    if cost.weight_bytes:
        reads.append(Region(weights_of(layer.name), (0, 1), channels))
    return tuple(reads)


def _durations(events: list[Record], hardware: HardwareSpec, costs: dict[str, LayerCost]) -> list[float]:
    """How long every event takes on its resource: a transfer its bytes over the attained bandwidth plus its
    setup; a compute its ops at the rate its unit attains on its layer (the peak, or the array's cycles:
    :func:`hwsim.cost.cycles.layer_rate`), the first compute of each step after its unit's dispatch time."""
    external = hardware.memory.external
    bandwidth, setup = external.effective_bandwidth, external.setup
    units = hardware.compute
    dispatch = {name: unit.dispatch for name, unit in units.items() if unit.dispatch}
    rates: dict[str, float] = {}
    dispatched: set[int] = set()
    durations: list[float] = []
    append = durations.append
    for step, action, _, size, layer, _, unit, ops in events:
        if action is COMPUTE:
            rate = rates.get(layer)
            if rate is None:
                rate = rates[layer] = layer_rate(costs[layer], units[unit])
            if dispatch and step not in dispatched:
                dispatched.add(step)
                append(ops / rate + dispatch.get(unit, 0.0))
            else:
                append(ops / rate)
        elif action is LOAD or action is STORE:
            append(size / bandwidth + setup)
        else:
            append(0.0)
    return durations


def _serial(events: list[Record], hardware: HardwareSpec, costs: dict[str, LayerCost]) -> list[tuple[float, float]]:
    """Start and end times when every event starts as the one before ends (the paper's timing)."""
    clock, times = 0.0, []
    for duration in _durations(events, hardware, costs):
        end = clock + duration
        times.append((clock, end))
        clock = end
    return times


def _overlapped(events: list[Record], hardware: HardwareSpec, costs: dict[str, LayerCost]) -> list[tuple[float, float]]:
    """Start and end times when the bus and each unit run concurrently (see the module docstring for the rules)."""
    capacity = hardware.memory.internal.capacity
    bus = 0.0  # when the bus is next idle
    unit_free: dict[str, float] = defaultdict(float)  # per compute unit: when it is next idle
    written: dict[str, list[tuple[Region, float]]] = defaultdict(
        list
    )  # per tensor: regions allocated, loaded or computed, when

    def ready(region: Region) -> float:
        """When the latest allocation, load or compute of cells overlapping ``region`` ends (written in order)."""
        _, (r0, r1), (c0, c1) = region
        for (_, rows, chans), end in reversed(written[region[0]]):
            if rows[0] < r1 and r0 < rows[1] and chans[0] < c1 and c0 < chans[1]:
                return end
        return 0.0

    last_use: dict[str, float] = defaultdict(float)  # per tensor: when its latest use ends
    pending: list[tuple[float, int]] = []  # frees so far in program order, as a heap of (when, bytes)
    pending_bytes = 0  # of those, bytes not yet freed at time ``taken``
    taken = 0.0  # when the latest space-taking event started: they start in program order
    resident = 0  # in program order
    times = []
    for (_, action, region, size, _, reads, unit, _), duration in zip(events, _durations(events, hardware, costs)):
        t = region[0]
        if action is COMPUTE:
            start = unit_free[unit]
            for read in (region, *reads):
                when = ready(read)
                if when > start:
                    start = when
            end = unit_free[unit] = start + duration
            for read in reads:
                if end > last_use[read[0]]:
                    last_use[read[0]] = end
            written[t].append((region, end))
        elif action is FREE:
            start = last_use[t]
            end = start + duration
            resident -= size
            heapq.heappush(pending, (end, size))
            pending_bytes += size
        elif action is STORE:
            start = ready(region)
            if bus > start:
                start = bus
            end = bus = start + duration
        else:  # LOAD, ALLOC, RESIDENT: they take space
            resident += size
            start = taken if action is not LOAD or taken >= bus else bus
            # wait until enough frees that come before it in program order have happened: the space
            # resident at any instant is then at most what the program's order allows (capacity)
            while pending and (pending[0][0] <= start or pending_bytes > capacity - resident):
                when, freed = heapq.heappop(pending)
                if when > start:
                    start = when
                pending_bytes -= freed
            taken = start
            end = start + duration
            if action is LOAD:
                bus = end
            written[t].append((region, end))
        if end > last_use[t]:
            last_use[t] = end
        times.append((start, end))
    return times


def transfers_of(events: list[Event]) -> tuple[Transfer, ...]:
    """The bytes each tensor moves in each direction over ``events``: a step's transfers."""
    moved: dict[tuple[str, Direction], int] = {}
    for e in events:
        if e.action is LOAD or e.action is STORE:
            key = (e.region.tensor, Direction.LOAD if e.action is LOAD else Direction.STORE)
            moved[key] = moved.get(key, 0) + e.bytes
    return tuple(Transfer(tensor, direction, size) for (tensor, direction), size in moved.items())


def transfer_seconds(events: list[Event] | tuple[Event, ...], bandwidth: float, setup: float) -> float:
    """The bus time of the loads and stores among ``events``: their bytes over the bandwidth, and a setup each."""
    moved = [e.bytes for e in events if e.action is LOAD or e.action is STORE]
    return sum(moved) / bandwidth + len(moved) * setup


def finish(program: Program, hardware: HardwareSpec, overlap: bool) -> list[Step]:
    """Time the program and summarise it step by step.

    A step's ``total_s`` is the wall time its segment adds (from the end of everything before it
    to the end of the segment), shared among the segment's steps in proportion to their busy time,
    so the steps' totals add up to the schedule's.
    """
    times = (_overlapped if overlap else _serial)(program.events, hardware, program.costs)
    count = len(program.plans)
    by_step: list[list[Event]] = [[] for _ in range(count)]
    # per step, in one pass over the events: when its last event ends, and its busy and compute time
    ends, busy, computing = [0.0] * count, [0.0] * count, [0.0] * count
    new = tuple.__new__  # Event's own constructor checks its arguments; these come straight from the program
    for seq, (record, (start, end)) in enumerate(zip(program.events, times)):
        step = record[0]
        by_step[step].append(new(Event, (*record[1:], seq, start, end, None)))
        if end > ends[step]:
            ends[step] = end
        busy[step] += end - start
        if record[1] is COMPUTE:
            computing[step] += end - start
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
    bandwidth, setup = hardware.memory.external.effective_bandwidth, hardware.memory.external.setup
    steps = []
    for i, (plan, events) in enumerate(zip(program.plans, by_step)):
        group, first, last = plan.group, plan.group[0], plan.group[-1]
        names = tuple(c.name for c in group)
        transfers = transfers_of(events)
        steps.append(
            Step(
                name=step_name(names),
                layers=names + plan.folded,
                op="+".join(c.layer.op.value for c in group),
                input_shape=first.layer.input_shape,
                output_shape=last.layer.output_shape,
                unit="+".join(dict.fromkeys(c.unit for c in group)),
                macs=sum(c.macs for c in group),
                ops=sum(c.ops for c in group),
                input_bytes=sum(first.input_bytes),
                output_bytes=last.output_bytes,
                weight_bytes=sum(c.weight_bytes for c in group),
                input_loc=plan.input_loc,
                output_loc=plan.output_loc,
                weight_loc="external",
                transfers=transfers,
                transfer_s=transfer_seconds(events, bandwidth, setup),
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
