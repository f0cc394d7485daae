"""Row stationary (Eyeriss v1): a layer's mapping, its cycles and what it moves, from the published description.

Chen, Krishna, Emer, Sze, IEEE JSSC 52(1) 2017, Sec. IV (and Chen, Emer, Sze, ISCA 2016). Notation is theirs: a
group's convolution has N images, C channels, M filters of R x S, an E x F ofmap at stride U.

- A PE runs a 1-D convolution: a filter row against an ifmap row, S weights and a sliding window of S ifmap
  values in its scratch pads, one partial sum per filter. It interleaves p filters and q channels, so its pads
  hold p x q x S weights, q x S ifmap values and p partial sums.
- A PE set is R PEs high (one per filter row) and e wide (one per ofmap row, e <= E; E strip-mined into e when
  the set would not fit); a set wider than the array's columns is cut into segments stacked vertically (AlexNet's
  CONV2: 5 x 27 as 5 x 14 over 5 x 13). Partial sums accumulate up a column; ifmap rows are multicast
  diagonally, filter rows horizontally. The array holds r x t sets, on r channel groups of t filter groups.
- A processing pass runs q x r channels of p x t filters for n images and e ofmap rows; it reads its ifmaps from
  the global buffer once (the t filter sets share them), its filters once, and reads and writes the partial sums
  of its p x t filters once. The buffer holds, in whole banks, the ifmap rows of one pass and the partial sums of
  m >= p x t filters (m a multiple of p x t), for e rows of n images. Table III lists these choices per AlexNet
  layer; they were chosen by an optimisation over each level's energy and the chip's resources (ISCA 2016).

So per layer: ``passes = ceil(E / e) x ceil(N / n) x ceil(C / qr) x ceil(M / pt)``, each keeping its active PEs
busy ``n x F x p x q x S`` cycles (a partial pass as long as a full one); the buffer reads the ifmap of every
filter pass and strip (rows shared by adjacent strips read again), the partial sums of every output once per
channel pass but the first, and writes them once per channel pass. A pass cannot run faster than its networks
deliver: ``cycles = max(PE cycles, ifmap reads / ifmap bus, filter reads / filter bus, psum reads / psum bus)``
(values a cycle; the bus that returns partial sums is not bounded, its width not being published).

The mapping space is the one Timeloop's model of Eyeriss allows (NVlabs/timeloop, configs/mapper/eyeriss-256.yaml,
``constraints_rowstationary``; Accelergy-Project/timeloop-accelergy-exercises, example_designs/eyeriss_like/arch.yaml):
the global buffer keeps ifmaps and partial sums and bypasses weights; a PE's psum pad loops only over filters (p),
its filter pad over channels and the filter's width (q, S), its ifmap pad over nothing more; the array's rows hold
whole filters' rows, channels and filters (R, r, t), its columns only ofmap rows and filters (e, t), so channel sets
are stacked, never side by side, and their partial sums add up a column; the buffer holds whole ofmap rows (F) and
loops over images and filters (n, m); strips and channels loop outside it, channels innermost, so the partial sums
of m filters wait in the buffer while every channel streams through. hwsim adds what Timeloop cannot say: a set
wider than the array folded into segments (JSSC's CONV2) and factors that need not divide their dimension (JSSC's
CONV1, e = 7 of 55).

The choice: every legal mapping (pads, array, whole banks of the buffer) is costed, and the one that moves the
fewest values over DRAM taken, then the least energy x cycles, then the fewest cycles; energy at ISCA 2016's ladder
(DRAM 200, buffer 6, inter-PE 2, pad 1) over the data movement the choice changes. JSSC 2017 says Eyeriss maps to
minimise the whole system's energy, DRAM included, and at 200 x a buffer access DRAM decides it. This order was
chosen after comparing objectives with Table III (docs/accelerators.md, "Row stationary"): it reproduces all five of
AlexNet's mappings where energy x cycles alone gave three, and Timeloop's own mapper setting (delay, then energy)
two. A filter taller than the array or wider than the ifmap pad is cut into pieces that accumulate like channels.
Pure functions of a layer's shape and a unit's geometry, cached by shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from hwsim.cost.movement import ArrayAccesses
from hwsim.model.graph import Layer
from hwsim.ops import ConvAttrs, Op
from hwsim.spec.energy import ACCESS_LADDER
from hwsim.spec.hardware import RowStationary


@dataclass(frozen=True)
class ConvShape:
    """One group's convolution in Eyeriss's notation, its filter already cut to fit (``pieces`` per filter)."""

    groups: int
    n: int
    c: int
    m: int
    r: int
    s: int
    e: int
    f: int
    u: int
    rows_in: int
    """Input rows a window spans (R, or more when dilated)."""
    width_in: int
    """Input columns one ofmap row reads: (F - 1) x U + the window's width."""
    macs: int
    """The layer's true MACs (all groups and images)."""

    @property
    def outputs(self) -> int:
        """Output values, all groups and images."""
        return self.groups * self.n * self.m * self.e * self.f


@dataclass(frozen=True)
class Mapping:
    """Table III's parameters for one layer, and what follows from them."""

    e: int
    segments: int
    r: int
    t: int
    p: int
    q: int
    n: int
    m: int
    active_pes: int
    cycles: int
    compute_cycles: int
    movement: ArrayAccesses
    energy: float
    """Relative energy of the data movement the mapping chooses between (ISCA 2016 ladder, in MACs)."""
    dram: int
    """Values the mapping's loop order moves over DRAM (the schedule's own traffic is counted apart)."""


def conv_shape(layer: Layer, batch: int, array_rows: int, rs: RowStationary) -> ConvShape | None:
    """The layer as Eyeriss sees it; None for an op without filters (no mapping: it runs at the peak)."""
    if layer.op is Op.DENSE:
        c, m = layer.input_shape[2], layer.output_shape[2]
        return ConvShape(1, batch, c, m, 1, 1, 1, 1, 1, 1, 1, batch * c * m)
    if layer.op not in (Op.CONV, Op.DWCONV):
        return None
    a = layer.attrs
    assert isinstance(a, ConvAttrs)
    (kh, kw), (eh, ew) = a.kernel, a.extent
    e, f, m_all = layer.output_shape
    c = layer.input_shape[2] // a.groups
    macs = batch * e * f * m_all * c * kh * kw
    row_pieces, col_pieces = math.ceil(kh / array_rows), math.ceil(kw / rs.ifmap_spad)
    r, s = math.ceil(kh / row_pieces), math.ceil(kw / col_pieces)
    rows_in = math.ceil(eh / row_pieces)
    width_in = (f - 1) * a.stride[1] + math.ceil(ew / col_pieces)
    return ConvShape(
        a.groups,
        batch,
        c * row_pieces * col_pieces,
        m_all // a.groups,
        r,
        s,
        e,
        f,
        a.stride[0],
        rows_in,
        width_in,
        macs,
    )


def _loads(shape: ConvShape, e: int, n: int) -> tuple[int, int, int, int]:
    """(strips, image passes, ifmap values, filter reads) of a mapping with strips ``e`` rows high and ``n`` images a
    pass: what its DRAM values (:func:`mapping_cost`) and the search's bound on them (:func:`best_mapping`) share."""
    sh = shape
    strips, image_passes = math.ceil(sh.e / e), math.ceil(sh.n / n)
    rows_read = (sh.e - strips) * sh.u + strips * sh.rows_in  # every strip reads its own rows, shared ones again
    ifmap_values = sh.groups * sh.n * sh.c * rows_read * sh.width_in
    weights = sh.groups * sh.m * sh.c * sh.r * sh.s
    return strips, image_passes, ifmap_values, weights * strips * image_passes


def _dram(shape: ConvShape, ifmap_values: int, filter_reads: int, m: int) -> int:
    """Values a mapping moves over DRAM: the ifmap once per group of ``m`` filters, the filters once per strip and
    group of n images (:func:`_loads`), the ofmap once."""
    return ifmap_values * math.ceil(shape.m / m) + filter_reads + shape.outputs


def mapping_cost(
    shape: ConvShape, rs: RowStationary, e: int, r: int, t: int, p: int, q: int, n: int, m: int
) -> tuple[int, int, ArrayAccesses, float, int]:
    """(cycles, PE cycles, accesses, relative energy, DRAM values) of one mapping of ``shape`` (see the module's
    docstring)."""
    sh = shape
    strips, image_passes, ifmap_values, filter_reads = _loads(sh, e, n)
    channel_passes = math.ceil(sh.c / (q * r))
    filter_passes = math.ceil(sh.m / (p * t))
    passes = sh.groups * strips * image_passes * channel_passes * filter_passes
    compute = passes * n * sh.f * p * q * sh.s
    ifmap_reads = ifmap_values * filter_passes
    outputs = sh.outputs
    psum_writes, psum_reads = outputs * channel_passes, outputs * (channel_passes - 1)
    cycles = max(
        compute,
        math.ceil(ifmap_reads / rs.ifmap_bus),
        math.ceil(filter_reads / rs.filter_bus),
        math.ceil(psum_reads / rs.psum_bus),
    )
    # Pads: every MAC reads a weight, an ifmap value and a partial sum and writes the sum; a delivered ifmap
    # value is written into the pads of the R PEs on its diagonal in each of the t sets, a weight into the e PEs
    # of its row. Links: a partial sum climbs the R x r PEs that add to it, once per channel pass.
    register = 4 * sh.macs + ifmap_reads * sh.r * t + filter_reads * e
    inter_pe = outputs * channel_passes * (sh.r * r - 1)
    movement = ArrayAccesses(sh.macs, ifmap_reads, filter_reads, psum_reads, psum_writes, register, inter_pe)
    dram = _dram(sh, ifmap_values, filter_reads, m)
    ladder = ACCESS_LADDER
    energy = (
        ladder["dram"] * dram
        + ladder["buffer"] * (ifmap_values * math.ceil(sh.m / m) + ifmap_reads + psum_reads + psum_writes)
        + ladder["inter_pe"] * inter_pe
        + ladder["register"] * register
    )
    return cycles, compute, movement, energy, dram


def _strip_heights(shape: ConvShape, rows: int, cols: int) -> range:
    """The strip heights ``e`` whose sets fit the array's rows, their segments stacked: ``R x ceil(e / cols) <=
    rows``, so e up to ``cols x (rows // R)``."""
    return range(1, min(shape.e, cols * (rows // shape.r)) + 1)


def _candidates(
    shape: ConvShape,
    rows: int,
    cols: int,
    rs: RowStationary,
    value: int,
    heights: Iterable[int] | None = None,
    worth: Callable[[int, int], bool] | None = None,
) -> Iterator[tuple[int, ...]]:
    """The legal (e, segments, r, t, p, q, n, m, active PEs): pads, array and the buffer's whole banks allow them.
    Channel sets are stacked up the array's rows, filter sets up and across it (Timeloop's Eyeriss constraints:
    the columns take no channels, see the module's docstring). Pruned where a choice only wastes: a layout of sets
    that leaves over half the room it could fill idle, a p that splits the filters into more than the fewest even
    passes plus two, more than 16 images a pass. In the order (e, q, r, t, n, p), over the strip ``heights`` in the
    order given (all, ascending, by default), skipping the (e, n) that ``worth`` says cannot win."""
    sh = shape
    banks = int(rs.buffer // rs.bank)
    for e in _strip_heights(sh, rows, cols) if heights is None else heights:
        segments = math.ceil(e / cols)
        high, across = rows // (sh.r * segments), cols // min(e, cols)
        rows_in = (e - 1) * sh.u + sh.rows_in
        images = [n for n in range(1, min(sh.n, 16) + 1) if worth is None or worth(e, n)]
        if not images:
            continue
        for q in range(1, min(rs.ifmap_spad // sh.s, sh.c) + 1):
            r_max = math.ceil(sh.c / q)
            room = max(r * min(across * (high // r), sh.m) for r in range(1, min(high, r_max) + 1))
            for r in range(1, min(high, r_max) + 1):
                # the buffer's room for partial sums once a pass's ifmap rows have their banks, per n
                psum_rooms = [
                    (n, (banks - math.ceil(q * r * rows_in * sh.width_in * n * value / rs.bank)) * rs.bank)
                    for n in images
                ]
                for t in range(room // (2 * r) + 1, min(across * (high // r), sh.m) + 1):  # 2 r t > room
                    if psum_rooms[0][1] < e * sh.f * images[0] * value * t:
                        break  # not one filter a set fits, nor with more filters or images
                    p_max = min(rs.psum_spad, rs.filter_spad // (q * sh.s), math.ceil(sh.m / t))
                    if p_max < 1:
                        continue
                    least = math.ceil(sh.m / (t * p_max))
                    ps = {math.ceil(sh.m / (t * k)) for k in range(least, least + 3)} & set(range(1, p_max + 1))
                    for n, psum_room in psum_rooms:
                        for p in sorted(ps):
                            pt = p * t
                            m = min(int(psum_room // (e * sh.f * n * value * pt)) * pt, math.ceil(sh.m / pt) * pt)
                            if m >= pt:
                                yield e, segments, r, t, p, q, n, m, r * t * sh.r * e


def costed_mappings(shape: ConvShape, rows: int, cols: int, rs: RowStationary, value: int) -> Iterator[Mapping]:
    """Every legal mapping of ``shape`` with its cost: the space :func:`best_mapping` chooses from, open so that a
    study can ask which mappings agree with a published figure (benchmarks/eyeriss.py)."""
    for e, segments, r, t, p, q, n, m, active in _candidates(shape, rows, cols, rs, value):
        cycles, compute, movement, energy, dram = mapping_cost(shape, rs, e, r, t, p, q, n, m)
        yield Mapping(e, segments, r, t, p, q, n, m, active, cycles, compute, movement, energy, dram)


def mapping_rank(mapping: Mapping) -> tuple[int, float, int]:
    """The search's order: fewest values over DRAM, then least energy x cycles, then fewest cycles."""
    return mapping.dram, mapping.energy * mapping.cycles, mapping.cycles


@lru_cache(maxsize=4096)
def best_mapping(shape: ConvShape, rows: int, cols: int, rs: RowStationary, value: int) -> Mapping:
    """The first of :func:`costed_mappings` in :func:`mapping_rank`'s order; raises if none fits (a filter row wider
    than the ifmap pad cannot happen: :func:`conv_shape` cuts it).

    The same mapping as ranking every one, found in a fraction of the time (the space grows with the array: ResNet-18
    has over a million legal mappings on 64 x 64 PEs): a mapping's DRAM values, which rank first, are counted
    before the rest of its cost, and the (e, n) whose DRAM values cannot come down to the best so far (an ifmap
    loaded once, every other term fixed by e and n) are not enumerated. Tall strips load the filters fewest times,
    so they are searched first; a tie on every rank goes to the mapping the enumeration meets first, as ``min`` over
    :func:`costed_mappings` would, by ranking the enumeration's own order (e, q, r, t, n, p) last."""
    sh = shape
    loads = {}
    best_key: tuple[float, ...] | None = None
    best: tuple[int, ...] = ()

    def worth(e: int, n: int) -> bool:
        loads[e, n] = _, _, ifmap_values, filter_reads = _loads(sh, e, n)
        return best_key is None or _dram(sh, ifmap_values, filter_reads, sh.m) <= best_key[0]  # every filter a group

    for candidate in _candidates(sh, rows, cols, rs, value, reversed(_strip_heights(sh, rows, cols)), worth):
        e, _, r, t, p, q, n, m, _ = candidate
        _, _, ifmap_values, filter_reads = loads[e, n]
        dram = _dram(sh, ifmap_values, filter_reads, m)
        if best_key is not None and dram > best_key[0]:
            continue
        cycles, _, _, energy, _ = mapping_cost(sh, rs, e, r, t, p, q, n, m)
        key = (dram, energy * cycles, cycles, e, q, r, t, n, p)
        if best_key is None or key < best_key:
            best_key, best = key, candidate
    if best_key is None:
        raise ValueError(f"no row-stationary mapping fits {shape} on {rows}x{cols} PEs")
    e, segments, r, t, p, q, n, m, active = best
    cycles, compute, movement, energy, dram = mapping_cost(sh, rs, e, r, t, p, q, n, m)
    return Mapping(e, segments, r, t, p, q, n, m, active, cycles, compute, movement, energy, dram)


def layer_mapping(layer: Layer, batch: int, array: tuple[int, int], rs: RowStationary, value: int) -> Mapping | None:
    """``layer``'s mapping over ``batch`` images (None for an op without filters)."""
    shape = conv_shape(layer, batch, array[0], rs)
    return None if shape is None else best_mapping(shape, *array, rs, value)
