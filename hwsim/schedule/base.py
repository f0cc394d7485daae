"""What a schedule is: steps (a layer, or layers fused into one) with placements, traffic and times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from hwsim.cost.inference import LayerCost
from hwsim.model.graph import Graph
from hwsim.ops import Shape
from hwsim.spec.hardware import HardwareSpec


class Location(str, Enum):
    INTERNAL = "internal"
    EXTERNAL = "external"


class Direction(str, Enum):
    LOAD = "load"  # external -> internal
    STORE = "store"  # internal -> external


@dataclass(frozen=True)
class Transfer:
    """Bytes of one tensor moved over the external memory bus."""

    tensor: str
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

    A map is named by the layer that produces it (or ``input``); weights by :func:`weights_of`, with
    ``rows == (0, 1)`` and ``channels`` the output channels they produce. A named tuple, not a frozen
    dataclass: a schedule makes ~10,000 of them, and a tuple is built several times faster.
    """

    tensor: str
    rows: tuple[int, int]
    channels: tuple[int, int]


def weights_of(layer: str) -> str:
    return f"{layer}.weights"


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


@dataclass(frozen=True)
class Step:
    """One unit of scheduled work and everything the report says about it.

    ``input_loc`` joins the locations of several inputs with ``+`` when they differ (add, concat).
    """

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
    input_loc: str
    output_loc: str
    weight_loc: str
    transfers: tuple[Transfer, ...]
    transfer_s: float
    compute_s: float
    total_s: float
    peak_internal_bytes: int
    note: str = ""
    events: tuple[Event, ...] = ()
    """The step's program: what the validator checks and the trace draws."""
    tile_rows: int = 0
    """Output rows per band when the step runs in row bands (0: whole maps)."""
    chunk_channels: int = 0
    """Output channels per weight chunk when weights are streamed in chunks (0: all at once)."""
    sub_batch: int = 0
    """Images per sub-batch when the batch ran as sub-batches one after another (0: all at once)."""

    @property
    def bytes_moved(self) -> int:
        return sum(t.bytes for t in self.transfers)


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


Policy = Callable[[Graph, tuple[LayerCost, ...], HardwareSpec], list[Step]]
"""A scheduler: the graph, its layers' costs and the hardware -> the steps of its schedule."""
