"""The hardware profile: memories, compute units, which ops run where, and precision.

Beyond a peak throughput, a unit may state its microarchitecture (docs/accelerators.md): a matrix unit its
systolic ``array: [rows, cols]``, ``dataflow`` and ``clock`` (its throughput is then 2 x rows x cols x clock,
and its compute time per layer comes from :mod:`hwsim.cost.cycles`), a vector unit its ``lanes`` and
``clock``. Fixed costs: ``dispatch`` per step on a unit, ``setup`` per transfer and the ``achievable``
fraction of the external bandwidth. Every one of these is optional: a profile without them is timed as
before, to the last bit.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hwsim import bundled
from hwsim.ops import TRAITS, Op
from hwsim.spec.energy import AreaSpec, EnergySpec, check_unit_names
from hwsim.spec.names import MAX_NAME_LENGTH, text_problem
from hwsim.spec.validate import validate
from hwsim.spec.yamlio import load_yaml
from hwsim.units import format_quantity, parse_physical, parse_quantity

Bytes = Annotated[float, BeforeValidator(lambda v: parse_quantity(v, "bytes"))]
BytesPerSecond = Annotated[float, BeforeValidator(lambda v: parse_quantity(v, "bandwidth"))]
OpsPerSecond = Annotated[float, BeforeValidator(lambda v: parse_quantity(v, "throughput"))]
Hertz = Annotated[float, BeforeValidator(lambda v: parse_quantity(v, "frequency"))]
Seconds = Annotated[float, BeforeValidator(lambda v: parse_physical(v, "time"))]

MAX_ARRAY_SIDE = 1_000_000
"""Rows or columns of a systolic array, and lanes of a vector unit: beyond a million can only be a mistake."""
Side = Annotated[StrictInt, Field(gt=0, le=MAX_ARRAY_SIDE)]


def _fraction(value: object) -> float:
    """A share in (0, 1] written as a number (0.8); YAML's true is not a number here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a fraction between 0 and 1 such as 0.8, got {value!r}")
    if not 0 < value <= 1:
        raise ValueError(f"must be above 0 and at most 1, got {value!r}")
    return float(value)


Fraction = Annotated[float, BeforeValidator(_fraction)]

THROUGHPUT_AGREEMENT = 0.01
"""A throughput given beside an array (or lanes) and a clock must be within 1 % of what they imply:
datasheets round (TPU v1: "92 TOPS" for 2 x 256 x 256 x 700 MHz = 91.75 TOPS)."""


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"
    INT16 = "int16"
    """16-bit fixed point (Eyeriss v1)."""

    @property
    def bytes(self) -> int:
        return {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int16": 2}[self.value]


class Dataflow(str, Enum):
    """What stays in a systolic array's PEs while the rest streams through (SCALE-Sim's three dataflows)."""

    OS = "os"
    """Output stationary: output pixels on the rows, filters on the columns, the window streamed."""
    WS = "ws"
    """Weight stationary: the window on the rows, filters on the columns, output pixels streamed."""
    IS = "is"
    """Input stationary: the window on the rows, output pixels on the columns, filters streamed."""
    RS = "rs"
    """Row stationary (Eyeriss): filter rows on the array's rows, output rows on its columns, each PE a 1-D
    convolution out of its scratch pads; needs a ``row_stationary`` section (:mod:`hwsim.cost.rowstationary`)."""


SYSTOLIC = (Dataflow.OS, Dataflow.WS, Dataflow.IS)
"""The dataflows SCALE-Sim simulates, costed on a layer's matrix view (:mod:`hwsim.cost.cycles`)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class InternalMemory(_Strict):
    capacity: Bytes = Field(description="on-chip memory (SRAM), bytes")


class ExternalMemory(_Strict):
    bandwidth: BytesPerSecond = Field(description="external memory <-> internal memory, bytes/s")
    capacity: Bytes | None = Field(None, description="unlimited when absent")
    achievable: Fraction = Field(1.0, description="fraction of the bandwidth transfers attain")
    setup: Seconds = Field(0.0, description="latency every transfer pays before its first byte (a DMA's setup)")
    map_coding: Literal["eyeriss-rlc"] | None = Field(
        None,
        description="feature maps cross the link coded: eyeriss-rlc, Eyeriss v1's run-length code, sized from "
        "the maps' zero fractions given with the run (hwsim.cost.coding); absent: raw",
    )

    @property
    def effective_bandwidth(self) -> float:
        """What transfers attain: the bandwidth times the achievable fraction (exactly the bandwidth at 1)."""
        return self.bandwidth * self.achievable


class Memory(_Strict):
    internal: InternalMemory
    external: ExternalMemory


class RowStationary(_Strict):
    """What a row-stationary array's mapping is bounded by (Chen et al., IEEE JSSC 2017, for Eyeriss v1): each PE's
    scratch pads (values), the global buffer that holds ifmaps and partial sums (allocated to one or the other a
    bank at a time), and the values a cycle each network delivers from the buffer to the PEs."""

    ifmap_spad: Side = Field(description="ifmap values a PE's scratch pad holds (the sliding windows of q channels)")
    filter_spad: Side = Field(description="filter weights a PE's scratch pad holds (p filters x q channels x a row)")
    psum_spad: Side = Field(description="partial sums a PE's scratch pad holds (one per filter it runs)")
    buffer: Bytes = Field(description="global buffer for ifmaps and partial sums, bytes")
    bank: Bytes = Field(description="the buffer's unit of allocation to ifmaps or partial sums, bytes")
    ifmap_bus: Side = Field(description="ifmap values a cycle from the buffer to the PEs")
    filter_bus: Side = Field(description="filter values a cycle to the PEs")
    psum_bus: Side = Field(description="partial sums a cycle from the buffer back into the PEs")


class ComputeUnit(_Strict):
    # None only until the validators below derive it: every ComputeUnit has a throughput
    throughput: OpsPerSecond = Field(  # type: ignore[assignment]
        None, description="peak ops/s; from array or lanes and clock when absent"
    )
    ops: tuple[Op, ...] = Field((), description="ops this unit runs, overriding the default assignment")
    array: tuple[Side, Side] | None = Field(None, description="a systolic array's [rows, cols] of MACs")
    dataflow: Dataflow | None = Field(None, description="what the array keeps stationary (os, ws, is, rs)")
    row_stationary: RowStationary | None = Field(None, description="scratch pads, buffer and buses of an rs array")
    lanes: Side | None = Field(None, description="a vector unit's lanes, one op per lane per cycle")
    clock: Hertz | None = Field(None, description="cycles per second of the array or the lanes")
    dispatch: Seconds = Field(0.0, description="fixed time each step pays on this unit (a kernel launch)")

    @model_validator(mode="before")
    @classmethod
    def _throughput_follows(cls, data: Any) -> Any:
        """Without a throughput, the peak an array or lanes imply at the clock (a bad value is left for its field)."""
        if not isinstance(data, dict) or data.get("throughput") is not None or data.get("clock") is None:
            return data
        try:
            implied = _implied_throughput(
                data.get("array"), data.get("lanes"), parse_quantity(data["clock"], "frequency")
            )
        except (ValueError, TypeError, OverflowError):  # OverflowError: an infinite or huge array side or lanes
            return data
        return data if implied is None or implied <= 0 else {**data, "throughput": implied}

    @model_validator(mode="after")
    def _geometry_agrees(self) -> ComputeUnit:
        """An array or lanes need a clock (and an array a dataflow); a throughput given beside them must agree."""
        if self.array is not None and self.lanes is not None:
            raise ValueError("give array (a matrix unit) or lanes (a vector unit), not both")
        if (self.dataflow is None) != (self.array is None):
            raise ValueError(
                "an array needs a dataflow (os, ws, is or rs)" if self.array else "dataflow needs an array"
            )
        if (self.dataflow is Dataflow.RS) != (self.row_stationary is not None):
            raise ValueError(
                "dataflow rs needs a row_stationary section (scratch pads, buffer, buses)"
                if self.dataflow is Dataflow.RS
                else "row_stationary needs dataflow: rs"
            )
        if (self.array is not None or self.lanes is not None) and self.clock is None:
            raise ValueError(f"{'array' if self.array else 'lanes'} needs a clock, e.g. clock: 700 MHz")
        if self.clock is not None and self.array is None and self.lanes is None:
            raise ValueError("a clock needs an array (a matrix unit) or lanes (a vector unit)")
        if self.throughput is None:
            raise ValueError("give a throughput, or an array (or lanes) and a clock")
        implied = _implied_throughput(self.array, self.lanes, self.clock) if self.clock else None
        if implied is not None and abs(self.throughput - implied) > THROUGHPUT_AGREEMENT * implied:
            how = f"2 x {self.array[0]} x {self.array[1]}" if self.array else f"{self.lanes} lanes"
            raise ValueError(
                f"throughput {format_quantity(self.throughput, 'OPS')} disagrees with {how} x "
                f"{format_quantity(self.clock or 0, 'Hz')} = {format_quantity(implied, 'OPS')}; "
                "give one of them, or make them agree"
            )
        return self

    @property
    def macs_per_cycle(self) -> int:
        """The array's PEs (0 without an array)."""
        return self.array[0] * self.array[1] if self.array else 0


class FittedValue(_Strict):
    """A profile value that no specification gave, fitted to a measurement instead: ``hwsim validate`` reports
    the case it was fitted on apart from the held-out ones."""

    field: str = Field(description="the value's dotted path, e.g. compute.matrix.dispatch")
    case: str = Field(description="the validation case it was fitted on, e.g. coral-edge-tpu/mobilenet-v1")
    note: str = Field("", description="how it was fitted")


class HardwareSpec(_Strict):
    name: str
    description: str = ""
    memory: Memory
    compute: dict[str, ComputeUnit] = Field(min_length=1)
    precision: Precision = Precision.FP32
    energy: EnergySpec | None = Field(None, description="energy per event; published defaults when absent")
    area: AreaSpec | None = Field(None, description="MAC units and node, for the profile's silicon area")
    steady_state: bool = Field(
        False, description="repeated inference: weights that fit stay on chip across images (docs/accelerators.md)"
    )
    fitted: tuple[FittedValue, ...] = Field((), description="values fitted to a measurement, not specified")

    @model_validator(mode="after")
    def _fitted_values_exist(self) -> HardwareSpec:
        """A fitted value is a number, an array's shape or a dataflow: never a whole section, nor free text (the
        name, a description)."""
        for value in self.fitted:
            node: Any = self
            for part in value.field.split("."):
                if isinstance(node, dict):
                    node = node.get(part)
                else:  # a declared field, not any attribute (a method, a property, ``__class__``)
                    fields = type(node).model_fields if isinstance(node, BaseModel) else {}
                    node = getattr(node, part) if part in fields else None
                if node is None:
                    raise ValueError(f"fitted names {value.field!r}, which is not a value of this profile")
            if isinstance(node, (BaseModel, dict)) or (isinstance(node, str) and not isinstance(node, Enum)):
                raise ValueError(f"fitted names {value.field!r}, which is not a value of this profile")
        return self

    @field_validator("name")
    @classmethod
    def _visible_name(cls, name: str) -> str:
        if problem := text_problem(name):
            raise ValueError(problem)
        return name

    @field_validator("compute")
    @classmethod
    def _unit_names(cls, compute: dict[str, ComputeUnit]) -> dict[str, ComputeUnit]:
        """A unit's name is printed in reports and error lines, and is a part of a dotted field a sweep varies
        (compute.matrix.throughput): visible text, without '.'."""
        for unit_name in compute:
            problem = text_problem(unit_name) or ("names are without '.'" if "." in unit_name else None)
            if problem:
                raise ValueError(f"unit name {unit_name[:MAX_NAME_LENGTH]!r}: {problem}")
        return compute

    @field_validator("compute")
    @classmethod
    def _every_op_has_a_unit(cls, compute: dict[str, ComputeUnit]) -> dict[str, ComputeUnit]:
        claimed: dict[Op, str] = {}
        for unit_name, unit in compute.items():
            for op in unit.ops:
                if op in claimed:
                    where = (
                        f"twice under {unit_name!r}"
                        if claimed[op] == unit_name
                        else f"under both {claimed[op]!r} and {unit_name!r}"
                    )
                    raise ValueError(f"op {op.value!r} is listed {where}")
                claimed[op] = unit_name
        for op in Op:
            if op not in claimed and _default_unit(op) not in compute:
                raise ValueError(
                    f"no compute unit for op {op.value!r}: add a unit named {_default_unit(op)!r} "
                    f"or list {op.value!r} under one of {sorted(compute)}"
                )
        return compute

    @field_validator("energy", "area")
    @classmethod
    def _sections_name_units(
        cls, section: EnergySpec | AreaSpec | None, info: ValidationInfo
    ) -> EnergySpec | AreaSpec | None:
        if section is not None and "compute" in info.data:
            check_unit_names(section, info.data["compute"])
            units = info.data["compute"].values()
            if isinstance(section, EnergySpec) and section.array is not None and all(u.array is None for u in units):
                raise ValueError("array: no compute unit has an `array`, so no PE registers or links to charge")
        return section

    def unit_for(self, op: Op) -> str:
        """Name of the compute unit that runs ``op``."""
        for unit_name, unit in self.compute.items():
            if op in unit.ops:
                return unit_name
        return _default_unit(op)

    def throughput(self, op: Op) -> float:
        return self.compute[self.unit_for(op)].throughput

    @property
    def timed_by_peak(self) -> bool:
        """Whether every time follows from bytes over the bandwidth and ops over peak throughputs alone: no array,
        no fixed costs, the whole bandwidth, no steady state (what the vectorised paper sweep computes)."""
        external = self.memory.external
        return (
            external.achievable == 1.0
            and external.setup == 0.0
            and not self.steady_state
            and all(unit.array is None and unit.dispatch == 0.0 for unit in self.compute.values())
        )


def _implied_throughput(array: Any, lanes: Any, clock: float) -> float | None:
    """2 x rows x cols x clock for an array, lanes x clock for lanes (one op a lane a cycle), else None."""
    if array is not None:
        rows, cols = array
        return 2.0 * int(rows) * int(cols) * clock
    return int(lanes) * clock if lanes is not None else None


def _default_unit(op: Op) -> str:
    """The unit an op runs on unless the profile lists it under another: its trait (``matrix`` or ``vector``)."""
    return TRAITS[op].unit.value


def load_hardware(name_or_path: str | Path) -> HardwareSpec:
    """A hardware profile file, or a bundled one by name (``paper-accelerator``); bad input raises
    :class:`hwsim.errors.InputError`."""
    doc = load_yaml(bundled.resolve("hardware", name_or_path))
    return validate(HardwareSpec, doc.data, doc)


def bundled_hardware(name: str) -> HardwareSpec:
    """A bundled hardware profile by name, never a file of that name in the current folder."""
    doc = load_yaml(bundled.path("hardware", name))
    return validate(HardwareSpec, doc.data, doc)
