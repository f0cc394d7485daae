"""The ``energy:`` and ``area:`` sections of a hardware profile, and the published tables behind their defaults.

Every section and field is optional: a profile without them is charged the published figures below
(docs/energy.md lists them with their sources and nodes). Values a profile gives replace the
defaults one by one. Units as people write them: ``3.7 pJ``, ``20 pJ/B`` or ``8 pJ/bit``, ``50 mW``,
``65 nm``, ``4000 um2``.

Status of every default: *published* (a figure read from the cited source), *derived* (computed from
published figures by a rule stated beside it), *rule of thumb*. None is fitted to a measurement.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from hwsim.units import parse_physical

if TYPE_CHECKING:
    import numpy as np

    from hwsim.spec.hardware import HardwareSpec

Energy = Annotated[float, BeforeValidator(lambda v: parse_physical(v, "energy"))]
EnergyPerByte = Annotated[float, BeforeValidator(lambda v: parse_physical(v, "energy_per_byte"))]
Power = Annotated[float, BeforeValidator(lambda v: parse_physical(v, "power"))]
Length = Annotated[float, BeforeValidator(lambda v: parse_physical(v, "length"))]
Area = Annotated[float, BeforeValidator(lambda v: parse_physical(v, "area"))]

PJ = 1e-12
UM2 = 1e-12
"""One square micrometre in m²."""
MM2 = 1e-6

ENERGY_PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int16")
"""Precisions the tables know; ``int16`` ahead of the run option, for 16-bit fixed-point designs such as Eyeriss."""

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm, 0.9 V (published):
# add: 8-bit int 0.03 pJ, 32-bit int 0.1, 16-bit float 0.4, 32-bit float 0.9;
# multiply: 8-bit int 0.2 pJ, 32-bit int 3.1, 16-bit float 1.1, 32-bit float 3.7.
_HOROWITZ_ADD_PJ = {"int8": 0.03, "int32": 0.1, "fp16": 0.4, "fp32": 0.9}
_HOROWITZ_MUL_PJ = {"int8": 0.2, "int32": 3.1, "fp16": 1.1, "fp32": 3.7}
# 16-bit int multiply (derived): interpolated on log(energy) over log(width) between the 8- and 32-bit points
# (multiplier energy grows about as width squared: 3.1 / 0.2 = 4^1.98), giving 0.787 pJ.
_INT16_MUL_PJ = _HOROWITZ_MUL_PJ["int8"] * 2 ** (math.log(_HOROWITZ_MUL_PJ["int32"] / _HOROWITZ_MUL_PJ["int8"]) / 2)

MUL_PJ = {
    "fp32": _HOROWITZ_MUL_PJ["fp32"],
    "fp16": _HOROWITZ_MUL_PJ["fp16"],
    "bf16": _HOROWITZ_MUL_PJ["fp16"],  # no published bf16 figure: fp16's, an upper bound (8-bit vs 11-bit significand)
    "int8": _HOROWITZ_MUL_PJ["int8"],
    "int16": _INT16_MUL_PJ,
}
ACCUMULATE_PJ = {
    "fp32": _HOROWITZ_ADD_PJ["fp32"],
    "fp16": _HOROWITZ_ADD_PJ["fp16"],
    "bf16": _HOROWITZ_ADD_PJ["fp16"],
    "int8": _HOROWITZ_ADD_PJ["int32"],  # integer products are accumulated in 32 bits
    "int16": _HOROWITZ_ADD_PJ["int32"],
}
DEFAULT_MAC_J = {p: (MUL_PJ[p] + ACCUMULATE_PJ[p]) * PJ for p in ENERGY_PRECISIONS}
"""A multiply-accumulate: one multiply at the precision and one add at the accumulator's (45 nm)."""
DEFAULT_OP_J = {p: MUL_PJ[p] * PJ for p in ENERGY_PRECISIONS}
"""Any other op (add, compare, multiply, ...) at the multiply's energy: an upper bound for the element-wise ops
hwsim counts (batch norm is half multiplies; a divide or an exp costs more, but they are few)."""

ACCESS_LADDER = {"register": 1.0, "inter_pe": 2.0, "buffer": 6.0, "dram": 200.0}
"""Chen, Emer, Sze, "Eyeriss: A Spatial Architecture for Energy-Efficient Dataflow for CNNs", ISCA 2016, Table IV
(published): the energy of one access at each level of Eyeriss's hierarchy relative to one MAC, extracted from a
commercial 65 nm process for 16-bit values: a PE's register file (0.5 kB) 1x, a value passed between PEs 2x, the
global buffer (> 100 kB) 6x, DRAM 200x. The defaults of ``energy.array`` take the first two."""

SRAM_READ_64BIT = ((8 * 1024, 10.0 * PJ), (32 * 1024, 20.0 * PJ), (1024 * 1024, 100.0 * PJ))
"""Horowitz ISSCC 2014, 45 nm (published): a 64-bit read of an 8 KB, 32 KB, 1 MB SRAM."""

DRAM_64BIT_J = 1.3e-9
"""Horowitz ISSCC 2014, 45 nm (published): a 64-bit DRAM access costs 1.3-2.6 nJ; the default takes the low end
(20.3 pJ/bit), so that the external share is not overstated."""


class DramType(str, Enum):
    """DRAM types with a published energy per bit."""

    LPDDR4 = "lpddr4"
    LPDDR = "lpddr"
    DDR3 = "ddr3"
    GDDR5 = "gddr5"
    HBM2 = "hbm2"


DRAM_PJ_PER_BIT = {
    # Accelergy's CACTI plug-in (Accelergy-Project/accelergy-cacti-plug-in, cacti_wrapper.py, DRAM_estimate_energy),
    # with the sources it names: LPDDR4 "public data"; LPDDR and DDR3 Malladi et al., ISCA 2012; GDDR5 and HBM2
    # Chatterjee et al., MICRO 2017. Read and write cost the same. No DDR4 figure there: give `transfer` for DDR4.
    DramType.LPDDR4: 8.0,
    DramType.LPDDR: 40.0,
    DramType.DDR3: 70.0,
    DramType.GDDR5: 14.0,
    DramType.HBM2: 3.9,
}

# Aladdin (Shao et al., ISCA 2014), common/power_func.h: function units synthesised for a commercial 40 nm process
# at a 1 ns cycle (published): 32-bit int adder 277.98 um2, multiplier 6351.34 um2; single-precision float
# 3-stage adder 4361.09 um2, multiplier 8967.11 um2.
AREA_NODE = 40e-9
_INT32_ADD_UM2, _INT32_MUL_UM2 = 277.98, 6351.34
_FP32_ADD_UM2, _FP32_MUL_UM2 = 4361.09, 8967.11
DEFAULT_MAC_AREA_M2 = {
    "fp32": (_FP32_MUL_UM2 + _FP32_ADD_UM2) * UM2,  # published parts, summed
    # derived with Accelergy's width scaling of Aladdin's units (hwcomponents-library): a multiplier's area grows
    # as its width squared (float: significand width, 11 bits for fp16 and 8 for bf16 against 24), an adder's
    # linearly; integer products accumulate in a 32-bit adder
    "fp16": (_FP32_MUL_UM2 * (11 / 24) ** 2 + _FP32_ADD_UM2 * 16 / 32) * UM2,
    "bf16": (_FP32_MUL_UM2 * (8 / 24) ** 2 + _FP32_ADD_UM2 * 16 / 32) * UM2,
    "int8": (_INT32_MUL_UM2 * (8 / 32) ** 2 + _INT32_ADD_UM2) * UM2,
    "int16": (_INT32_MUL_UM2 * (16 / 32) ** 2 + _INT32_ADD_UM2) * UM2,
}
"""One MAC unit at 40 nm, m²; scaled to a profile's node by (node / 40 nm)²."""
SRAM_CELL_F2 = 600
"""Rule of thumb: an SRAM bit takes about 600 F² (F the feature size) with its share of the periphery
(D. J. Greaves, System-on-Chip Design lecture notes, Cambridge, "45nm SRAM Memory Area", after CACTI)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


S = TypeVar("S", bound=_Strict)


def _defaults(model: type[S]) -> S:
    """``model()``: every field at its default, which needs no checking, so no validator is built for it. A run on a
    profile without an energy section would otherwise build five (a tenth of ``hwsim estimate``'s start-up)."""
    return model.model_construct()


class UnitEnergy(_Strict):
    mac: Energy | None = Field(default=None, description="one multiply-accumulate")
    op: Energy | None = Field(default=None, description="one op that is not part of a MAC (add, compare, ...)")


class InternalEnergy(_Strict):
    read: EnergyPerByte | None = Field(default=None, description="per byte read from internal memory")
    write: EnergyPerByte | None = Field(default=None, description="per byte written to internal memory")


class ExternalEnergy(_Strict):
    type: DramType | None = Field(default=None, description="DRAM type with a published energy per bit")
    transfer: EnergyPerByte | None = Field(default=None, description="per byte moved over the external bus, either way")

    @model_validator(mode="after")
    def _one_source(self) -> ExternalEnergy:
        if self.type is not None and self.transfer is not None:
            raise ValueError("give either type or transfer, not both")
        return self


class ArrayEnergy(_Strict):
    """The levels below the internal memory of a systolic array (docs/energy.md): given, the array's PEs read the
    internal memory as their dataflow streams it and keep the rest in their registers (hwsim.cost.accesses)."""

    register_file: Energy | None = Field(
        default=None, description="one value read or written in a PE's register file; default 1 MAC (ISCA 2016)"
    )
    inter_pe: Energy | None = Field(
        default=None, description="one value passed from a PE to its neighbour; default 2 MACs (ISCA 2016)"
    )


class EnergySpec(_Strict):
    compute: dict[str, dict[str, UnitEnergy]] = Field(
        default_factory=dict, description="per compute unit, per precision: energy of a MAC and of an op"
    )
    array: ArrayEnergy | None = Field(
        default=None, description="PE registers and links of the profile's systolic arrays; not charged when absent"
    )
    internal: InternalEnergy = Field(default_factory=lambda: _defaults(InternalEnergy))
    external: ExternalEnergy = Field(default_factory=lambda: _defaults(ExternalEnergy))
    static: Power = Field(default=0.0, description="power drawn whether or not anything runs (leakage, clock)")

    @field_validator("compute")
    @classmethod
    def _known_precisions(cls, compute: dict[str, dict[str, UnitEnergy]]) -> dict[str, dict[str, UnitEnergy]]:
        for unit, table in compute.items():
            for precision in table:
                if precision not in ENERGY_PRECISIONS:
                    raise ValueError(
                        f"unknown precision {precision!r} under {unit!r}; choose one of {', '.join(ENERGY_PRECISIONS)}"
                    )
        return compute


class UnitArea(_Strict):
    units: int = Field(ge=1, description="MAC units (processing elements) in this compute unit")
    mac: Area | None = Field(default=None, description="area of one MAC unit at the profile's node")


class AreaSpec(_Strict):
    node: Length = Field(description="technology node the areas are for, e.g. 65 nm")
    compute: dict[str, UnitArea] = Field(default_factory=dict, description="MAC units per compute unit")
    sram_per_mb: Area | None = Field(default=None, description="area of 1 MB (10^6 bytes) of internal memory")

    @field_validator("node")
    @classmethod
    def _a_node(cls, node: float) -> float:
        if not 1e-9 <= node <= 1e-6:
            raise ValueError(f"a technology node between 1 nm and 1000 nm, got {node * 1e9:g} nm")
        return node


def check_unit_names(section: EnergySpec | AreaSpec, units: Iterable[str]) -> None:
    """Every unit an energy or area section names must be a compute unit of the profile."""
    for unit in section.compute:
        if unit not in units:
            raise ValueError(
                f"compute names unit {unit!r}, which the profile does not have; "
                f"its units are {', '.join(sorted(units))}"
            )


_SRAM_LOG_SIZES = tuple(math.log(size) for size, _ in SRAM_READ_64BIT)
_SRAM_LOG_J_PER_BYTE = tuple(math.log(energy / 8) for _, energy in SRAM_READ_64BIT)


def sram_read_j_per_byte(capacity_bytes: float | np.ndarray) -> float | np.ndarray:
    """Horowitz's 64-bit SRAM read energies per byte, interpolated linearly in log(energy) over log(capacity)
    between 8 KB, 32 KB and 1 MB, and extrapolated beyond them with the nearest segment's slope (energy grows as
    capacity^0.5 below 32 KB and capacity^0.46 above). Accepts an array of capacities (a sweep): each distinct
    one is computed as a single capacity is, so a sweep's point and an estimate of it agree to the last bit."""
    if isinstance(capacity_bytes, (int, float)):
        return _sram_read(capacity_bytes)
    import numpy as np

    capacities = np.asarray(capacity_bytes, dtype=float)
    distinct, where = np.unique(capacities, return_inverse=True)
    return np.array([_sram_read(c) for c in distinct.tolist()])[where].reshape(capacities.shape)


def _sram_read(capacity_bytes: float) -> float:
    """:func:`sram_read_j_per_byte` of one capacity, in the math module's floating point (correctly rounded where
    NumPy's AVX-512 ``exp`` is not; NumPy on a machine without AVX-512 gives the same bits), and NumPy's ``interp``
    arithmetic, ends and segment joints included."""
    sizes, energies = _SRAM_LOG_SIZES, _SRAM_LOG_J_PER_BYTE
    x = math.log(capacity_bytes)
    if x in sizes:
        return math.exp(energies[sizes.index(x)])
    segment = min(max(bisect.bisect(sizes, x) - 1, 0), len(sizes) - 2)  # the first or last beyond the table
    slope = (energies[segment + 1] - energies[segment]) / (sizes[segment + 1] - sizes[segment])
    origin = segment + 1 if x > sizes[-1] else segment
    return math.exp(slope * (x - sizes[origin]) + energies[origin])


@dataclass(frozen=True)
class EnergyTable:
    """What one event of each kind costs on a profile at one precision, in J, J/B and W."""

    mac_j: dict[str, float]
    """Per compute unit."""
    op_j: dict[str, float]
    internal_read_j_per_byte: float
    internal_write_j_per_byte: float
    external_j_per_byte: float
    static_w: float
    register_j: dict[str, float] = field(default_factory=dict)
    """Per array unit, one value read or written in a PE's register; empty without an ``energy.array`` section."""
    inter_pe_j: dict[str, float] = field(default_factory=dict)
    """Per array unit, one value passed between neighbouring PEs; empty without an ``energy.array`` section."""


def energy_table(hardware: HardwareSpec, precision: str) -> EnergyTable:
    """The profile's energy section over the published defaults, at ``precision``."""
    spec = hardware.energy or _defaults(EnergySpec)
    if precision not in ENERGY_PRECISIONS:
        raise ValueError(f"no energy figures for precision {precision!r}")
    given = {unit: spec.compute.get(unit, {}).get(precision, _defaults(UnitEnergy)) for unit in hardware.compute}
    read, write = internal_j_per_byte(spec.internal, hardware.memory.internal.capacity)
    mac_j = {unit: e.mac if e.mac is not None else DEFAULT_MAC_J[precision] for unit, e in given.items()}
    arrays = [unit for unit, u in hardware.compute.items() if u.array is not None] if spec.array is not None else []
    array = spec.array or _defaults(ArrayEnergy)
    return EnergyTable(
        mac_j=mac_j,
        op_j={unit: e.op if e.op is not None else DEFAULT_OP_J[precision] for unit, e in given.items()},
        internal_read_j_per_byte=float(read),
        internal_write_j_per_byte=float(write),
        external_j_per_byte=external_j_per_byte(spec.external),
        static_w=spec.static,
        register_j={u: _or_ladder(array.register_file, "register", mac_j[u]) for u in arrays},
        inter_pe_j={u: _or_ladder(array.inter_pe, "inter_pe", mac_j[u]) for u in arrays},
    )


def _or_ladder(given: float | None, level: str, mac_j: float) -> float:
    """A level's energy per access as given, else the ISCA 2016 ladder's multiple of the unit's MAC."""
    return given if given is not None else ACCESS_LADDER[level] * mac_j


def internal_j_per_byte(
    internal: InternalEnergy, capacity_bytes: float | np.ndarray
) -> tuple[float | np.ndarray, float | np.ndarray]:
    """(read, write) energy per byte of an internal memory of ``capacity_bytes`` (an array in a sweep): the
    profile's, else Horowitz's reads by capacity (:func:`sram_read_j_per_byte`), writes charged as reads
    (he gives reads only)."""
    read = internal.read if internal.read is not None else sram_read_j_per_byte(capacity_bytes)
    return read, internal.write if internal.write is not None else read


def external_j_per_byte(external: ExternalEnergy) -> float:
    if external.transfer is not None:
        return external.transfer
    if external.type is not None:
        return DRAM_PJ_PER_BIT[external.type] * 8 * PJ
    return DRAM_64BIT_J / 8


def area_mm2(hardware: HardwareSpec, precision: str) -> float:
    """Silicon area of the profile's MAC units and internal memory, mm²; NaN without an ``area:`` section.

    MAC units: the profile's area per unit, else the 40 nm default at ``precision`` scaled by (node / 40 nm)².
    Internal memory: ``sram_per_mb`` per 10^6 bytes, else 600 F² a bit. Control, interconnect, clock tree and
    I/O are not counted (docs/energy.md).
    """
    spec = hardware.area
    if spec is None:
        return math.nan
    scale = (spec.node / AREA_NODE) ** 2
    macs = sum(
        unit.units * (unit.mac if unit.mac is not None else DEFAULT_MAC_AREA_M2[precision] * scale)
        for unit in spec.compute.values()
    )
    capacity = hardware.memory.internal.capacity
    sram = (
        capacity / 1e6 * spec.sram_per_mb
        if spec.sram_per_mb is not None
        else capacity * 8 * SRAM_CELL_F2 * spec.node**2
    )
    return (macs + sram) / MM2
