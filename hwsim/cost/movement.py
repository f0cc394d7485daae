"""What a layer moves at each level of an array: one record for every dataflow's model of it (the systolic
dataflows in :mod:`hwsim.cost.accesses`, row stationary in :mod:`hwsim.cost.rowstationary`)."""

from __future__ import annotations

from dataclasses import astuple, dataclass


@dataclass(frozen=True)
class ArrayAccesses:
    """Values moved at each level for one layer on an array (counts of values, not bytes)."""

    macs: int
    ifmap_reads: int
    """ifmap operand values read from internal memory into the array."""
    filter_reads: int
    psum_reads: int
    """Partial sums read back from internal memory to accumulate across row folds."""
    output_writes: int
    """Outputs and partial sums written to internal memory."""
    register: int
    """PE register reads and writes."""
    inter_pe: int
    """Values passed from a PE to its neighbour."""

    @property
    def sram_reads(self) -> int:
        return self.ifmap_reads + self.filter_reads + self.psum_reads

    def __add__(self, other: ArrayAccesses) -> ArrayAccesses:
        return ArrayAccesses(*(a + b for a, b in zip(astuple(self), astuple(other))))


NO_ACCESSES = ArrayAccesses(0, 0, 0, 0, 0, 0, 0)
