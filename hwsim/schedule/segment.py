"""Segments: steps run together through internal memory, row by row or band by band (strict and optimized).

A segment is a run of steps in the graph's order (each a layer, or layers fused into one), any
shape of sub-graph: a chain, a residual block with its skip, an inception module's branches and
their concat. It runs one of two ways (:class:`Tiling`):

- **row by row** (``band_rows == 0``): every layer's rows are produced on demand, one at a time: to
  produce row r of a layer, the rows of its inputs under r's window are produced (or loaded) first,
  then r is computed, and the input rows no reader in the segment needs any more are freed at once.
  A map read by several layers of the segment (a skip, a branch point) keeps the rows between its
  slowest and its fastest reader: a line buffer. All the segment's weights stay resident.
- **in bands** (one step only): bands of rows of the step's output, each band holding the input
  rows it needs (band plus halo); the weights stay resident, or stream in chunks of output channels
  for every band, double-buffered.

A map the segment reads but does not produce is resident whole when it starts (freed as it is
consumed when this is its last reader) or loaded from external memory a row (or band) ahead of its
use. A map it produces that later segments read is kept whole or stored as it is produced. A layer
that accumulates its input's rows (global average pooling) adds each row (or band) to its one output
row as it arrives.

The work is written once, as the program's records, into a :class:`Program`: a scratch one to
price it (its busiest point is the segment's peak), the schedule's own to run it, so what is
priced is what runs. Rows (and bands) far from the map's edges repeat one another shifted: they
are written as one repeated block (:meth:`Program.repeated`), found from the rows each tensor has
reached after every step (:meth:`_Rows.reached`), so a segment's records grow with its layers, not
with its rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from hwsim.cost.inference import LayerCost
from hwsim.model.graph import Layer
from hwsim.model.regions import ROWS, accumulates, input_channels, input_rows
from hwsim.ops import TRAITS, Channels, Chunks, ConvAttrs, ConvTransposeAttrs, Rows, Window
from hwsim.schedule.base import (
    ALLOC,
    FREE,
    LOAD,
    STORE,
    Action,
    CapacityError,
    Location,
    Region,
    Span,
    TensorId,
    map_of,
    weights_of,
)
from hwsim.schedule.program import Program, StepPlan, compute_reads

Group = tuple[LayerCost, ...]
"""Layers that run as one step."""


@dataclass(frozen=True)
class Segment:
    groups: tuple[Group, ...]
    folded: tuple[tuple[str, ...], ...] = ()
    """Per group, the batch norms folded into it."""

    @cached_property
    def costs(self) -> tuple[LayerCost, ...]:
        return tuple(c for g in self.groups for c in g)

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.costs)

    @cached_property
    def produced(self) -> frozenset[str]:
        return frozenset(self.names)

    @cached_property
    def weight_bytes(self) -> int:
        return sum(c.weight_bytes for c in self.costs)

    @property
    def output(self) -> LayerCost:
        return self.groups[-1][-1]

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """Maps the segment reads that it does not produce, in order of first use."""
        return tuple(dict.fromkeys(n for c in self.costs for n in c.layer.inputs if n not in self.produced))

    @cached_property
    def positions(self) -> dict[str, int]:
        """Each map's position among those it produces, then those it reads from outside (:func:`alike`)."""
        return {t: i for i, t in enumerate((*self.names, *self.inputs))}

    @cached_property
    def readers(self) -> dict[str, tuple[int, ...]]:
        """Per map, the layers of the segment (by index) that read it."""
        found: dict[str, list[int]] = {}
        for i, c in enumerate(self.costs):
            for t in dict.fromkeys(c.layer.inputs):
                found.setdefault(t, []).append(i)
        return {t: tuple(v) for t, v in found.items()}

    @cached_property
    def frames(self) -> dict[tuple[bool, tuple[int, ...]], _Frame]:
        """Its runs' frames, by whether it runs in bands and its steps' indices (:func:`_frame`)."""
        return {}

    @cached_property
    def skews(self) -> bool:
        """Some layer is read by a layer on another unit: only then does :attr:`Tiling.skew` change a run."""
        return any(self.costs[i].unit != c.unit for c in self.costs for i in self.readers.get(c.name, ()))

    @cached_property
    def rowwise(self) -> bool:
        """Every layer streams (its trait): the segment can run row by row."""
        return all(TRAITS[c.layer.op].streams for c in self.costs)

    @cached_property
    def chunkable(self) -> bool:
        """One step whose layers after the first work channel by channel can stream its weights in chunks
        (each op's :class:`hwsim.ops.Chunks`)."""
        if len(self.groups) != 1:
            return False
        first, *rest = self.groups[0]
        return TRAITS[first.layer.op].chunks is not Chunks.NO and all(
            TRAITS[c.layer.op].chunks is Chunks.ANY for c in rest
        )


@dataclass(frozen=True)
class Placement:
    """Where the maps a segment reads and writes are, and which weights it need not load or loads for later."""

    resident: frozenset[str] = frozenset()
    """Maps it reads that are resident whole when it starts (the others are loaded as they are needed)."""
    consumed: frozenset[str] = frozenset()
    """Of ``resident``, those it reads for the last time: freed as they are consumed."""
    kept: frozenset[str] = frozenset()
    """Maps it produces that stay resident whole for later segments."""
    stored: frozenset[str] = frozenset()
    """Maps it produces that are stored as they are produced (later segments, or the network's output)."""
    preloaded: frozenset[str] = frozenset()
    """Layers whose weights are resident already (loaded by a segment before)."""
    preloaded_part: tuple[tuple[str, int], ...] = ()
    """Layers whose weights' first output channels are resident already, with how many: the segment before
    had room for those, not for all (this one loads the rest)."""
    prefetch: tuple[tuple[str, int], ...] = ()
    """Layers of later segments whose weights this segment loads, once its first rows are under way, with the
    output channels it loads of them: all, or the first ones (the rest load with their own segment)."""


@dataclass(frozen=True)
class Tiling:
    band_rows: int = 0
    """Rows of the step's output per band; 0: every layer row by row, through line buffers."""
    chunk_channels: int = 0
    """Output channels of weights per chunk, streamed for every band (0: all weights resident)."""
    ahead: bool = True
    """Loads run ahead: the next row (or band) and weight chunk load while the current one computes."""
    skew: bool = False
    """Row by row, a layer read by a layer on another unit produces a row ahead of its reader's need too:
    the reader then finds its next row's inputs computed instead of waiting for them (each unit runs its
    computes in program order)."""


class _Layer:
    """One layer of a running segment, with what its rows need, worked out once."""

    def __init__(self, index: int, cost: LayerCost, step: int, program: Program, partial: bool) -> None:
        layer = cost.layer
        self.index, self.cost, self.layer, self.step = index, cost, layer, step
        self.name = layer.name
        self.id = map_of(layer.name)
        self.accumulates = partial and accumulates(layer)
        """It adds its input's rows to its one output row as they come (else it reads them all at once)."""
        self.height = layer.output_shape[0]
        self.rows = layer.input_shape[0] if self.accumulates else self.height
        """Rows it produces one by one: its input's when it accumulates them into its one row."""
        self.channels = (0, layer.output_shape[2])
        self.row_bytes = program.cell_bytes[self.id] * layer.output_shape[2]
        self.inputs = tuple(dict.fromkeys(layer.inputs))
        position = {t: layer.inputs.index(t) for t in self.inputs}
        self.spans: dict[str, Callable[[Span], Span]] = {
            t: _spans(layer, i, self.accumulates) for t, i in position.items()
        }
        """Per input: the rows that output rows (a band) read."""
        self.windows: dict[str, Callable[[int], Span]] = {
            t: _window(layer, i, self.accumulates) for t, i in position.items()
        }
        """Per input: the rows output row r reads (asked for every row of every layer: worked out once per kind)."""

    @cached_property
    def lines(self) -> dict[str, tuple[int, int] | None]:
        """Per input read by this layer alone, row by row: the most rows of it held at once, as produced on demand
        and as produced (or loaded) a row ahead (:func:`_line`; asked by the planner's bounds only)."""
        layer = self.layer
        return {t: _line(layer, layer.inputs.index(t), self.accumulates) for t in self.inputs}


def _affine(layer: Layer) -> bool:
    """Whether the layer's windows move with its rows, away from the edges (all kinds but bilinear upsampling,
    whose rows read rows around a source coordinate that moves by a fraction, and a transposed convolution,
    whose rows read one more or one fewer input row by turns)."""
    kind = ROWS[layer.op]
    return kind is not Rows.TRANSPOSED and (
        kind is not Rows.SCALE or getattr(layer.attrs, "mode", "nearest") == "nearest"
    )


def _spans(layer: Layer, position: int, accumulates: bool) -> Callable[[Span], Span]:
    """``rows -> (first, stop)``: the rows of input ``position`` that output ``rows`` of ``layer`` read."""
    if accumulates:
        return lambda rows: rows
    return lambda rows: input_rows(layer, rows)[position]


def _window(layer: Layer, position: int, accumulates: bool) -> Callable[[int], Span]:
    """``r -> (first, stop)``: the rows of input ``position`` that output row r of ``layer`` reads."""
    kind = ROWS[layer.op]
    if accumulates or kind is Rows.SAME or kind is Rows.BROADCAST and layer.input_shapes[position][0] != 1:
        return lambda r: (r, r + 1)
    if kind is Rows.BROADCAST:
        return lambda r: (0, 1)
    if kind is Rows.WINDOW:
        attrs = layer.attrs
        assert isinstance(attrs, Window)
        extent, stride, pad, height = attrs.extent[0], attrs.stride[0], attrs.padding.top, layer.input_shape[0]

        def window(r: int) -> Span:
            first = r * stride - pad
            lo = 0 if first < 0 else height if first > height else first
            hi = first + extent
            return (lo, height if hi > height else hi if hi > lo else lo)

        return window
    return lambda r: input_rows(layer, (r, r + 1))[position]


def _line(layer: Layer, position: int, accumulates: bool) -> tuple[int, int] | None:
    """Row by row, the most rows of input ``position`` held at once when ``layer`` alone reads it (and it is neither
    kept nor stored), as produced on demand and as produced (or loaded) a row ahead. While output row r is computed,
    the input holds the rows from the lower of row r's first and row r-1's last up to row r's last (row r+1's, a
    row ahead): for a window of extent e and stride s, max(e, s) rows (s more ahead); row to row, 1 (2). At the
    last row, from row r-1's first to the input's end. None: rows another way (no bound known)."""
    kind = ROWS[layer.op]
    window = _window(layer, position, accumulates)
    height = layer.input_shapes[position][0]
    rows = layer.input_shape[0] if accumulates else layer.output_shape[0]
    last = height - window(max(rows - 2, 0))[0]
    if accumulates or kind is Rows.SAME or kind is Rows.BROADCAST and height != 1:
        return max(1, last), max(2, last)
    if kind is Rows.WINDOW:
        attrs = layer.attrs
        assert isinstance(attrs, Window)
        extent, stride = attrs.extent[0], attrs.stride[0]
        return max(extent, stride, last), max(extent, stride, last) + stride
    return None


def _shift(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: b[k] - a[k] for k in b}


class _Frame:
    """What a segment's runs share whatever their placement and tiling: its layers, and per tensor its height,
    id and bytes per row. Pricing runs a segment hundreds of times: worked out once (:func:`_frame`)."""

    def __init__(self, program: Program, segment: Segment, banded: bool, steps: tuple[int, ...]) -> None:
        self.cell_bytes = program.cell_bytes
        step_of = [steps[g] for g, group in enumerate(segment.groups) for _ in group]
        last = len(segment.costs) - 1
        # row by row, every layer that accumulates does so; in bands, only the step's output (the others
        # read their whole input in one go, within a band)
        self.layers = [_Layer(i, c, step_of[i], program, not banded or i == last) for i, c in enumerate(segment.costs)]
        self.by_name = {lay.name: lay for lay in self.layers}
        heights: dict[str, int] = {lay.name: lay.height for lay in self.layers}
        for c in segment.costs:
            heights.update({t: shape[0] for t, shape in zip(c.layer.inputs, c.layer.input_shapes)})
        self.heights = heights
        self.readers = {t: [self.layers[i] for i in idx] for t, idx in segment.readers.items()}
        self.sinks = [lay for lay in self.layers if lay.name not in self.readers]
        self.ids = {t: map_of(t) for t in heights}
        self.row_bytes = {t: program.cell_bytes[self.ids[t]] * program.full(self.ids[t]).channels[1] for t in heights}
        self.affine = all(_affine(lay.layer) for lay in self.layers)
        """Every layer's windows move by as many rows as its output, away from the maps' edges: rows (or bands)
        that move alike near both ends of the run move alike in between."""
        self.row_repeats = all(ROWS[lay.layer.op] is not Rows.TRANSPOSED for lay in self.layers)
        """Row by row, driver steps whose counters move alike repeat one another: not past a transposed conv, whose
        last rows read the input's last rows long after it is complete, while the rows it frees still move."""
        self.needs: dict[int, dict[int, dict[str, Span]]] = {}
        """Per band height, the rows every tensor each band needs (:meth:`_Bands.needs`): they depend on the
        layers and the height only, and pricing runs a step in bands of one height under many placements."""
        self.chunk_runs: dict[tuple[int, int], list[tuple[int, int, dict[TensorId, int]]]] = {}
        """In bands, per chunk width and chunks alike, the runs of chunks that move alike (``_Bands._chunk_runs``)."""
        self.steps = max(lay.rows for lay in self.sinks)
        """Row by row, its driver steps: every sink produces its share of rows in each."""
        self._reach: dict[tuple[bool, int], _Reach] = {}
        self._skewed: frozenset[int] | None = None

    def skewed(self, skew: bool) -> frozenset[int]:
        """Row by row, the layers produced a row ahead of their readers' needs (:attr:`Tiling.skew`): those read
        by a layer on another unit."""
        if not skew:
            return frozenset()
        if self._skewed is None:
            self._skewed = frozenset(
                lay.index
                for lay in self.layers
                if any(reader.cost.unit != lay.cost.unit for reader in self.readers.get(lay.name, ()))
            )
        return self._skewed

    def _need(self, reader: _Layer, done: int, t: str, ahead: bool = False) -> int:
        """Rows of ``t`` a reader that has produced ``done`` rows has needed (all, once it has finished; all
        of a running sum's, which is complete only then); ``ahead``: and those its next row reads."""
        if not done:
            return 0
        lay = self.by_name.get(t)
        if lay is not None and lay.accumulates:
            return lay.rows
        if done == reader.rows:
            return self.heights[t]
        return reader.windows[t](done if ahead else done - 1)[1]

    def reach(self, skew: bool, step: int) -> _Reach:
        """Row by row, where every map stands once driver step ``step`` is done (-1: none yet), whatever the
        placement: worked out once per frame, skew and step (the planner bounds a segment under many placements
        on them, :func:`row_bounds`, and a run finds its repeated steps on them, :meth:`_Rows.reached`)."""
        key = (skew, step)
        found = self._reach.get(key)
        if found is not None:
            return found
        skewed, readers, heights, need, by_name = (
            self.skewed(skew),
            self.readers,
            self.heights,
            self._need,
            self.by_name,
        )
        produced: dict[str, int] = {}
        for lay in reversed(self.layers):
            if lay.name not in readers:
                produced[lay.name] = -(-(step + 1) * lay.rows // self.steps)
            else:
                ahead = lay.index in skewed
                produced[lay.name] = max(need(r, produced[r.name], lay.name, ahead) for r in readers[lay.name])
        read, keep, load = {}, {}, {}
        for t, rs in readers.items():  # one pass over each map's readers (hot: the planner bounds every chain)
            height, below = heights[t], by_name.get(t)
            whole = below is not None and below.accumulates
            most_read = most_load = 0
            least_kept = height
            for r in rs:
                done = produced[r.name]
                if done < r.rows:
                    window = r.windows[t]
                    lo, hi = window(done)
                    if done:
                        most_load = max(most_load, hi)
                        most_read = max(most_read, below.rows if whole else window(done - 1)[1])  # type: ignore[union-attr]
                    least_kept = min(least_kept, lo)
                else:  # finished: it has read all of it
                    most_load = max(most_load, height)
                    most_read = max(most_read, below.rows if whole else height)  # type: ignore[union-attr]
            read[t], keep[t], load[t] = most_read, least_kept, most_load
        found = self._reach[key] = _Reach(produced, read, keep, load)
        return found


class _Reach(NamedTuple):
    """Row by row, where every map stands once a driver step is done (:meth:`_Frame.reach`)."""

    produced: dict[str, int]
    """Rows produced per layer (of its input, when it accumulates them into its one row)."""
    read: dict[str, int]
    """Per map read in the segment: the rows its readers have needed."""
    keep: dict[str, int]
    """Per map read in the segment: the lowest row its readers still need (rows below it are freeable)."""
    load: dict[str, int]
    """Per map read in the segment: the rows its readers' windows have reached, ahead by one row (a map loaded
    row by row has been loaded so far)."""


def _frame(program: Program, segment: Segment, banded: bool, steps: tuple[int, ...]) -> _Frame:
    """The segment's frame for runs in ``program`` (kept on the segment; a program over other layer costs
    gets its own)."""
    key = (banded, steps)
    frame = segment.frames.get(key)
    if frame is None or frame.cell_bytes is not program.cell_bytes:
        frame = segment.frames[key] = _Frame(program, segment, banded, steps)
    return frame


class _Run:
    """One segment's records, written into a program: shared by both ways of running it."""

    def __init__(
        self,
        program: Program,
        segment: Segment,
        placement: Placement,
        tiling: Tiling,
        steps: list[int],
    ) -> None:
        self.program, self.segment, self.place, self.tiling = program, segment, placement, tiling
        frame = self.frame = _frame(program, segment, bool(tiling.band_rows), tuple(steps))
        self.layers, self.by_name, self.readers, self.sinks = frame.layers, frame.by_name, frame.readers, frame.sinks
        self.heights, self.ids, self.row_bytes, self.affine = frame.heights, frame.ids, frame.row_bytes, frame.affine
        self.row_repeats = frame.row_repeats
        self.first_step = steps[0]
        self.streamed = [t for t in segment.inputs if t not in placement.resident]

    # ---- records ------------------------------------------------------------------------------

    def rows_region(self, t: str, rows: Span) -> Region:
        full = self.program.full(self.ids[t])
        return Region(self.ids[t], rows, full.channels)

    def add_rows(self, step: int, action: Action, t: str, rows: Span) -> None:
        """A record of rows ``rows`` of map ``t`` (all its channels); only counted when not kept."""
        if rows[1] > rows[0]:
            size = (rows[1] - rows[0]) * self.row_bytes[t]
            if self.program.recording:
                self.program.add(step, action, self.rows_region(t, rows), size)
            else:
                self.program.tally(step, action, size)

    def load_weights(self) -> None:
        """Every layer's weights not resident already (of those partly resident, the other channels)."""
        part = dict(self.place.preloaded_part)
        for lay in self.layers:
            if lay.cost.weight_bytes and lay.name not in self.place.preloaded:
                full = self.program.full(weights_of(lay.name))
                first = part.get(lay.name, 0)
                self.program.occupy(lay.step, LOAD, full._replace(channels=(first, full.channels[1])))

    def spread(self, steps: int) -> None:
        """Split the weights this segment loads for later ones into pieces of output channels, about as many
        bytes each, loaded after each of its ``steps`` steps (rows or bands) but the first: the bus loads them
        between the rows it needs instead of holding those up (after the first step when it has only one)."""
        parts = [weight_part(name, channels) for name, channels in self.place.prefetch]
        slots, first = max(steps - 1, 1), (1 if steps > 1 else 0)
        per = -(-sum(self.program.bytes(part) for part in parts) // slots)
        self.pieces: dict[int, list[Region]] = {}
        k = 0
        for w, _, (_, channels) in parts:
            width = max(1, per // self.program.cell_bytes[w])
            for c0 in range(0, channels, width):
                piece = Region(w, (0, 1), (c0, min(c0 + width, channels)))
                self.pieces.setdefault(first + min(k, slots - 1), []).append(piece)
                k += 1
        loaded = {f"w:{name}": 0 for name, _ in self.place.prefetch}
        self.progress: list[dict[str, int]] = []
        """After each step: the channels of each prefetched tensor loaded so far (how its pieces move)."""
        for step in range(steps if parts else 0):
            for piece in self.pieces.get(step, ()):
                loaded[f"w:{piece.tensor.layer}"] = piece.channels[1]
            self.progress.append(dict(loaded))

    def prefetch(self, step: int) -> None:
        """After step ``step``: its pieces of the weights loaded for later segments."""
        for piece in self.pieces.get(step, ()):
            self.program.occupy(self.first_step, LOAD, piece)

    def prefetched(self, step: int) -> dict[str, int]:
        """The channels of each prefetched tensor loaded once step ``step`` is done (-1: none yet)."""
        if not self.progress:
            return {}
        return self.progress[step] if step >= 0 else {key: 0 for key in self.progress[0]}

    def free_weights(self) -> None:
        for lay in self.layers:
            if lay.cost.weight_bytes:
                self.program.free(lay.step, self.program.full(weights_of(lay.name)))

    def releasable(self, t: str) -> bool:
        """Whether rows of ``t`` are freed once no reader in the segment needs them."""
        place = self.place
        if t in self.by_name:
            return t not in place.kept
        return t not in place.resident or t in place.consumed


class _Rows(_Run):
    """Every layer row by row, on demand (see the module docstring)."""

    def __init__(self, program: Program, segment: Segment, placement: Placement, tiling: Tiling, steps: list[int]):
        super().__init__(program, segment, placement, tiling, steps)
        self.freeable = {t: self.releasable(t) for t in self.heights}
        self.produced = [0] * len(self.layers)
        self.loaded = {t: 0 for t in self.streamed}
        self.freed = {t: 0 for t in self.heights}
        lagging = [lay for lay in self.layers if lay.name in placement.stored and not lay.accumulates]
        self.stored = {lay.name: 0 for lay in lagging}
        """Rows of each map stored so far: a step stores the rows the step before produced, so that the
        bus, which serves loads and stores in program order, never waits for a row still computing while
        the loads behind it hold up the next rows."""
        self.due = dict(self.stored)
        """Rows of each map the step before had produced: what the current step stores."""
        self.steps = self.frame.steps
        """Driver steps: every sink produces its share of rows in each."""
        self.skewed = self.frame.skewed(tiling.skew)
        """The layers produced a row ahead of their readers' needs (:attr:`Tiling.skew`)."""
        self.spread(self.steps)
        self.watchers = {
            t: tuple((r.index, r.rows, r.windows[t]) for r in self.readers.get(t, ())) for t in self.heights
        }
        """Per map, each reader's index, rows and window on it: what :meth:`release` reads for every row."""

    def reached(self, step: int) -> dict[str, int]:
        """Every counter of the run once driver step ``step`` is done (-1: none yet): rows produced per
        layer, loaded, read and freed per map. Steps whose counters move alike repeat one another."""
        produced, read, keep, load = self.frame.reach(self.tiling.skew, step)
        counters = {f"p:{k}": v for k, v in produced.items()}
        for t in self.readers:
            counters[f"r:{t}"] = read[t]
            lay = self.by_name.get(t)
            if lay is not None:
                available = (produced[t] == lay.rows) if lay.accumulates else produced[t]
            elif t in self.loaded:
                available = counters[f"l:{t}"] = load[t]
            else:
                available = self.heights[t]
            if self.freeable[t]:
                counters[f"f:{t}"] = min(keep[t], available)
        counters.update(self.prefetched(step))
        return counters

    def run(self, compact: bool = True, limit: int | None = None) -> None:
        """Write the segment's records: weights, then every driver step (steps that repeat one another as
        one block), then the weights freed. ``limit``: only the first driver steps (an estimate of the peak)."""
        self.load_weights()
        steps = self.steps if limit is None else min(limit, self.steps)
        compact = compact and limit is None
        reached: dict[int, dict[str, int]] = {}

        def moved(s: int) -> dict[str, int]:
            """How far driver step ``s`` moves every counter."""
            for x in (s - 1, s):
                if x not in reached:
                    reached[x] = self.reached(x)
            return _shift(reached[s - 1], reached[s])

        s = 0
        while s < steps:
            if compact and self.row_repeats and 1 <= s < steps - 2 and moved(s) == moved(s - 1):
                # step s moves every counter as step s-1 did: it repeats it shifted, and so do the steps
                # after it up to ``last``, the last to move alike (found from the end; the last step, which
                # stores what is left, on its own)
                delta, last = moved(s), steps - 2
                if self.affine:  # steps move alike from here to where the edge of a map comes near
                    while last > s and moved(last) != delta:
                        last -= 1
                else:  # windows that do not move alike (bilinear): every step checked
                    last = s
                    while last + 1 <= steps - 2 and moved(last + 1) == delta:
                        last += 1
                if last > s and self._repeat(s, last - s + 1, delta):
                    s = last + 1
                    continue
            self.step(s)
            self.prefetch(s)
            s += 1
        if limit is None:
            self.free_weights()

    def _state(self) -> dict[str, int]:
        state = {f"p:{lay.name}": self.produced[lay.index] for lay in self.layers}
        state.update({f"l:{t}": v for t, v in self.loaded.items()})
        state.update({f"f:{t}": v for t, v in self.freed.items()})
        state.update({f"s:{t}": v for t, v in self.stored.items()})
        state.update({f"d:{t}": v for t, v in self.due.items()})
        return state

    def _repeat(self, s: int, count: int, delta: dict[str, int]) -> bool:
        """Driver steps s .. s + count - 1 as one repeated block: step s written (each tensor's regions move
        by its rows per step), the counters moved past the rest. False (nothing written) when some tensor's
        records would move by different rows (one map complete, read as another is produced)."""
        rows: dict[TensorId, int] = {}
        for t in self.heights:
            lay = self.by_name.get(t)
            if lay is not None and lay.accumulates:
                continue  # its one output row stays where it is
            # every record of the tensor (produced, loaded, read, freed rows) moves by one rate, or not at all
            rates = {delta.get(f"{kind}:{t}", 0) for kind in "plrf"} - {0}
            if len(rates) > 1:
                return False
            if rates:
                rows[self.ids[t]] = rates.pop()
        channels = {weights_of(k[2:]): v for k, v in delta.items() if k[0] == "w" and v}
        before = self._state()
        with self.program.repeated(count, rows, channels):
            self.step(s)
            self.prefetch(s)
        for key, value in self._state().items():
            moved = (value - before[key]) * (count - 1)
            kind, name = key[0], key[2:]
            if kind == "p":
                self.produced[self.by_name[name].index] += moved
            elif kind == "l":
                self.loaded[name] += moved
            elif kind == "s":
                self.stored[name] += moved
            elif kind == "d":
                self.due[name] += moved
            else:
                self.freed[name] += moved
        return True

    def step(self, s: int) -> None:
        """Driver step ``s``: every sink's share of rows, then the rows the step before produced stored (all
        of them after the last step)."""
        for sink in self.sinks:
            self.produce(sink, -(-(s + 1) * sink.rows // self.steps))
        last = s + 1 == self.steps
        for name in self.stored:
            lay = self.by_name[name]
            done = self.produced[lay.index] if last else self.due[name]
            if done > self.stored[name]:
                self.add_rows(lay.step, STORE, name, (self.stored[name], done))
                self.stored[name] = done
                self.release(name, lay.step)
            self.due[name] = self.produced[lay.index]

    def produce(self, lay: _Layer, stop: int) -> None:
        """Rows of ``lay``'s output up to ``stop``, each after the input rows it needs (the hot loop of pricing:
        attributes read once, and a layer below produced only when it is behind)."""
        program, place, produced, by_name, loaded = self.program, self.place, self.produced, self.by_name, self.loaded
        heights, skewed, release, index, rows, windows = (
            self.heights,
            self.skewed,
            self.release,
            lay.index,
            lay.rows,
            lay.windows,
        )
        step, inputs, row_bytes = lay.step, lay.inputs, lay.row_bytes
        counting = not program.recording
        tally, count = program.tally, program._count
        while produced[index] < stop:
            r = produced[index]
            final = r + 1 == rows
            for t in inputs:
                window = windows[t]
                hi = window(r)[1]
                below = by_name.get(t)
                if below is not None:
                    if below.accumulates:
                        need = below.rows
                    elif final:
                        need = heights[t]
                    else:  # skewed: this layer's next row's inputs too
                        need = max(hi, window(r + 1)[1]) if below.index in skewed else hi
                    if produced[below.index] < need:
                        self.produce(below, need)
                elif t in loaded:
                    # loaded a row ahead, while row r computes; at the last row, the rows no window reads
                    # too (the bound charges every input byte: a schedule loads each once)
                    ahead = heights[t] if final else max(hi, window(r + 1)[1])
                    if loaded[t] < ahead:
                        self.add_rows(self.first_step, LOAD, t, (loaded[t], ahead))
                        loaded[t] = ahead
            if lay.accumulates:
                if r == 0:
                    program.occupy(lay.step, ALLOC, program.full(lay.id))
                part = Region(self.ids[lay.inputs[0]], (r, r + 1), program.full(self.ids[lay.inputs[0]]).channels)
                program.compute(lay.step, lay.cost, (0, 1), lay.channels, part=part)
            elif counting:  # what add_rows and compute count, without building their regions
                tally(step, ALLOC, row_bytes)
                count(step)
            else:
                self.add_rows(step, ALLOC, lay.name, (r, r + 1))
                program.compute(step, lay.cost, (r, r + 1), lay.channels)
            produced[index] = r + 1
            for t in inputs:
                release(t, step)
            if lay.accumulates and final and lay.name in place.stored:
                program.store(step, program.full(lay.id))
            if lay.name not in self.readers:
                release(lay.name, step)

    def release(self, t: str, step: int) -> None:
        """Free the rows of ``t`` no reader in the segment needs any more."""
        if not self.freeable[t]:
            return
        produced, height = self.produced, self.heights[t]
        keep = height
        for index, rows, window in self.watchers[t]:
            done = produced[index]
            if done < rows:
                lo = window(done)[0]
                if lo < keep:
                    keep = lo
        lay = self.by_name.get(t)
        if lay is not None:
            # a running sum's one row is there once complete; a stored map's rows, once stored
            done = produced[lay.index]
            available = (done == lay.rows) if lay.accumulates else self.stored.get(t, done)
        else:
            available = self.loaded.get(t, height)
        if available < keep:
            keep = available
        freed = self.freed[t]
        if keep > freed:
            self.add_rows(step, FREE, t, (freed, keep))
            self.freed[t] = keep


class _Bands(_Run):
    """One step in bands of its output rows, weights resident or streamed in chunks (module docstring)."""

    def __init__(self, program: Program, segment: Segment, placement: Placement, tiling: Tiling, steps: list[int]):
        super().__init__(program, segment, placement, tiling, steps)
        self.sink = self.layers[-1]
        self.count = math.ceil(self.sink.rows / self.tiling.band_rows)
        self.spread(self.count)
        self.have: dict[str, Span] = {}
        """Rows resident (or, for streamed inputs, loaded) so far per tensor."""
        self.pending: Span | None = None
        """Rows of the output the band before computed, stored with the current band."""
        self.compact = True
        self._needs = self.frame.needs.setdefault(tiling.band_rows, {})
        self._runs = self.frame.chunk_runs

    def needs(self, b: int) -> dict[str, Span]:
        """The rows of every tensor band ``b`` needs (worked out once per band: a band's are asked for by the
        bands around it too; read only)."""
        if b not in self._needs:
            self._needs[b] = self._work_out_needs(b)
        return self._needs[b]

    def _work_out_needs(self, b: int) -> dict[str, Span]:
        """The rows of every tensor band ``b`` needs. Rows a strided reader skips between bands join the
        next band (every row is computed once), and the last band also takes rows no reader needs."""
        if b < 0 or b >= self.count:
            return {}
        band = self.tiling.band_rows
        sink = self.sink
        start, stop = b * band, min((b + 1) * band, sink.rows)
        before = self._highest(b - 1) if b else {}
        need: dict[str, Span] = {sink.name: (start, stop)}
        for lay in reversed(self.layers):
            rows = need.get(lay.name)
            if rows is None:
                continue
            if lay.name in before and rows[0] > before[lay.name]:
                rows = need[lay.name] = (before[lay.name], rows[1])
            for t in lay.inputs:
                span = lay.spans[t](rows)
                need[t] = span if t not in need else (min(need[t][0], span[0]), max(need[t][1], span[1]))
        for t in self.segment.inputs:
            if t in need and t in before and need[t][0] > before[t]:
                need[t] = (before[t], need[t][1])
        if stop >= sink.rows:
            need = {
                t: (lo, self.heights[t] if t != sink.name or not sink.accumulates else sink.rows)
                for t, (lo, _) in need.items()
            }
        return need

    def _highest(self, b: int) -> dict[str, int]:
        """The highest row of every tensor band ``b`` (not the last) needs: the rows below are there already."""
        band = self.tiling.band_rows
        high = {self.sink.name: min((b + 1) * band, self.sink.rows)}
        for lay in reversed(self.layers):
            if lay.name in high:
                for t in lay.inputs:
                    hi = lay.spans[t]((high[lay.name] - 1, high[lay.name]))[1] if high[lay.name] else 0
                    high[t] = max(high.get(t, 0), hi)
        return high

    def run(self, compact: bool = True) -> None:
        self.compact = compact
        chunked = bool(self.tiling.chunk_channels)
        if not chunked:
            self.load_weights()
        for t in dict.fromkeys(t for t in self.segment.inputs if t in self.place.resident):  # in order: events follow
            self.have[t] = (0, self.heights[t])
        self.load_band(self.needs(0))
        b = 0
        while b < self.count:
            # band b reads the needs of bands b-1 .. b+1: when they move as those of the bands before did,
            # it repeats band b-1 shifted, and so do the bands after it up to ``last`` (found from the end)
            if compact and 2 <= b < self.count - 2:
                delta = self._moved(b - 2, b - 1)
                if delta is not None and delta == self._moved(b - 1, b) == self._moved(b, b + 1):
                    last = self.count - 2
                    if self.affine:
                        while last > b and self._moved(last, last + 1) != delta:
                            last -= 1
                    else:
                        last = b
                        while last + 1 <= self.count - 2 and self._moved(last + 1, last + 2) == delta:
                            last += 1
                    if last > b:
                        self._repeat(b, last - b + 1, delta, chunked)
                        b = last + 1
                        continue
            self.band(b, chunked)
            self.prefetch(b)
            b += 1
        self.store_pending()
        if not chunked:
            self.free_weights()

    def _repeat(self, b: int, count: int, delta: dict[str, int], chunked: bool) -> None:
        """Bands b .. b + count - 1 as one repeated block: band b written, the rows held moved past the rest."""
        before = dict(self.have)
        rows = {
            self.ids[t]: v
            for t, v in delta.items()
            if v and not t.startswith("w:") and not (t == self.sink.name and self.sink.accumulates)
        }
        channels = {weights_of(t[2:]): v for t, v in delta.items() if v and t.startswith("w:")}
        with self.program.repeated(count, rows, channels):
            self.band(b, chunked)
            self.prefetch(b)
        self._moved_past(before, count, delta)

    def _moved_past(self, before: dict[str, Span], count: int, delta: dict[str, int]) -> None:
        """After a block of ``count`` alike bands counted once: the rows held (and the output rows waiting to be
        stored) moved past the other ``count - 1``, by ``delta`` a band, from where they were ``before`` it."""
        if self.pending is not None:
            moved = (count - 1) * delta[self.sink.name]
            self.pending = (self.pending[0] + moved, self.pending[1] + moved)
        for t, (lo, hi) in list(self.have.items()):
            was = before.get(t, (lo, hi))
            self.have[t] = (lo + (lo - was[0]) * (count - 1), hi + (hi - was[1]) * (count - 1))

    def _moved(self, a: int, b: int) -> dict[str, int] | None:
        """How far every tensor's needed rows move from band ``a`` to band ``b`` (None: not alike)."""
        first, second = self.needs(a), self.needs(b)
        if first.keys() != second.keys():
            return None
        moved = {}
        for t, (lo, hi) in second.items():
            if lo - first[t][0] != hi - first[t][1]:
                return None
            moved[t] = lo - first[t][0]
        pieces_a, pieces_b = self.prefetched(a), self.prefetched(b)  # the weights loaded for later segments
        moved.update({key: pieces_b[key] - pieces_a[key] for key in pieces_b})
        return moved

    def load_band(self, need: dict[str, Span]) -> None:
        for t in self.streamed:
            rows = need.get(t)
            if rows is None:
                continue
            start = max(rows[0], self.have.get(t, (0, 0))[1])
            if start < rows[1]:
                self.load_rows(t, (start, rows[1]))
                self.have[t] = (self.have.get(t, rows)[0], rows[1])

    def load_rows(self, t: str, rows: Span) -> None:
        """Rows of a streamed map loaded, in all its channels."""
        self.add_rows(self.first_step, LOAD, t, rows)

    def advance(self, b: int, keep_resident: bool = False) -> tuple[dict[str, Span], dict[int, list[tuple[str, Span]]]]:
        """Band ``b``'s input rows loaded (the next band's too, when loads run ahead); each layer's new rows,
        and per layer the rows of each tensor that no later band needs and that layer releases (its last reader
        here). The stored output is left out (stored, then freed, by the caller); so are resident inputs where
        ``keep_resident`` (a filter group keeps them whole for the next group)."""
        need, following = self.needs(b), self.needs(b + 1)
        if self.tiling.ahead and following:
            self.load_band(following)
        elif b:
            self.load_band(need)
        new: dict[str, Span] = {}
        for lay in self.layers:
            if lay.name in need:
                lo, hi = need[lay.name]
                start = max(lo, self.have.get(lay.name, (0, 0))[1])
                new[lay.name] = (start, hi)
                if start < hi:
                    self.have[lay.name] = (self.have.get(lay.name, (start, hi))[0], hi)
        releases: dict[int, list[tuple[str, Span]]] = {}
        for t, (lo, hi) in self.have.items():
            if keep_resident and t in self.place.resident:
                continue
            if not self.releasable(t) or t == self.sink.name and t in self.place.stored:
                continue
            last = self.readers[t][-1] if t in self.readers else self.by_name[t]
            keep_from = min(max(following[t][0], lo), hi) if t in following else hi
            if keep_from > lo:
                releases.setdefault(last.index, []).append((t, (lo, keep_from)))
        return new, releases

    def band(self, b: int, chunked: bool) -> None:
        """Band ``b``: its input rows loaded (the next band's too, when loads run ahead), every layer's new
        rows computed (chunk by chunk), the output stored, and the rows no later band needs freed."""
        program, tiling = self.program, self.tiling
        new, releases = self.advance(b)
        channels = self.sink.channels[1]
        chunk = tiling.chunk_channels if chunked else channels
        count = -(-channels // chunk)

        def span(i: int) -> Span:
            """Chunk i's output channels (worked out when asked: there may be millions of chunks)."""
            return (i * chunk, min((i + 1) * chunk, channels))

        weighted = [lay for lay in self.layers if lay.cost.weight_bytes]

        def load_chunk(span: Span) -> None:
            for lay in weighted:
                program.occupy(lay.step, LOAD, Region(weights_of(lay.name), (0, 1), span))

        def chunk_body(i: int) -> None:
            here = span(i)
            if chunked and tiling.ahead and i + 1 < count:
                load_chunk(span(i + 1))  # double-buffered: the next chunk loads while this one computes
            elif chunked and not tiling.ahead:
                load_chunk(here)
            last_chunk = i + 1 == count
            for lay in self.layers:
                rows = new.get(lay.name)
                cspan = here if chunked else lay.channels
                if rows is not None and rows[0] < rows[1]:
                    self.compute(lay, rows, cspan)
                for t, freed in releases.get(lay.index, ()):
                    if not chunked:
                        program.free(lay.step, self.rows_region(t, freed))
                    elif t in self.by_name:
                        program.free(lay.step, Region(self.ids[t], freed, here))  # this chunk's channels
                    elif last_chunk:  # inputs are read by every chunk: freed after the last
                        program.free(lay.step, self.rows_region(t, freed))
            if chunked:
                for lay in weighted:
                    program.free(lay.step, Region(weights_of(lay.name), (0, 1), here))
                self.store(b, new, here)

        if chunked and tiling.ahead:
            load_chunk(span(0))
        # chunks whose records are alike: full, not the last (which frees the inputs), and when the next
        # chunk loads ahead, the next is full too; of those, each run whose regions move alike: one block
        full = channels // chunk
        same = (full - 1 if tiling.ahead or channels % chunk == 0 else full) if chunked and self.compact else 0
        for first, run, shifts in self._chunk_runs(same, span):
            if run == 1:
                chunk_body(first)
            else:
                with program.repeated(run, {}, shifts):
                    chunk_body(first)
        for i in range(same, count):
            chunk_body(i)
        for t, freed in (pair for pairs in releases.values() for pair in pairs):
            self.have[t] = (freed[1], self.have[t][1])
        if not chunked:
            if self.sink.accumulates:
                self.store(b, new, self.sink.channels)
            elif self.sink.name in self.place.stored:
                # the rows of the band before stored now: the bus, serving loads and stores in program order,
                # then never holds the next band's rows behind rows still computing
                self.store_pending()
                self.pending = new.get(self.sink.name)
        if self.sink.name in self.place.stored and self.sink.name in new:
            self.have[self.sink.name] = (new[self.sink.name][1], new[self.sink.name][1])

    def _chunk_runs(self, same: int, span: Callable[[int], Span]) -> list[tuple[int, int, dict[TensorId, int]]]:
        """Chunks 0 .. ``same`` - 1 as runs (first chunk, chunks, how far each tensor's channels move per chunk)
        whose every chunk's regions are the run's first chunk's moved alike. When every layer reads channels
        that move evenly, the first chunks tell for all; else every chunk is compared with the next (a grouped
        conv's chunks stop, or jump, at a group's edge: a run ends there). Alike for every band and every run
        of the segment: worked out once."""
        key = (self.tiling.chunk_channels, same)
        if key in self._runs:
            return self._runs[key]
        runs: list[tuple[int, int, dict[TensorId, int]]] = []
        if all(_reads_move_evenly(lay.layer) for lay in self.layers):
            shifts = self._chunk_shifts([span(i) for i in range(min(same, 3))]) if same >= 2 else None
            runs = [(0, same, shifts)] if shifts is not None else [(i, 1, {}) for i in range(same)]
        else:
            first, shifts = 0, None  # the run under way: its first chunk, how its chunks move (None: one so far)
            regions = self._chunk_regions(span(0)) if same else ()
            for i in range(1, same):
                after = self._chunk_regions(span(i))
                moved = _channel_shifts(regions, after)
                if moved is None or shifts is not None and moved != shifts:
                    runs.append((first, i - first, shifts or {}))
                    first, moved = i, None
                regions, shifts = after, moved
            if same:
                runs.append((first, same - first, shifts or {}))
        self._runs[key] = runs
        return runs

    def _chunk_shifts(self, spans: list[Span]) -> dict[TensorId, int] | None:
        """How far each tensor's channels move from one chunk to the next, every chunk of ``spans`` compared
        with the next (None: they do not move alike)."""
        regions = [self._chunk_regions(span) for span in spans]
        shifts = [_channel_shifts(a, b) for a, b in zip(regions, regions[1:])]
        return shifts[0] if shifts and all(s is not None and s == shifts[0] for s in shifts) else None

    def _chunk_regions(self, channels: Span) -> tuple[Region, ...]:
        """What the chunk of output ``channels`` writes and reads, layer by layer, as :meth:`compute` writes it
        (one row: only the channels are compared)."""
        regions: list[Region] = []
        for lay in self.layers:
            regions.append(Region(lay.id, (0, 1), channels))
            reads = compute_reads(lay.cost, (0, 1), channels)
            if lay.accumulates:  # its input's rows read whole, as :meth:`compute` reads them
                reads = (self._part(lay, (0, 1), channels), *reads[len(lay.layer.inputs) :])
            regions.extend(reads)
        return tuple(regions)

    def compute(self, lay: _Layer, rows: Span, channels: Span) -> None:
        program = self.program
        if lay.accumulates:
            if rows[0] == 0:
                program.occupy(lay.step, ALLOC, Region(lay.id, (0, 1), channels))
            program.compute(lay.step, lay.cost, (0, 1), channels, part=self._part(lay, rows, channels))
        else:
            program.occupy(lay.step, ALLOC, Region(lay.id, rows, channels))
            program.compute(lay.step, lay.cost, rows, channels)

    def _part(self, lay: _Layer, rows: Span, channels: Span) -> Region:
        """The rows of its input an accumulating layer adds to its output ``channels``' one row, in the input
        channels those read (all of them for a dense layer, its own for a global pool run in channel groups)."""
        t = self.ids[lay.inputs[0]]
        read = input_channels(lay.layer, channels)[0]
        return Region(t, rows, read if read is not None else self.program.full(t).channels)

    def store_pending(self) -> None:
        if self.pending is not None and self.pending[0] < self.pending[1]:
            region = Region(self.sink.id, self.pending, self.sink.channels)
            self.program.store(self.sink.step, region)
            self.program.free(self.sink.step, region)
        self.pending = None

    def store(self, b: int, new: dict[str, Span], channels: Span) -> None:
        """The step's new output rows (in ``channels``) stored and freed, when later segments read them from
        external memory; a map that accumulates, once complete."""
        sink, program = self.sink, self.program
        if sink.name not in self.place.stored:
            return
        if sink.accumulates:
            if b == self.count - 1:
                region = Region(sink.id, (0, 1), channels)
                program.store(sink.step, region)
                program.free(sink.step, region)
            return
        rows = new.get(sink.name)
        if rows is not None and rows[0] < rows[1]:
            region = Region(sink.id, rows, channels)
            program.store(sink.step, region)
            program.free(sink.step, region)


class _PricedBands(_Bands):
    """A run in bands counted without writing its records: the same bands, the same repeated block, the same rows
    loaded, allocated and freed, added up as the program would count them (its peak is the most resident after any
    load or allocation; a repeated block's, its first iteration's busiest plus the growth of the others). Pricing
    asks hundreds of tilings for their peak only, and building the records was half their cost. Weights resident or
    streamed in chunks; not with weights loaded for later segments (:func:`peak` counts those on records). A property
    test checks it equals the count on the records."""

    def __init__(self, program: Program, segment: Segment, placement: Placement, tiling: Tiling) -> None:
        super().__init__(program, segment, placement, tiling, list(range(len(segment.groups))))
        self.resident = self.most = held_before(program, placement)

    def price(self) -> int:
        self.run()
        return self.most

    def _held(self, size: int) -> None:
        self.resident += size
        if self.resident > self.most:
            self.most = self.resident

    def load_weights(self) -> None:
        part, kept, size = dict(self.place.preloaded_part), self.program.kept, self.program.size
        for lay in self.layers:
            if lay.cost.weight_bytes and lay.name not in self.place.preloaded:
                w = weights_of(lay.name)
                if w not in kept:
                    self._held(size(w) - part.get(lay.name, 0) * self.program.cell_bytes[w])

    def free_weights(self) -> None:
        """Nothing is allocated after them: no peak to count."""

    def load_rows(self, t: str, rows: Span) -> None:
        self._held((rows[1] - rows[0]) * self.row_bytes[t])

    def _repeat(self, b: int, count: int, delta: dict[str, int], chunked: bool) -> None:
        """Band b counted once, the others as its shifted copies (:meth:`Program.repeated`)."""
        before = dict(self.have)
        self._repeated(count, lambda: self.band(b, chunked))
        self._moved_past(before, count, delta)

    def band(self, b: int, chunked: bool) -> None:
        new, releases = self.advance(b)
        sink, stored = self.sink, self.sink.name in self.place.stored
        if chunked:
            self._chunks(b, new, releases)
        else:
            for lay in self.layers:
                self._computed(lay, new.get(lay.name), lay.row_bytes)
                for t, (lo, hi) in releases.get(lay.index, ()):
                    self.resident -= (hi - lo) * self.row_bytes[t]
        for t, freed in (pair for pairs in releases.values() for pair in pairs):
            self.have[t] = (freed[1], self.have[t][1])
        if stored and not chunked and not sink.accumulates:  # a running sum is stored after its last band
            self.store_pending()
            self.pending = new.get(sink.name)
        if stored and sink.name in new:
            self.have[sink.name] = (new[sink.name][1], new[sink.name][1])

    def _computed(self, lay: _Layer, rows: Span | None, row_bytes: int) -> None:
        """A layer's new rows allocated (of ``row_bytes`` each): a running sum's one row with its first."""
        if rows is not None and rows[0] < rows[1]:
            if not lay.accumulates:
                self._held((rows[1] - rows[0]) * row_bytes)
            elif rows[0] == 0:
                self._held(row_bytes)

    def _chunks(self, b: int, new: dict[str, Span], releases: dict[int, list[tuple[str, Span]]]) -> None:
        """Band ``b``'s chunks of output channels, as :meth:`_Bands.band` writes them: every full chunk but the last
        (and the one after it, loaded ahead) holds and frees alike, counted once as the program counts a repeated
        block."""
        channels, chunk, ahead = self.sink.channels[1], self.tiling.chunk_channels, self.tiling.ahead
        count, full = -(-channels // chunk), channels // chunk
        cells, kept = self.program.cell_bytes, self.program.kept
        weights = sum(
            cells[weights_of(lay.name)]
            for lay in self.layers
            if lay.cost.weight_bytes and weights_of(lay.name) not in kept
        )
        stored = self.sink.name in self.place.stored

        def body(i: int, here: int) -> None:
            if ahead and i + 1 < count:
                self._held((min((i + 2) * chunk, channels) - (i + 1) * chunk) * weights)
            elif not ahead:
                self._held(here * weights)
            last = i + 1 == count
            for lay in self.layers:
                self._computed(lay, new.get(lay.name), here * cells[lay.id])
                for t, (lo, hi) in releases.get(lay.index, ()):
                    if t in self.by_name:
                        self.resident -= (hi - lo) * here * cells[self.ids[t]]
                    elif last:  # inputs are read by every chunk: freed after the last
                        self.resident -= (hi - lo) * self.row_bytes[t]
            self.resident -= here * weights
            if stored:
                rows = (0, 1) if self.sink.accumulates else new.get(self.sink.name)
                if rows is not None and rows[0] < rows[1] and (not self.sink.accumulates or b == self.count - 1):
                    self.resident -= (rows[1] - rows[0]) * here * cells[self.sink.id]

        if ahead:
            self._held(min(chunk, channels) * weights)
        same = full - 1 if ahead or channels % chunk == 0 else full
        if same:
            self._repeated(same, lambda: body(0, chunk))
        for i in range(same, count):
            body(i, min((i + 1) * chunk, channels) - i * chunk)

    def _repeated(self, count: int, body: Callable[[], None]) -> None:
        """``body`` counted once as the first of ``count`` alike (:meth:`Program.repeated`): the busiest point of
        the first plus the growth of the others."""
        start, most = self.resident, self.most
        self.most = start
        body()
        growth = self.resident - start
        self.most = max(most, self.most + (count - 1) * growth if growth > 0 else self.most)
        self.resident += (count - 1) * growth

    def store_pending(self) -> None:
        if self.pending is not None and self.pending[0] < self.pending[1]:
            self.resident -= (self.pending[1] - self.pending[0]) * self.sink.row_bytes
        self.pending = None


def write(
    program: Program,
    segment: Segment,
    placement: Placement,
    tiling: Tiling,
    steps: list[int],
    compact: bool = True,
) -> None:
    """Write the segment's records into ``program`` as steps ``steps`` (one per group)."""
    if tiling.band_rows:
        _Bands(program, segment, placement, tiling, steps).run(compact)
    else:
        _Rows(program, segment, placement, tiling, steps).run(compact)


def weight_part(name: str, channels: int) -> Region:
    """The weights of a layer's first ``channels`` output channels."""
    return Region(weights_of(name), (0, 1), (0, channels))


def held_before(program: Program, placement: Placement) -> int:
    """What is resident when a segment starts: its resident inputs, and the weights loaded for it before."""
    return (
        sum(program.size(map_of(t)) for t in placement.resident)
        + sum(program.size(weights_of(n)) for n in placement.preloaded)
        + sum(program.bytes(weight_part(n, channels)) for n, channels in placement.preloaded_part)
    )


def peak(program: Program, segment: Segment, placement: Placement, tiling: Tiling, limit: int | None = None) -> int:
    """The most bytes resident at once while the segment runs, on top of its resident inputs and preloaded
    weights: its records written into a scratch program, counted as the program counts them (in bands, counted as
    they would be, :class:`_PricedBands`). ``limit``: over the first driver steps only (row by row), an estimate from
    below."""
    if tiling.band_rows and not placement.prefetch:
        return _PricedBands(program, segment, placement, tiling).price()
    scratch = program.scratch()
    base = held_before(scratch, placement)
    scratch.resident = base
    steps = [scratch.begin(_PLAN) for _ in segment.groups]
    if tiling.band_rows:
        _Bands(scratch, segment, placement, tiling, steps).run()
    else:
        _Rows(scratch, segment, placement, tiling, steps).run(limit=limit)
    return max(scratch.peak, base)


class FirstRow(NamedTuple):
    """What a layer row by row holds when it computes its first row: that row, and the rows its window
    reads of each input (the same windows its runs read)."""

    row_bytes: int
    rows: int
    """Rows it produces (its input's, when it accumulates them into its one row)."""
    accumulates: bool
    reads: tuple[tuple[str, int, int, int, int], ...]
    """Per input: its name, the first row's window (first, stop), the input's height and its bytes per row."""


def first_row(program: Program, cost: LayerCost) -> FirstRow:
    layer = cost.layer
    partial = accumulates(layer)
    reads = tuple(
        (
            t,
            *_window(layer, layer.inputs.index(t), partial)(0),
            program.full(map_of(t)).rows[1],
            program.cell_bytes[map_of(t)] * program.full(map_of(t)).channels[1],
        )
        for t in dict.fromkeys(layer.inputs)
    )
    rows = layer.input_shape[0] if partial else layer.output_shape[0]
    return FirstRow(program.cell_bytes[map_of(layer.name)] * layer.output_shape[2], rows, partial, reads)


def least_peak(program: Program, segment: Segment, placement: Placement, firsts: dict[str, FirstRow]) -> int:
    """A bound from below on the segment's :func:`peak` row by row (over its first driver steps or all of
    them), without writing its records: when a layer computes its first row, the segment's weights (loaded
    before its first row, freed after its last), the resident maps no layer frees, that row and the rows
    its window reads of each input are all resident. The planner refuses a segment this already puts over
    the room without counting its records; a property test checks it never exceeds the counted peak.
    ``firsts``: each layer's :func:`first_row`, filled as they are needed."""
    resident, consumed = placement.resident, placement.consumed
    held = _held_throughout(program, segment, placement)
    first_rows = 0
    for c in _first_computed(segment, firsts, program):
        first = firsts[c.name]
        need = first.row_bytes
        for t, lo, hi, height, row_bytes in first.reads:
            if t in resident and t not in consumed:
                continue  # whole, in ``held``
            # a resident map read for the last time is freed below the lowest row its readers still need
            need += ((height if t in resident else hi) - lo) * row_bytes
        first_rows = max(first_rows, need)
    return held + first_rows


def least_final_peak(program: Program, segment: Segment, placement: Placement) -> int:
    """A bound from below on the segment's :func:`peak` row by row over its whole run, without writing its
    records: when its last row is computed, its weights, the resident maps no layer frees and the maps it
    keeps are all resident, whole. With :func:`least_peak` (its first rows), the planner refuses on it a
    segment whose kept outputs do not fit, and counts the run whole where neither end decides (a property
    test checks it never exceeds the counted peak)."""
    return _held_throughout(program, segment, placement) + sum(program.size(map_of(t)) for t in placement.kept)


def _held_throughout(program: Program, segment: Segment, placement: Placement) -> int:
    """What a segment run row by row holds from its first row to its last: its weights (loaded before the one,
    freed after the other; those preloaded too), and the resident maps no layer frees."""
    size, preloaded = program.size, placement.preloaded
    held = sum(size(map_of(t)) for t in placement.resident if t not in placement.consumed)
    held += sum(size(weights_of(n)) for n in preloaded)
    return held + sum(
        size(weights_of(c.name))
        for c in segment.costs
        if c.weight_bytes and c.name not in preloaded and weights_of(c.name) not in program.kept
    )


def alike(program: Program, segment: Segment) -> tuple[object, ...]:
    """What the segment's runs read besides its maps' names: per layer its op, attributes, shapes, unit and bytes,
    and where its inputs come from (by position among the segment's maps, :attr:`Segment.positions`), and the bytes
    per cell of every map it touches and of its layers' weights (kept on chip or not, in the layer). Two segments alike
    write the same records but for names, so peak alike under placements alike (:func:`placed`): a network repeats
    its blocks, and the planner counts one of them (a property test checks it on generated networks)."""
    position, cells = segment.positions, program.cell_bytes
    layers = tuple(
        (
            c.layer.op,
            c.layer.attrs,
            c.layer.input_shapes,
            c.layer.output_shape,
            tuple(position[t] for t in c.layer.inputs),
            c.unit,
            c.weight_bytes,
            c.output_bytes,
            c.input_bytes,
            weights_of(c.name) in program.kept,
        )
        for c in segment.costs
    )
    return layers, tuple(
        (cells.get(map_of(t)), cells.get(weights_of(t)) if t in segment.produced else None) for t in position
    )


def placed(segment: Segment, placement: Placement) -> tuple[frozenset[int], ...] | None:
    """The placement by the positions of the segment's maps (:func:`alike`); None when it names anything else (the
    weights of later segments it loads ahead, or parts of its own loaded during the segment before)."""
    position = segment.positions
    names = (placement.resident, placement.consumed, placement.kept, placement.stored, placement.preloaded)
    if placement.prefetch or placement.preloaded_part or any(t not in position for group in names for t in group):
        return None
    return tuple(frozenset(position[t] for t in group) for group in names)


def row_bounds(program: Program, segment: Segment, placement: Placement, tiling: Tiling, limit: int) -> tuple[int, int]:
    """Bounds on the segment's :func:`peak` row by row, worked out without writing its records, from the rows every
    map has reached once each of its first ``limit`` driver steps is done (:meth:`_Rows.reached`): from below, over
    those steps or all of them; from above, over those steps only (the planner's estimate). A property test checks
    both against counted peaks.

    Beside the resident maps and the segment's weights, every map holds the rows it has produced (or loaded) above
    those freed; a map stored as it is produced frees no row before it is stored, and a step stores the rows the
    step before produced (all of them after the last). From below: what every map holds once a step is done (where
    :func:`least_peak` sees one layer's first row, this sees every line buffer at once: tighter on a long chain).
    From above: during a step, no map holds more than the rows it has reached by its end above those freed by the
    end of the step before, nor more than its line buffer holds (:func:`_lines`)."""
    size, resident, consumed = program.size, placement.resident, placement.consumed
    frame = _frame(program, segment, False, tuple(range(len(segment.groups))))
    held = _held_throughout(program, segment, placement) + sum(size(map_of(t)) for t in resident & consumed)
    lower = upper = held
    before: _Reach | None = None
    freed_before: dict[str, int] = {}
    lines = _lines(frame, placement, tiling.skew)
    for step in range(min(limit, frame.steps)):
        now = frame.reach(tiling.skew, step)
        settled = reached = 0
        freed_now: dict[str, int] = {}
        available_now: dict[str, int] = {}
        for t, row_bytes in frame.row_bytes.items():
            lay = frame.by_name.get(t)
            if lay is None:  # an input: loaded row by row, or resident whole (in ``held``), less the rows freed
                if t not in resident:
                    rows = available = now.load[t]
                    freed = min(now.keep[t], available)
                else:
                    rows, available = 0, frame.heights[t]
                    freed = now.keep[t] if t in consumed else 0
            else:
                rows = now.produced[t]
                if lay.accumulates:  # its one row, allocated with its first input row, freeable once complete
                    available, rows = int(rows == lay.rows), int(rows > 0)
                elif t in placement.stored:  # freed once stored: the rows the step before produced (all, at the end)
                    available = rows if step + 1 == frame.steps else before.produced[t] if before else 0
                else:
                    available = rows
                if t in placement.kept:
                    freed = 0
                elif t in now.keep:
                    freed = min(now.keep[t], available)
                else:
                    freed = available  # a sink: freed as it is produced (or stored)
            freed_now[t], available_now[t] = freed, available
            settled += (rows - freed) * row_bytes
            reached += min(rows - freed_before.get(t, 0), lines.get(t, rows)) * row_bytes
        settled += _unreleased(frame, placement, now, before, freed_now, available_now)
        lower, upper = max(lower, held + settled), max(upper, held + reached)
        before, freed_before = now, freed_now
    return lower, upper


def _lines(frame: _Frame, placement: Placement, skew: bool) -> dict[str, int]:
    """The most rows each map holds at once row by row, where a line buffer bounds it: read by one layer and freed as
    it reads (:func:`_line`; a row ahead when loaded, or produced skewed), or a sink freed as it is produced (its
    one row)."""
    lines: dict[str, int] = {}
    skewed = frame.skewed(skew)
    for t in frame.row_bytes:
        lay = frame.by_name.get(t)
        if t in placement.resident or t in placement.kept or lay is not None and t in placement.stored:
            continue  # whole, or freed only as stored
        readers = frame.readers.get(t, ())
        if len(readers) == 1:
            line = readers[0].lines[t]
            if line is not None:
                lines[t] = line[1] if lay is None or lay.index in skewed else line[0]
        elif not readers and lay is not None and not lay.accumulates:
            lines[t] = 1
    return lines


def _unreleased(
    frame: _Frame,
    placement: Placement,
    now: _Reach,
    before: _Reach | None,
    freed: dict[str, int],
    available: dict[str, int],
) -> int:
    """Bytes a driver step's last allocated row holds beyond what is held once the step is done: the last sink's
    last row of the step is allocated after everything the step produces and loads, and only then are the rows it
    no longer needs released (its inputs' below its next row's window, and itself when it is not kept or stored).
    0 when the last sink produces no row in the step."""
    sink = frame.sinks[-1]
    done = now.produced[sink.name]
    if done <= (before.produced[sink.name] if before else 0) or sink.name in placement.kept:
        return 0
    extra = 0
    for t in sink.inputs:
        if not freed[t]:
            continue
        keep = frame.heights[t]
        for r in frame.readers[t]:
            d = done - 1 if r is sink else now.produced[r.name]
            keep = min(keep, r.windows[t](d)[0] if d < r.rows else frame.heights[t])
        extra += (freed[t] - min(keep, available[t])) * frame.row_bytes[t]
    if sink.accumulates:  # complete with this row, and freed once complete
        extra += frame.row_bytes[sink.name] if done == sink.rows else 0
    elif sink.name not in placement.stored:  # freed as it is produced
        extra += frame.row_bytes[sink.name]
    return extra


def _first_computed(segment: Segment, firsts: dict[str, FirstRow], program: Program) -> list[LayerCost]:
    """The layers whose first row the first driver step computes: every sink, and every layer whose first
    row some such layer's first row reads (all of them but below an empty window, as of a padding row)."""
    for c in segment.costs:
        if c.name not in firsts:
            firsts[c.name] = first_row(program, c)
    readers, produced = segment.readers, segment.produced
    forced = {c.name for c in segment.costs if c.name not in readers}
    for c in reversed(segment.costs):
        if c.name not in forced:
            continue
        first = firsts[c.name]
        for t, _, hi, _, _ in first.reads:
            if t in produced and (first.rows == 1 or firsts[t].accumulates or hi > 0):
                forced.add(t)
    return [c for c in segment.costs if c.name in forced]


def _reads_move_evenly(layer: Layer) -> bool:
    """Whether every full chunk of the layer's output channels reads its inputs' channels moved by one shift
    per chunk (or not moved): it reads the same channels, all of them or a broadcast one, or it is a conv of
    one group or of one output channel per group. The other rules (a conv's groups, neighbours clipped at
    the edges, inputs stacked) move unevenly where a chunk meets an edge."""
    kind = TRAITS[layer.op].channels
    if kind is Channels.GROUPS:
        assert isinstance(layer.attrs, (ConvAttrs, ConvTransposeAttrs))
        return layer.attrs.groups in (1, layer.output_shape[2])
    return kind in (Channels.SAME, Channels.ALL, Channels.BROADCAST)


def _channel_shifts(before: tuple[Region, ...], after: tuple[Region, ...]) -> dict[TensorId, int] | None:
    """How far each tensor's channels move from the regions ``before`` to the regions ``after`` (None: they do
    not move alike: a region changes its rows or width, or one tensor's regions move apart)."""
    if len(before) != len(after):
        return None
    moved: dict[TensorId, int] = {}
    for a, b in zip(before, after):
        shift = b.channels[0] - a.channels[0]
        if a.tensor != b.tensor or a.rows != b.rows or b.channels[1] - a.channels[1] != shift:
            return None
        if moved.setdefault(a.tensor, shift) != shift:
            return None
    return {t: v for t, v in moved.items() if v}


_PLAN = StepPlan((), (), Location.INTERNAL)
"""The plan of a scratch program's steps: only their records are counted."""

__all__ = [
    "CapacityError",
    "FirstRow",
    "Group",
    "Placement",
    "Segment",
    "Tiling",
    "alike",
    "least_peak",
    "peak",
    "placed",
    "row_bounds",
    "write",
]
