"""Feature maps run-length coded over the external link (Eyeriss v1's code), sized from their zero fractions.

Eyeriss (Chen et al., IEEE JSSC 52(1) 2017, its run-length compression) stores feature maps in DRAM run-length
coded: a 64-bit word holds three pairs of a 5-bit run of zeros and the 16-bit value that follows it, and a bit to
spare. A run longer than 31 zeros is split: the pair holds 31 zeros and a zero as its value. On chip the maps are
decoded, so only the bytes over the external link change; weights are never coded.

How many pairs a map takes depends on where its zeros are, which is a property of the data, not of the chip: hwsim
takes each map's fraction of zeros ``z`` as an input of the run and assumes them independent. A pair then ends at
the first non-zero value or after 32 zeros, so it covers ``1 + z + ... + z^31 = (1 - z^32) / (1 - z)`` values on
average, and

    coded bytes / raw bytes = (8 / pairs a word) x (1 - z) / (1 - z^32) / bytes a value    (1/32 pairs at z = 1)

At 16-bit values, three pairs a word: 4/3 x (1 - z) / (1 - z^32). Values wider or narrower than 16 bits take as
many pairs a word as fit beside their 5-bit runs (an extrapolation of Eyeriss's code). A map the code would make
larger than raw (below about 25 % zeros at 16 bits) crosses raw, and so does a map whose zeros were not given:
hwsim never invents a sparsity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from hwsim.cost.inference import LayerCost
from hwsim.errors import InputError
from hwsim.model.graph import INPUT
from hwsim.spec.zeros import is_fraction

EYERISS_RLC = "eyeriss-rlc"
RUN_BITS = 5
"""Bits of a pair's run of zeros: runs up to 31."""
WORD_BITS = 64

MapZeros = float | Mapping[str, float] | None
"""The maps' zero fractions a run is given: one for every map, per map (a layer's name for its output, ``input``
for the network's input), or none (every map raw)."""


def pairs_per_value(zeros: float) -> float:
    """Expected (run, value) pairs per value of a map whose values are zero independently with probability
    ``zeros``: a pair ends at a non-zero or after 2^RUN_BITS zeros (module docstring)."""
    longest = 2**RUN_BITS
    if zeros >= 1.0:
        return 1.0 / longest
    return (1.0 - zeros) / (1.0 - zeros**longest)


def coded_ratio(zeros: float, value_bytes: int) -> float:
    """Bytes over the link per byte of a map with ``zeros`` zero fraction, coded; at most 1 (a map the code would
    grow crosses raw)."""
    pairs_per_word = WORD_BITS // (RUN_BITS + 8 * value_bytes)
    return min(1.0, WORD_BITS / 8 / pairs_per_word * pairs_per_value(zeros) / value_bytes)


def link_bytes(size: int, ratio: float) -> int:
    """Bytes a transfer of ``size`` bytes on chip puts on the link at ``ratio`` (whole bytes, rounded up)."""
    return size if ratio >= 1.0 else math.ceil(size * ratio)


def check_zeros(zeros: float, where: str) -> float:
    if not is_fraction(zeros):
        raise InputError(f"{where}: zero fraction must be a number from 0 to 1, not {zeros!r}")
    return float(zeros)


def code_maps(costs: tuple[LayerCost, ...], value_bytes: int, zeros: MapZeros) -> tuple[LayerCost, ...]:
    """``costs`` with ``output_link`` (and ``input_link`` for the network's input) set to the coded ratio of each
    map whose zeros are given. Unknown names are refused: a misspelt layer would silently move raw."""
    if zeros is None:
        return costs
    if isinstance(zeros, Mapping):
        known = {c.name for c in costs} | {INPUT}
        for name, value in zeros.items():
            if name not in known:
                raise InputError(f"map zeros: no layer {name!r} in the network (or {INPUT!r} for its input)")
            check_zeros(value, f"map zeros: {name}")
        given = dict(zeros)
    else:
        every = check_zeros(zeros, "map zeros")
        given = {name: every for name in [INPUT, *(c.name for c in costs)]}
    ratio = {name: coded_ratio(z, value_bytes) for name, z in given.items()}
    return tuple(
        replace(
            c,
            output_link=ratio.get(c.name, 1.0),
            input_link=ratio.get(INPUT, 1.0) if INPUT in c.layer.inputs else 1.0,
        )
        for c in costs
    )
