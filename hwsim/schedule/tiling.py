"""Segments: chains of steps run band by band through internal memory, shared by ``strict`` and ``optimized``.

A segment is a chain of steps (each a layer, or layers fused into one). It runs in bands of rows
of its last output; for every band, each tensor of the chain keeps resident exactly the rows the
band needs (the band plus the halo its consumers' kernels reach), so rows are computed once and
freed as soon as no later band needs them. The segment's inputs are either already resident whole
or loaded band by band; its output is either kept whole (the next segment reads it from internal
memory) or stored band by band. Weights stay resident for the whole segment, or, when a single
step's weights do not fit, are streamed in chunks of output channels for every band.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from hwsim.cost.inference import LayerCost
from hwsim.errors import InputError
from hwsim.model.graph import consumers_of
from hwsim.ops import TRAITS, Chunks
from hwsim.schedule.base import Action, Region, weights_of
from hwsim.schedule.program import Program, StepPlan
from hwsim.schedule.regions import Span, has_halo, input_rows

Group = tuple[LayerCost, ...]
"""Layers that run as one step."""


class CapacityError(InputError):
    """Not even one row of one step, with one channel of its weights, fits the internal memory."""


@dataclass(frozen=True)
class Tiling:
    band_rows: int
    """Rows of the segment's last output per band."""
    chunk_channels: int = 0
    """Output channels of weights per chunk, streamed for every band (0: all weights resident)."""
    keep_output: bool = False
    """The output stays internal whole instead of being stored band by band."""


@dataclass(frozen=True)
class Segment:
    groups: tuple[Group, ...]
    folded: tuple[tuple[str, ...], ...]
    """Per group, the batch norms folded into it."""

    @cached_property
    def costs(self) -> tuple[LayerCost, ...]:
        return tuple(c for g in self.groups for c in g)

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.costs)

    @cached_property
    def weight_bytes(self) -> int:
        return sum(c.weight_bytes for c in self.costs)

    @cached_property
    def released_by(self) -> dict[str, list[str]]:
        """Per layer, the tensors it is the segment's last reader of."""
        released: dict[str, list[str]] = {}
        for t, reader in _last_readers(self).items():
            released.setdefault(reader, []).append(t)
        return released

    @property
    def output(self) -> LayerCost:
        return self.groups[-1][-1]

    def inputs(self) -> tuple[str, ...]:
        """Tensors the segment reads that it does not produce, in order of first use."""
        return self._inputs

    @cached_property
    def _inputs(self) -> tuple[str, ...]:
        produced = {c.name for c in self.costs}
        return tuple(dict.fromkeys(n for c in self.costs for n in c.layer.inputs if n not in produced))


def chunkable(segment: Segment) -> bool:
    """A single step whose layers after the first work channel by channel can stream its weights in chunks
    (each op's :class:`hwsim.ops.Chunks`)."""
    if len(segment.groups) != 1:
        return False
    first, *rest = segment.groups[0]
    return TRAITS[first.layer.op].chunks is not Chunks.NO and all(TRAITS[c.layer.op].chunks is Chunks.ANY for c in rest)


def _union(a: Span | None, b: Span) -> Span:
    if b[1] <= b[0]:
        return a if a is not None else b
    return b if a is None or a[1] <= a[0] else (min(a[0], b[0]), max(a[1], b[1]))


EDGE_BANDS = 5
"""Bands at each end of a map that :func:`representative_needs` evaluates; the bands between them
are translations of one another, so their peaks repeat."""


def band_needs(segment: Segment, band_rows: int, indices: Iterable[int] | None = None) -> list[dict[str, Span]]:
    """For every band (or the consecutive bands ``indices``), the rows of every tensor the segment
    touches that the band needs.

    Rows a strided reader skips between bands join the next band (every row is computed once), and
    the last band also takes rows no reader needs, so all are computed."""
    costs = segment.costs
    out = segment.output.name
    height = segment.output.layer.output_shape[0]
    heights = {name: shape[0] for c in costs for name, shape in zip(c.layer.inputs, c.layer.input_shapes)}
    heights.update({c.name: c.layer.output_shape[0] for c in costs})
    readers = [(c.name, c.layer) for c in reversed(costs)]
    inputs = segment.inputs()
    bands: list[dict[str, Span]] = []
    previous: dict[str, Span] = {}
    for start in range(0, height, band_rows) if indices is None else (b * band_rows for b in indices):
        need: dict[str, Span] = {out: (start, min(start + band_rows, height))}
        for name, layer in readers:
            rows = need.get(name)
            if rows is None:
                continue
            if name in previous and rows[0] > previous[name][1]:
                rows = need[name] = (previous[name][1], rows[1])
            for t, span in zip(layer.inputs, input_rows(layer, rows)):
                need[t] = _union(need.get(t), span)
        for t in inputs:
            if t in need and t in previous and need[t][0] > previous[t][1]:
                need[t] = (previous[t][1], need[t][1])
        if start + band_rows >= height:
            need = {name: (lo, heights[name]) for name, (lo, hi) in need.items()}
        bands.append(need)
        previous = need
    return bands


def representative_needs(segment: Segment, band_rows: int) -> list[list[dict[str, Span]]]:
    """Runs of consecutive bands whose peaks are every band's: all bands of a short map, else the
    first and the last :data:`EDGE_BANDS` (the last run computed from one band earlier, whose rows
    it may take over, then dropped)."""
    count = math.ceil(segment.output.layer.output_shape[0] / band_rows)
    if count <= 2 * EDGE_BANDS + 1:
        return [band_needs(segment, band_rows)]
    return [
        band_needs(segment, band_rows, range(EDGE_BANDS)),
        band_needs(segment, band_rows, range(count - EDGE_BANDS - 1, count))[1:],
    ]


def _row_bytes(program: Program, tensor: str) -> int:
    full = program.full(tensor)
    return program.bytes(full) // full.rows[1]


def _last_readers(segment: Segment) -> dict[str, str]:
    """For every tensor the segment reads, the last of its layers that reads it."""
    return {name: c.name for c in segment.costs for name in c.layer.inputs}


def peak_bytes(
    program: Program,
    segment: Segment,
    whole: set[str],
    tiling: Tiling,
    runs: list[list[dict[str, Span]]],
    prefetch: bool,
) -> int:
    """Resident bytes at the busiest point of the segment, on top of what is resident before it,
    over runs of consecutive bands (:func:`representative_needs`)."""
    return max(_run_peak(program, segment, whole, tiling, needs, prefetch) for needs in runs)


def weights_held(segment: Segment, tiling: Tiling, prefetch: bool) -> int:
    """Weight bytes resident throughout the segment: all of them, or one chunk (two when double-buffered)."""
    if not tiling.chunk_channels:
        return segment.weight_bytes
    return math.ceil(segment.weight_bytes * tiling.chunk_channels / segment.output.layer.output_shape[2]) * (
        2 if prefetch else 1
    )


def _run_peak(
    program: Program, segment: Segment, whole: set[str], tiling: Tiling, needs: list[dict[str, Span]], prefetch: bool
) -> int:
    """Replays :func:`emit` in row counts over consecutive bands: per band, each layer's new rows
    appear, and each tensor shrinks to the rows later bands need as soon as its last reader in the
    band has run. A kept output's rows from before the first band are resident all along."""
    out = segment.output.name
    names = segment.names
    rows = {t: _row_bytes(program, t) for t in needs[0]}
    streamed = [t for t in segment.inputs() if t not in whole]
    chunked = bool(tiling.chunk_channels)
    # per layer, the tensors its run releases: those it reads last, but not whole inputs, nor (when
    # weights stream in chunks) the streamed inputs, which the next chunk reads again
    released_by = [
        [t for t in segment.released_by.get(name, ()) if t not in whole and not (chunked and t in streamed)]
        for name in names
    ]
    weights = weights_held(segment, tiling, prefetch)
    share = tiling.chunk_channels / segment.output.layer.output_shape[2] if chunked else 1.0
    # a kept output grows chunk by chunk: the last chunk computes beside all the band's output but its own
    # share, already resident (the busiest chunk, counted here); a stored one leaves chunk by chunk
    ahead = 1.0 - share if chunked and tiling.keep_output else 0.0
    have: dict[str, Span] = {}
    kept_before = needs[0][out][0] * rows[out] if tiling.keep_output else 0
    peak = 0
    resident: float
    for b, need in enumerate(needs):
        following = needs[b + 1] if b + 1 < len(needs) else {}
        for t in streamed:
            if t in need:
                have[t] = (have.get(t, need[t])[0], max(need[t][1], have.get(t, (0, 0))[1]))
            if prefetch and t in following:
                have[t] = (have[t][0], max(following[t][1], have[t][1]))
        resident = kept_before + weights + sum((hi - lo) * rows[t] for t, (lo, hi) in have.items())
        if ahead and out in need:
            lo, hi = need[out]
            resident += max(hi - max(lo, have[out][1]) if out in have else hi - lo, 0) * rows[out] * ahead

        def release(t: str, following: dict[str, Span]) -> int:
            lo, hi = have[t]
            keep_from = min(max(following[t][0], lo), hi) if t in following else hi
            have[t] = (keep_from, hi)
            return (keep_from - lo) * rows[t]

        for name, released in zip(names, released_by):
            if name in need:
                lo, hi = need[name]
                start = max(lo, have[name][1]) if name in have else lo
                if start < hi:
                    have[name] = (have[name][0] if name in have else start, hi)
                    resident += (hi - start) * rows[name] * share
            if math.ceil(resident) > peak:
                peak = math.ceil(resident)
            if released:
                freed = [release(t, following) * (share if t not in streamed else 0) for t in released if t in have]
                resident -= sum(freed)
        if chunked:
            resident -= sum(release(t, following) for t in streamed if t in have)
            if not tiling.keep_output and out in have:
                resident -= release(out, following) * share
        elif not tiling.keep_output and out in have:
            resident -= release(out, following)
    return peak


def band_candidates(height: int) -> list[int]:
    """Band heights to try, largest first: the whole map, then halving down to one row."""
    sizes, b = [], height
    while b > 1:
        sizes.append(b)
        b = math.ceil(b / 2)
    return [*sizes, 1]


def _first_fitting(candidates: list[int], fits: Callable[[int], bool]) -> int | None:
    """The first (largest) candidate that fits, by bisection: a smaller band or chunk never needs more room."""
    lo, hi = 0, len(candidates)
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(candidates[mid]):
            hi = mid
        else:
            lo = mid + 1
    return candidates[lo] if lo < len(candidates) else None


Needs = dict[int, list[list[dict[str, Span]]]]
"""One segment's :func:`representative_needs` per band height, computed once for every tiling tried."""


def choose_tiling(
    program: Program,
    segment: Segment,
    whole: set[str],
    keeps: list[bool],
    room: float,
    prefetch: bool,
    chunks: bool = True,
    needs: Needs | None = None,
) -> tuple[int, Tiling] | None:
    """Of the tilings whose peak fits in ``room`` bytes, the one that moves the fewest extra bytes, with those bytes.

    Extra bytes: weights reloaded for every band after the first when they stream in chunks, and
    the output stored and loaded back when it could have stayed internal. For each choice of
    keeping the output, the candidates are the largest bands with all weights resident, and the
    fewest bands with the largest weight chunks. None if nothing fits. ``needs``: the segment's
    memo, when the caller prices it under several boundary conditions.
    """
    needs = {} if needs is None else needs

    output_bytes = program.bytes(program.full(segment.output.name))

    def fits(tiling: Tiling) -> bool:
        # the peak is at least the weights held, and a kept output is whole beside them by the last
        # band: no need to replay the bands when that alone is over
        if weights_held(segment, tiling, prefetch) + (output_bytes if tiling.keep_output else 0) > room:
            return False
        if tiling.band_rows not in needs:
            needs[tiling.band_rows] = representative_needs(segment, tiling.band_rows)
        return peak_bytes(program, segment, whole, tiling, needs[tiling.band_rows], prefetch) <= room

    height = segment.output.layer.output_shape[0]
    bands = band_candidates(height)
    channels = band_candidates(segment.output.layer.output_shape[2])
    weights = sum(c.weight_bytes for c in segment.costs)

    def largest_band(chunk: int, keep: bool) -> int | None:
        return _first_fitting(bands, lambda b: fits(Tiling(b, chunk, keep)))

    def largest_chunk(band: int, keep: bool) -> int | None:
        return _first_fitting(channels, lambda c: fits(Tiling(band, c, keep)))

    options: list[tuple[int, Tiling]] = []
    for keep in keeps:
        spill = 0 if keep or True not in keeps else 2 * segment.output.output_bytes
        band = largest_band(0, keep)
        if band is not None:
            options.append((spill, Tiling(band, 0, keep)))
        elif chunks and chunkable(segment):
            band = largest_band(1, keep)  # the largest band any chunk fits
            if band is not None:
                chunk = largest_chunk(band, keep)
                assert chunk is not None
                options.append((spill + (math.ceil(height / band) - 1) * weights, Tiling(band, chunk, keep)))
    return min(options, key=lambda o: o[0]) if options else None


def describe(
    segment: Segment, index: int, whole: set[str], tiling: Tiling, inputs_note: str, streamed: bool = False
) -> list[StepPlan]:
    """The report's view of a segment: one plan per step, saying why each tensor is where it is."""
    plans = []
    height = segment.output.layer.output_shape[0]
    bands = math.ceil(height / tiling.band_rows)
    for g, (group, folded) in enumerate(zip(segment.groups, segment.folded)):
        first_inputs = [n for n in group[0].layer.inputs]
        if g == 0:
            in_loc = "+".join(dict.fromkeys("internal" if n in whole else "external" for n in first_inputs))
        else:
            in_loc = "internal"
        last = g == len(segment.groups) - 1
        out_loc = "internal" if not last or tiling.keep_output else "external"
        notes = []
        if folded:
            notes.append("folded " + ", ".join(f.rsplit(".", 1)[-1] for f in folded))
        if len(group) > 1:
            notes.append("fused " + "+".join(c.layer.op.value for c in group))
        if g == 0 and inputs_note:
            notes.append(inputs_note)
        if streamed:
            notes.append("streamed row by row through line buffers")
        elif bands > 1:
            halo = any(has_halo(c.layer) for c in segment.costs)
            notes.append(f"{bands} bands of {tiling.band_rows} rows" + (" with halo" if halo else ""))
        if len(segment.groups) > 1:
            notes.append(
                f"streamed with {len(segment.groups) - 1 - g} more steps" if not last else "end of a streamed chain"
            )
        if last:
            notes.append("output kept internal for its reader" if tiling.keep_output else "output stored")
        if tiling.chunk_channels:
            notes.append(f"weights streamed in chunks of {tiling.chunk_channels} channels")
        plans.append(
            StepPlan(
                group,
                in_loc,
                out_loc,
                "; ".join(notes),
                tiling.band_rows if bands > 1 else 0,
                tiling.chunk_channels,
                index,
                folded,
            )
        )
    return plans


def emit(
    program: Program,
    segment: Segment,
    steps: list[int],
    whole: set[str],
    tiling: Tiling,
    prefetch: bool,
    preloaded: frozenset[str] = frozenset(),
    next_weights: tuple[str, ...] = (),
) -> None:
    """Write the segment's events: per band, load new input rows, compute new rows, store or keep the
    output, and free each tensor's rows that no later band needs as soon as its last reader has run.
    Weights in ``preloaded`` are already resident; ``next_weights`` (the next segment's) are loaded
    at the start, to arrive while this segment computes."""
    step_of = {c.name: steps[g] for g, group in enumerate(segment.groups) for c in group}
    first, last = steps[0], steps[-1]
    out = segment.output.name
    inputs = [t for t in segment.inputs() if t not in whole]
    released_by: dict[str, list[str]] = {}
    for t, reader in _last_readers(segment).items():
        if t not in whole:
            released_by.setdefault(reader, []).append(t)
    needs = band_needs(segment, tiling.band_rows)
    have: dict[str, Span] = {}  # rows resident (or, for inputs, loaded) so far per banded tensor
    with_weights = [c for c in segment.costs if c.weight_bytes]
    chunked = bool(tiling.chunk_channels)
    if not chunked:
        for c in with_weights:
            if weights_of(c.name) not in preloaded:
                program.occupy(step_of[c.name], Action.LOAD, program.full(weights_of(c.name)))
    for w in next_weights:
        program.occupy(first, Action.LOAD, program.full(w))

    def load_band(b: int) -> None:
        for t in inputs:
            rows = needs[b].get(t)
            if rows is None:
                continue
            start = max(rows[0], have.get(t, (0, 0))[1])
            if start < rows[1]:
                program.occupy(first, Action.LOAD, _rows(program, t, (start, rows[1])))
                have[t] = (have.get(t, rows)[0], rows[1])

    def release(t: str, following: dict[str, Span], channels: Span | None = None) -> None:
        """Free the rows of ``t`` no later band needs; of ``channels`` only while other chunks still need the rest."""
        lo, hi = have[t]
        keep_from = min(max(following[t][0], lo), hi) if t in following else hi
        if keep_from > lo:
            region = _rows(program, t, (lo, keep_from))
            program.free(step_of.get(t, first), Region(t, region.rows, channels or region.channels))
            if channels is None or channels[1] == region.channels[1]:
                have[t] = (keep_from, hi)

    load_band(0)
    channels = segment.output.layer.output_shape[2]
    chunk = tiling.chunk_channels or channels
    for b, need in enumerate(needs):
        following = needs[b + 1] if b + 1 < len(needs) else {}
        if prefetch and following:
            load_band(b + 1)
        elif b:
            load_band(b)
        new = {
            c.name: (max(need[c.name][0], have.get(c.name, (0, 0))[1]), need[c.name][1])
            for c in segment.costs
            if c.name in need
        }
        for name, rows in new.items():
            if rows[0] < rows[1]:
                have[name] = (have.get(name, rows)[0], rows[1])
        for c0 in range(0, channels, chunk):
            span: Span = (c0, min(c0 + chunk, channels))
            if chunked:
                for c in with_weights:
                    program.occupy(step_of[c.name], Action.LOAD, Region(weights_of(c.name), (0, 1), span))
            for c in segment.costs:
                produced = new.get(c.name)
                if produced is not None and produced[0] < produced[1]:
                    cspan = span if chunked else (0, c.layer.output_shape[2])
                    program.occupy(step_of[c.name], Action.ALLOC, Region(c.name, produced, cspan))
                    program.compute(step_of[c.name], c, produced, cspan)
                for t in released_by.get(c.name, ()):
                    if t in have and not (chunked and t in inputs):
                        release(t, following, span if chunked else None)
            if chunked:
                for c in with_weights:
                    program.free(step_of[c.name], Region(weights_of(c.name), (0, 1), span))
                if not tiling.keep_output and new[out][0] < new[out][1]:  # each chunk leaves as soon as it is done
                    program.store(last, Region(out, new[out], span))
                    program.free(last, Region(out, new[out], span))
        if chunked:
            for t in inputs:
                release(t, following)
            if not tiling.keep_output:
                have[out] = (have[out][1], have[out][1])
        elif not tiling.keep_output and new[out][0] < new[out][1]:
            program.store(last, _rows(program, out, new[out]))
            release(out, following)
    if not chunked:
        for c in with_weights:
            program.free(step_of[c.name], program.full(weights_of(c.name)))


def _rows(program: Program, tensor: str, rows: Span) -> Region:
    full = program.full(tensor)
    return Region(tensor, rows, full.channels)


def run(
    program: Program, segments: list[Segment], capacity: float, prefetch: bool, max_moved_bytes: float = math.inf
) -> bool:
    """Tile and emit every segment in order, keeping each output internal when its only reader is the next segment.

    When a segment cannot run with an input resident whole, that input is spilled (stored and freed)
    and loaded band by band instead; when even that fails, :class:`CapacityError`. Stops early, and
    returns False, once the program has moved more than ``max_moved_bytes``: a caller comparing it
    with a faster schedule learns from its bus time alone that it cannot win.
    """
    consumers = consumers_of(c.layer for c in program.costs.values())
    segment_of = {c.name: i for i, s in enumerate(segments) for c in s.costs}

    def readers(tensor: str) -> set[int]:
        """The segments that read ``tensor``."""
        return {segment_of[layer.name] for layer in consumers.get(tensor, ())}

    whole: set[str] = set()
    for i, segment in enumerate(segments):
        whole_in = {t for t in segment.inputs() if t in whole}
        keeps = [True, False] if readers(segment.output.name) == {i + 1} else [False]
        chosen, spill = None, set()
        for spill in (set(), whole_in):
            room = capacity - program.resident + sum(program.bytes(program.full(t)) for t in spill)
            chosen = choose_tiling(program, segment, whole_in - spill, keeps, room, prefetch)
            if chosen:
                break
        if chosen is None:
            need = peak_bytes(
                program,
                segment,
                set(),
                Tiling(1, 1 if chunkable(segment) else 0),
                representative_needs(segment, 1),
                False,
            )
            raise CapacityError(
                f"{segment.output.name}: one row per band needs {need:,} B of internal memory besides the "
                f"{program.resident:,} B already resident; capacity is {capacity:,.0f} B"
            )
        tiling = chosen[1]
        inputs_note = _inputs_note(segment, whole_in - spill, spill)
        steps = [program.begin(p) for p in describe(segment, i, whole_in - spill, tiling, inputs_note)]
        for t in sorted(spill):
            program.store(steps[0], program.full(t))
            program.free(steps[0], program.full(t))
            whole.discard(t)
        emit(program, segment, steps, whole_in - spill, tiling, prefetch)
        if tiling.keep_output:
            whole.add(segment.output.name)
        for t in sorted(whole_in - spill):
            if max(readers(t)) == i:
                program.free(steps[-1], program.full(t))
                whole.discard(t)
        if program.moved > max_moved_bytes:
            return False
    return True


def _inputs_note(segment: Segment, whole: set[str], spilled: set[str]) -> str:
    parts = []
    if whole:
        parts.append("input kept internal by the step before")
    if spilled:
        parts.append("input spilled: it does not fit beside this step")
    return "; ".join(parts)
