"""A schedule as a program: events in program order, grouped into steps, then timed and summarised.

Every policy writes its decisions as :class:`Event` s through a :class:`Program`, which keeps the
resident byte count (so a policy can ask what still fits). :func:`finish` then times the program,
either serially (each event after the previous one: the paper's timing) or overlapped (the bus
and every compute unit are separate resources; an event waits only for what it depends on), and
turns it into the report's steps.

Overlap never lets memory run ahead of the program: an event that takes space (LOAD, ALLOC) waits
until every FREE before it in program order has happened, so at any instant the resident bytes are
at most those of some prefix of the program, which the validator checks against capacity.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass

from hwsim.costs import LayerCost
from hwsim.graph import INPUT
from hwsim.schedule.base import Action, Direction, Event, Region, Step, Transfer, weights_of
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
        self.events: list[tuple[int, Event]] = []
        self.peaks: list[int] = []
        self.resident = 0

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

    def _add(self, step: int, event: Event, delta: int) -> None:
        self.resident += delta
        self.peaks[step] = max(self.peaks[step], self.resident)
        self.events.append((step, Event(event.action, event.region, event.bytes, event.layer, event.reads, event.unit,
                                        event.ops, len(self.events))))

    def occupy(self, step: int, action: Action, region: Region) -> None:
        """RESIDENT, LOAD or ALLOC: the region takes internal space."""
        size = self.bytes(region)
        if size:
            self._add(step, Event(action, region, size), size)

    def store(self, step: int, region: Region) -> None:
        size = self.bytes(region)
        if size:
            self._add(step, Event(Action.STORE, region, size), 0)

    def free(self, step: int, region: Region) -> None:
        size = self.bytes(region)
        if size:
            self._add(step, Event(Action.FREE, region, size), -size)

    def compute(self, step: int, cost: LayerCost, rows: Span, channels: Span) -> None:
        """Compute ``rows`` x ``channels`` of ``cost``'s output, reading what its receptive field needs."""
        layer = cost.layer
        h, _, ch = layer.output_shape
        if rows[1] <= rows[0] or channels[1] <= channels[0]:
            return
        reads = [
            Region(name, r, c)
            for name, rc in zip(layer.inputs, input_regions(layer, rows, channels))
            if rc is not None
            for r, c in [rc]
        ]
        if cost.weight_bytes:
            reads.append(Region(weights_of(cost.name), (0, 1), channels))
        share = (rows[1] - rows[0]) * (channels[1] - channels[0]) / (h * ch)
        event = Event(Action.COMPUTE, Region(cost.name, rows, channels), layer=cost.name,
                      reads=tuple(reads), unit=cost.unit, ops=cost.ops * share)
        self._add(step, event, 0)


def _simulate(events: list[tuple[int, Event]], hardware: HardwareSpec, overlap: bool) -> list[Event]:
    """Start and end times of every event (see the module docstring for the rules)."""
    bandwidth = hardware.memory.external.bandwidth
    capacity = hardware.memory.internal.capacity
    throughput = {e.unit: hardware.compute[e.unit].throughput for _, e in events if e.action is Action.COMPUTE}
    free_at: dict[str, float] = defaultdict(float)  # per resource: when it is next idle
    written: dict[str, list[tuple[Region, float]]] = defaultdict(list)  # per tensor: regions allocated, loaded or computed, when

    def ready(region: Region) -> float:
        """When the latest allocation, load or compute of cells overlapping ``region`` ends (written in order)."""
        rows, chans = region.rows, region.channels
        for r, end in reversed(written[region.tensor]):
            if r.rows[0] < rows[1] and rows[0] < r.rows[1] and r.channels[0] < chans[1] and chans[0] < r.channels[1]:
                return end
        return 0.0

    last_use: dict[str, float] = defaultdict(float)  # per tensor: when its latest use ends
    pending: list[tuple[float, int]] = []  # frees so far in program order, as a heap of (when, bytes)
    pending_bytes = 0  # of those, bytes not yet freed at time ``taken``
    taken = 0.0  # when the latest space-taking event started: they start in program order
    resident = 0  # in program order
    clock = 0.0
    timed = []
    for _, e in events:
        t, action = e.region.tensor, e.action
        takes = action is Action.LOAD or action is Action.ALLOC or action is Action.RESIDENT
        if takes:
            resident += e.bytes
        if action is Action.LOAD or action is Action.STORE:
            duration = e.bytes / bandwidth
            start = max(free_at[BUS], taken if takes else ready(e.region))
        elif action is Action.COMPUTE:
            duration = e.ops / throughput[e.unit]
            start = max([free_at[e.unit], ready(e.region), *(ready(r) for r in e.reads)])
        elif action is Action.FREE:
            duration, start = 0.0, last_use[t]
        else:
            duration, start = 0.0, taken
        if takes and overlap:
            # wait until enough frees that come before it in program order have happened: the space
            # resident at any instant is then at most what the program's order allows (capacity)
            while pending and (pending[0][0] <= start or pending_bytes > capacity - resident):
                when, size = heapq.heappop(pending)
                start = max(start, when)
                pending_bytes -= size
            taken = start
        if not overlap:
            start = clock
        end = start + duration
        clock = end
        if action is Action.LOAD or action is Action.STORE:
            free_at[BUS] = end
        elif action is Action.COMPUTE:
            free_at[e.unit] = end
            for r in e.reads:
                last_use[r.tensor] = max(last_use[r.tensor], end)
        elif action is Action.FREE:
            resident -= e.bytes
            heapq.heappush(pending, (end, e.bytes))
            pending_bytes += e.bytes
        if action is not Action.STORE and action is not Action.FREE:
            written[t].append((e.region, end))
        last_use[t] = max(last_use[t], end)
        timed.append(Event(action, e.region, e.bytes, e.layer, e.reads, e.unit, e.ops, e.seq, start, end))
    return timed


def _transfers(events: list[Event]) -> tuple[Transfer, ...]:
    moved: dict[tuple[str, Direction], int] = {}
    for e in events:
        if e.action in (Action.LOAD, Action.STORE):
            key = (e.region.tensor, Direction.LOAD if e.action is Action.LOAD else Direction.STORE)
            moved[key] = moved.get(key, 0) + e.bytes
    return tuple(Transfer(tensor, direction, size) for (tensor, direction), size in moved.items())


def finish(program: Program, hardware: HardwareSpec, overlap: bool) -> list[Step]:
    """Time the program and summarise it step by step.

    A step's ``total_s`` is the wall time its segment adds (from the end of everything before it
    to the end of the segment), shared among the segment's steps in proportion to their busy time,
    so the steps' totals add up to the schedule's.
    """
    timed = _simulate(program.events, hardware, overlap)
    by_step: list[list[Event]] = [[] for _ in program.plans]
    for (step, _), event in zip(program.events, timed):
        by_step[step].append(event)
    segments: dict[int, list[int]] = defaultdict(list)
    for i, plan in enumerate(program.plans):
        segments[plan.segment if plan.segment >= 0 else -1 - i].append(i)
    totals = [0.0] * len(program.plans)
    done = 0.0
    for members in segments.values():  # in order of their first step
        end = max([done, *(e.end_s for i in members for e in by_step[i])])
        busy = [_busy(by_step[i]) for i in members]
        for i, b in zip(members, busy):
            totals[i] = (end - done) * (b / sum(busy) if sum(busy) else 1 / len(members))
        done = end
    bandwidth = hardware.memory.external.bandwidth
    steps = []
    for i, (plan, events) in enumerate(zip(program.plans, by_step)):
        group, first, last = plan.group, plan.group[0], plan.group[-1]
        names = tuple(c.name for c in group)
        transfers = _transfers(events)
        steps.append(Step(
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
            transfer_s=sum(t.bytes for t in transfers) / bandwidth,
            compute_s=sum(e.end_s - e.start_s for e in events if e.action is Action.COMPUTE),
            total_s=totals[i],
            peak_internal_bytes=program.peaks[i],
            note=plan.note,
            events=tuple(events),
            tile_rows=plan.tile_rows,
            chunk_channels=plan.chunk_channels,
        ))
    return steps


def _busy(events: list[Event]) -> float:
    return sum(e.end_s - e.start_s for e in events)
