"""Energy of a schedule, charged event by event where it happens (docs/energy.md).

- LOAD: the bytes cross the external bus (external energy) and are written to internal memory;
- STORE: the bytes are read from internal memory and cross the external bus;
- COMPUTE: the unit's MACs and other ops at the run's precision (compute energy); every region the
  compute reads is read from internal memory and the region it produces is written to it, so a policy
  that re-reads halos, weights per band or partial sums pays for each read;
- RESIDENT, ALLOC, FREE: nothing moves (the input image is on chip when the run starts, as the paper assumes);
- static power over each step's share of the wall time.

Pure functions of a schedule, the costs its events refer to and an :class:`EnergyTable`. The walk counts
steps as :func:`counted_steps` and events as :func:`counted_events` do, so a compact schedule that keeps one
record of repeated identical work with a count multiplies its energy by that count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from hwsim.cost.inference import LayerCost
from hwsim.model.graph import INPUT
from hwsim.schedule.base import COMPUTE, LOAD, STORE, Event, Region, Schedule, Step, TensorId, map_of, weights_of
from hwsim.schedule.program import link_ratios, wire_bytes
from hwsim.schedule.slices import by_input, column, passable
from hwsim.spec.energy import EnergyTable


@dataclass(frozen=True)
class EnergyParts:
    """Joules by where they are spent."""

    compute_j: float = 0.0
    internal_j: float = 0.0
    external_j: float = 0.0
    static_j: float = 0.0

    @property
    def total_j(self) -> float:
        return self.compute_j + self.internal_j + self.external_j + self.static_j

    def __add__(self, other: EnergyParts) -> EnergyParts:
        return EnergyParts(
            self.compute_j + other.compute_j,
            self.internal_j + other.internal_j,
            self.external_j + other.external_j,
            self.static_j + other.static_j,
        )

    def times(self, count: int) -> EnergyParts:
        return EnergyParts(
            self.compute_j * count, self.internal_j * count, self.external_j * count, self.static_j * count
        )


def counted_steps(schedule: Schedule) -> Iterator[tuple[Step, int]]:
    """Every step with how many times it runs: once (a step of several sub-batches holds all their events)."""
    for step in schedule.steps:
        yield step, 1


def counted_events(step: Step) -> Iterator[tuple[Event, int]]:
    """Every event of a step with how many events it stands for (:attr:`Event.instances`): the repeated rows,
    bands, chunks and sub-batches it is one record of, each the same work moved along."""
    for event in step.events:
        yield event, event.instances


@dataclass(frozen=True)
class Operands:
    """What the walk needs to know of the layers: bytes per (row, channel) cell of every tensor, and MACs per op."""

    map_cell_bytes: dict[TensorId, float]
    """Per image: a map's rows x channels x images cells."""
    weight_channel_bytes: dict[TensorId, float]
    """A layer's weights per output channel (laid out by input channel: per row of an output channel's column);
    shared by all images."""
    macs_per_op: dict[str, float]
    batch: int
    link: dict[TensorId, float] = field(default_factory=dict)
    """Per map the external link codes: its bytes over the link per byte on chip (DRAM pays those)."""

    def region_bytes(self, region: Region, images: tuple[int, int] | None) -> float:
        (r0, r1), (c0, c1) = region.rows, region.channels
        cells = (r1 - r0) * (c1 - c0)
        if region.tensor in self.weight_channel_bytes:
            return cells * self.weight_channel_bytes[region.tensor]
        count = images[1] - images[0] if images is not None else self.batch
        return cells * self.map_cell_bytes[region.tensor] * count


def operands(costs: tuple[LayerCost, ...]) -> Operands:
    """The :class:`Operands` of the layer costs a schedule's events refer to (folded, for ``optimized``)."""
    batch = costs[0].batch
    maps: dict[TensorId, float] = {}
    weights: dict[TensorId, float] = {}
    for c in costs:
        h, _, ch = c.layer.output_shape
        maps[map_of(c.name)] = c.output_bytes / (h * ch * batch)
        if c.weight_bytes:
            weights[weights_of(c.name)] = c.weight_bytes / ch
        if passable(c):
            weights[by_input(c.name)] = column(c).unit  # a row of a column (:mod:`hwsim.schedule.slices`)
        for name, shape, size in zip(c.layer.inputs, c.layer.input_shapes, c.input_bytes):
            if name == INPUT:
                maps[map_of(INPUT)] = size / (shape[0] * shape[2] * batch)
    macs_per_op = {c.name: c.macs / c.ops if c.ops else 0.0 for c in costs}
    return Operands(maps, weights, macs_per_op, batch, link_ratios(costs))


def step_energy(step: Step, table: EnergyTable, layers: Operands) -> EnergyParts:
    """A step's events, and static power over its share of the wall time.

    Every event's energy (static power aside: it belongs to time, not to events) times the events it
    stands for, added up in order as plain floats: a sweep walks every event of every point, and an
    :class:`EnergyParts` per event cost more than its arithmetic."""
    compute_j = internal_j = external_j = 0.0
    write_j, read_j, external = (
        table.internal_write_j_per_byte,
        table.internal_read_j_per_byte,
        table.external_j_per_byte,
    )
    mac_j, op_j, macs_per_op = table.mac_j, table.op_j, layers.macs_per_op
    region_bytes, link = layers.region_bytes, layers.link
    for event in step.events:  # counted_events(step), without a generator and a property call per event
        count = 1 if event.repeat is None else event.instances
        action = event.action
        if action is LOAD or action is STORE:
            internal = write_j if action is LOAD else read_j
            internal_j += event.bytes * internal * count
            external_j += (wire_bytes(event, link) if link else event.bytes) * external * count
        elif action is COMPUTE:
            ops, images = event.ops, event.images
            macs = ops * macs_per_op[event.layer]
            other_ops = max(ops - 2 * macs, 0.0)
            read = 0.0
            for region in event.reads:
                read += region_bytes(region, images)
            written = region_bytes(event.region, images)
            compute_j += (macs * mac_j[event.unit] + other_ops * op_j[event.unit]) * count
            internal_j += (read * read_j + written * write_j) * count
    return EnergyParts(compute_j, internal_j, external_j, table.static_w * step.total_s)


def schedule_energy(schedule: Schedule, costs: tuple[LayerCost, ...], table: EnergyTable) -> tuple[EnergyParts, ...]:
    """Every step's energy, in order; each step counted as often as it runs. Their sum is the run's energy."""
    layers = operands(costs)
    return tuple(step_energy(step, table, layers).times(count) for step, count in counted_steps(schedule))
