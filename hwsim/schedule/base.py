"""What a schedule is: steps (a layer, or layers fused into one) with placements, traffic and times."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from itertools import product
from typing import NamedTuple

from hwsim.cost.inference import LayerCost
from hwsim.errors import InputError
from hwsim.model.graph import Graph
from hwsim.model.regions import Span
from hwsim.ops import Shape
from hwsim.spec.hardware import HardwareSpec


class CapacityError(InputError):
    """Not even one row of one step, with one channel of its weights, fits the internal memory."""


class Location(str, Enum):
    INTERNAL = "internal"
    EXTERNAL = "external"


def joined(locations: Iterable[Location]) -> str:
    """The report's value for several tensors' locations: each distinct one, in order, joined with ``+``."""
    return "+".join(dict.fromkeys(location.value for location in locations))


class Direction(str, Enum):
    LOAD = "load"  # external -> internal
    STORE = "store"  # internal -> external


class TensorId(NamedTuple):
    """A tensor of the schedule: the map a layer produces (or the network's ``input``), or a layer's weights.

    Printed as the map's layer name, or ``layer.weights``: the names the trace and the notes show.
    """

    layer: str
    weights: bool = False
    by_input: bool = False
    """Weights laid out by input channel, each output channel's a column of rows (:mod:`hwsim.schedule.slices`):
    the same bytes as the layer's weights, loaded a few input channels at a time."""

    def __str__(self) -> str:
        return f"{self.layer}.weights" if self.weights else self.layer

    def __repr__(self) -> str:
        """As before ``by_input`` existed, for every tensor but weights by input channel (schedules' records
        print alike, so their fingerprints compare across the change)."""
        tail = ", by_input=True" if self.by_input else ""
        return f"TensorId(layer={self.layer!r}, weights={self.weights!r}{tail})"


def map_of(layer: str) -> TensorId:
    """The map ``layer`` produces (or the network's input, ``input``)."""
    return TensorId(layer)


def weights_of(layer: str) -> TensorId:
    return TensorId(layer, True)


@dataclass(frozen=True)
class Transfer:
    """Bytes of one tensor moved over the external memory bus."""

    tensor: TensorId
    direction: Direction
    bytes: int


class Action(str, Enum):
    """What one event of a schedule's program does to internal memory."""

    RESIDENT = "resident"  # already internal when the run starts (the paper's assumption for the image)
    LOAD = "load"  # external -> internal: the region becomes resident
    ALLOC = "alloc"  # internal space reserved for a region a compute is about to write
    COMPUTE = "compute"  # one layer reads resident regions and writes an allocated one
    STORE = "store"  # internal -> external: the region stays resident until freed
    FREE = "free"  # internal space released


RESIDENT, LOAD, ALLOC, COMPUTE, STORE, FREE = (
    Action.RESIDENT,
    Action.LOAD,
    Action.ALLOC,
    Action.COMPUTE,
    Action.STORE,
    Action.FREE,
)
"""The members looked up once, for the loops that handle every event: ``Action.LOAD`` is an enum
class attribute lookup, as slow as the rest of such a loop's work on an event."""


class Region(NamedTuple):
    """Rows x channels of one tensor: a feature map (all images of the batch), or a layer's weights.

    Weights have ``rows == (0, 1)`` and ``channels`` the output channels they produce. A named tuple,
    not a frozen dataclass: a schedule makes thousands of them, and a tuple is built several times faster.
    """

    tensor: TensorId
    rows: Span
    channels: Span


def shifted(region: Region, rows: dict[TensorId, int], channels: dict[TensorId, int], k: int) -> Region:
    """``region`` in the k-th iteration of a repeated block that moves each tensor's regions ``rows`` down and
    ``channels`` along per iteration (absent: 0)."""
    t = region.tensor
    dr, dc = rows.get(t, 0) * k, channels.get(t, 0) * k
    if not dr and not dc:
        return region
    (r0, r1), (c0, c1) = region.rows, region.channels
    return Region(t, (r0 + dr, r1 + dr), (c0 + dc, c1 + dc))


@dataclass(frozen=True)
class Repeat:
    """Identical work repeated: an event that stands for ``count`` events, the k-th (from 0) shifted by k
    times the shifts here. Events of one repeated block share one ``Repeat``; a block may sit inside
    another (``outer``), which shifts all its iterations again."""

    count: int
    period_s: float
    """Time between the starts of consecutive iterations."""
    seq_stride: int
    """Events (expanded) per iteration: the k-th iteration's events come ``k * seq_stride`` later in the program."""
    rows: dict[TensorId, int] = field(default_factory=dict)
    """Rows each iteration moves a tensor's regions down (absent: 0)."""
    channels: dict[TensorId, int] = field(default_factory=dict)
    """Channels each iteration moves a tensor's regions along (absent: 0)."""
    images: int = 0
    """Images each iteration moves the event's ``images`` along (sub-batches run one after another)."""
    outer: Repeat | None = None

    def chain(self) -> tuple[Repeat, ...]:
        """This repeat and the ones around it, innermost first."""
        chain: list[Repeat] = []
        repeat: Repeat | None = self
        while repeat is not None:
            chain.append(repeat)
            repeat = repeat.outer
        return tuple(chain)

    def shift(self, region: Region, k: int) -> Region:
        return shifted(region, self.rows, self.channels, k)


class Event(NamedTuple):
    """One entry of a schedule's program, in program order, with the times the simulation gave it.

    ``bytes`` is what the schedule accounts for the region (moved for LOAD/STORE, reserved for
    ALLOC/LOAD/RESIDENT, released for FREE); ``layer``, ``unit`` and ``ops`` (the share of the
    layer's ops this part of its output costs) are set for COMPUTE. A named tuple (immutable,
    slotted) rather than a frozen dataclass for the same reason as :class:`Region`.
    """

    action: Action
    region: Region
    bytes: int = 0
    layer: str = ""
    reads: tuple[Region, ...] = ()
    unit: str = ""
    ops: float = 0.0
    seq: int = 0
    """Position in the whole schedule's program: steps of one segment interleave their events."""
    start_s: float = 0.0
    end_s: float = 0.0
    images: tuple[int, int] | None = None
    """The images of the batch whose maps this event touches (None: all of them); weights serve every image."""
    repeat: Repeat | None = None
    """This event stands for several (see :class:`Repeat`); None: for itself alone."""
    part: Region | None = None
    """A compute of a layer that accumulates its input's rows (global average pooling): the input rows this
    compute adds to the output. None: the compute reads the whole receptive field of its region."""

    @property
    def last_end_s(self) -> float:
        """When the last of the events this one stands for ends."""
        end, repeat = self.end_s, self.repeat
        while repeat is not None:
            end += (repeat.count - 1) * repeat.period_s
            repeat = repeat.outer
        return end

    @property
    def instances(self) -> int:
        """How many events this one stands for."""
        count, repeat = 1, self.repeat
        while repeat is not None:
            count *= repeat.count
            repeat = repeat.outer
        return count


def unrolled(event: Event) -> Iterator[Event]:
    """The events a repeated event stands for (the event itself if it is not repeated)."""
    if event.repeat is None:
        yield event
        return
    chain = event.repeat.chain()
    for ks in product(*(range(r.count) for r in chain)):
        region, reads, part, seq, start, images = (
            event.region,
            event.reads,
            event.part,
            event.seq,
            event.start_s,
            event.images,
        )
        for r, k in zip(chain, ks):
            if not k:
                continue
            region = r.shift(region, k)
            reads = tuple(r.shift(read, k) for read in reads)
            part = r.shift(part, k) if part is not None else None
            seq += k * r.seq_stride
            start += k * r.period_s
            if r.images and images is not None:
                images = (images[0] + k * r.images, images[1] + k * r.images)
        yield event._replace(
            region=region,
            reads=reads,
            part=part,
            seq=seq,
            start_s=start,
            end_s=start + (event.end_s - event.start_s),  # not (start + end) - start: that can fall below start
            images=images,
            repeat=None,
        )


def expanded(events: Iterable[Event]) -> list[Event]:
    """Every event ``events`` stand for, in program order."""
    return sorted((e for event in events for e in unrolled(event)), key=lambda e: e.seq)


@dataclass(frozen=True)
class Step:
    """One unit of scheduled work and everything the report says about it."""

    name: str
    layers: tuple[str, ...]
    op: str
    input_shape: Shape
    output_shape: Shape
    unit: str
    macs: int
    ops: int
    input_bytes: int
    output_bytes: int
    weight_bytes: int
    inputs_at: tuple[Location, ...]
    """Where each input map is when the step reads it (one per input of its first layer)."""
    output_at: Location
    weights_at: Location
    transfers: tuple[Transfer, ...]
    transfer_s: float
    compute_s: float
    total_s: float
    peak_internal_bytes: int
    note: str = ""
    events: tuple[Event, ...] = ()
    """The step's program: what the validator checks and the trace draws (repeated work once, with its count)."""
    tile_rows: int = 0
    """Output rows per band when the step runs in row bands (0: whole maps)."""
    chunk_channels: int = 0
    """Output channels per weight chunk when weights are streamed in chunks (0: all at once)."""
    sub_batch: int = 0
    """Images per sub-batch when the batch ran as sub-batches one after another (0: all at once)."""

    @property
    def bytes_moved(self) -> int:
        return sum(t.bytes for t in self.transfers)

    @property
    def input_loc(self) -> str:
        """The report's column: ``internal``, ``external``, or both joined with ``+`` (add, concat)."""
        return joined(self.inputs_at)

    @property
    def output_loc(self) -> str:
        return self.output_at.value

    @property
    def weight_loc(self) -> str:
        return self.weights_at.value


@dataclass(frozen=True)
class Schedule:
    policy: str
    network: str
    hardware: str
    counting: str
    batch: int
    precision: str
    steps: tuple[Step, ...]

    @property
    def total_s(self) -> float:
        return sum(step.total_s for step in self.steps)

    @property
    def transfer_s(self) -> float:
        return sum(step.transfer_s for step in self.steps)

    @property
    def compute_s(self) -> float:
        return sum(step.compute_s for step in self.steps)

    @property
    def bytes_moved(self) -> int:
        return sum(step.bytes_moved for step in self.steps)

    @property
    def sub_batch(self) -> int:
        """Images per sub-batch (:mod:`hwsim.schedule.batching`); the whole batch when it ran at once."""
        return max((step.sub_batch for step in self.steps), default=0) or self.batch

    def events(self) -> list[tuple[Event, str]]:
        """Every event of the program, repeated ones unrolled, in program order, with its step's name."""
        return sorted(
            ((e, step.name) for step in self.steps for event in step.events for e in unrolled(event)),
            key=lambda pair: pair[0].seq,
        )


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a policy schedules (as it was after): scheduling builds
    hundreds of thousands of short-lived tuples, in no cycle, and the collector's passes over them took 10-15 %
    of ``optimized``'s time on HairNet. What is freed is freed as usual (reference counting). A sweep pauses it
    over each chunk of points too (:func:`hwsim.studies.sweep.schedule_points`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


Scheduler = Callable[[Graph, tuple[LayerCost, ...], HardwareSpec], list[Step]]
"""A scheduler: the graph, its layers' costs and the hardware -> the steps of its schedule."""
CostTransform = Callable[[tuple[LayerCost, ...], HardwareSpec, Sequence[Step]], tuple[LayerCost, ...]]
"""The costs a policy's steps refer to, from the layers' costs and the steps."""


def unchanged(costs: tuple[LayerCost, ...], hardware: HardwareSpec, steps: Sequence[Step]) -> tuple[LayerCost, ...]:
    return costs


@dataclass(frozen=True)
class Policy:
    """A policy: how it schedules, and the costs its steps refer to (what the validator and the energy
    walk check them against: ``optimized`` folds batch norms into their convs, where that is faster)."""

    name: str
    scheduler: Scheduler
    transform: CostTransform = unchanged

    def __call__(self, graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
        with collector_paused():
            return self.scheduler(graph, costs, hardware)

    def scheduled_costs(
        self, costs: tuple[LayerCost, ...], hardware: HardwareSpec, steps: Sequence[Step]
    ) -> tuple[LayerCost, ...]:
        return self.transform(costs, hardware, steps)
