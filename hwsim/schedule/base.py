"""What a schedule is: steps (a layer, or layers fused into one) with placements, traffic and times."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hwsim.ops import Shape


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
