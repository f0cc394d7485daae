"""The hardware profile: memories, compute units, which ops run where, and precision."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from hwsim import bundled
from hwsim.ops import TRAITS, Op
from hwsim.spec.energy import AreaSpec, EnergySpec, check_unit_names
from hwsim.spec.names import text_problem
from hwsim.spec.validate import validate
from hwsim.spec.yamlio import load_yaml
from hwsim.units import parse_quantity

Bytes = Annotated[float, BeforeValidator(lambda v: parse_quantity(v, "bytes"))]
BytesPerSecond = Annotated[float, BeforeValidator(lambda v: parse_quantity(v, "bandwidth"))]
OpsPerSecond = Annotated[float, BeforeValidator(lambda v: parse_quantity(v, "throughput"))]


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"

    @property
    def bytes(self) -> int:
        return {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}[self.value]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InternalMemory(_Strict):
    capacity: Bytes = Field(description="on-chip memory (SRAM), bytes")


class ExternalMemory(_Strict):
    bandwidth: BytesPerSecond = Field(description="external memory <-> internal memory, bytes/s")
    capacity: Bytes | None = Field(None, description="unlimited when absent")


class Memory(_Strict):
    internal: InternalMemory
    external: ExternalMemory


class ComputeUnit(_Strict):
    throughput: OpsPerSecond = Field(description="peak ops/s")
    ops: tuple[Op, ...] = Field((), description="ops this unit runs, overriding the default assignment")


class HardwareSpec(_Strict):
    name: str
    description: str = ""
    memory: Memory
    compute: dict[str, ComputeUnit] = Field(min_length=1)
    precision: Precision = Precision.FP32
    energy: EnergySpec | None = Field(None, description="energy per event; published defaults when absent")
    area: AreaSpec | None = Field(None, description="MAC units and node, for the profile's silicon area")

    @field_validator("name")
    @classmethod
    def _visible_name(cls, name: str) -> str:
        if problem := text_problem(name):
            raise ValueError(problem)
        return name

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
        return section

    def unit_for(self, op: Op) -> str:
        """Name of the compute unit that runs ``op``."""
        for unit_name, unit in self.compute.items():
            if op in unit.ops:
                return unit_name
        return _default_unit(op)

    def throughput(self, op: Op) -> float:
        return self.compute[self.unit_for(op)].throughput


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
