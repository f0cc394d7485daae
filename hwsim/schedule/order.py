"""The loop order of one step whose weights do not fit beside a band: which tensor is moved again.

A step that does not fit whole runs in bands of its output rows (:mod:`hwsim.schedule.segment`). When
its weights do not fit beside a band either, three orders remain, and each moves a tensor again:

- **bands outermost** (:class:`hwsim.schedule.segment.Tiling` with chunks): for every band, the weights
  stream through in chunks of output channels. The input is read once; the weights once per band.
- **filter groups outermost** (:class:`FilterGroups`): for every group of ``m`` output channels, its
  weights are loaded once and the input streams past in bands (each band's rows shared with the next
  kept, as a band order keeps them), while the group's outputs are computed and stored. The weights are
  read once; every input channel a group reads, once per group (a depthwise layer's groups read
  disjoint channels: its input is read once too).
- **input passes** (:class:`InputPasses`): filter groups outermost, bands inside, and each band of the
  group's output computed in passes over a few input channels at a time: a pass loads the input rows
  the band reads (its halo included) in its channels and the group's weights of those channels, adds
  them to the band's partial sums, which wait on chip, and frees them. Neither a band of every input
  channel nor a group's every weight need fit: only a band of the group's partial sums, with a pass's
  input rows and weights. The weights are read once per band; the input's rows once per group (and
  the halo rows once more per band).

The third is Eyeriss's (JSSC 2017, Table III: ``m`` filters a pass, their partial sums held while the
input channels stream by, the filters loaded once for ``n`` images); here every band holds the whole
batch, so the weights a band or a group holds serve every image. Partial sums are held at the output
map's precision, as Eyeriss holds them (16 bits, as its maps: a PE's partial-sum scratch pad is 24 x
16 b and the global buffer holds 16-bit partial sums); an accumulator wider than the map would make a
band's partial sums larger than its output by that ratio, which this model does not charge. Which order
moves fewer bytes depends on the layer: the planner (:meth:`hwsim.schedule.planner.Planner.tiling`)
prices all three, with the largest group and band that fit the capacity, and takes filter groups only
when they load strictly fewer bytes again than bands, input passes only when strictly fewer than the
better of those (a tie keeps the earlier order). A depthwise layer's group holds a band of its own
channels only, so it may fit where no band of every channel does.

A group's records are the band order's records of one chunk, its weights loaded before the bands and
freed after them; groups that differ only in their channels are one repeated block, around the bands'.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from hwsim.model.regions import CHANNELS, ROWS, band_rows_read, input_channels, input_rows
from hwsim.ops import Channels, ConvAttrs, ConvTransposeAttrs, Rows
from hwsim.schedule.base import ALLOC, FREE, LOAD, Action, Region, Span, TensorId, map_of, weights_of
from hwsim.schedule.program import Program
from hwsim.schedule.segment import (
    _PLAN,
    Placement,
    Segment,
    Tiling,
    _Bands,
    _Layer,
    _Run,
    held_before,
)
from hwsim.schedule.segment import peak as _band_peak
from hwsim.schedule.segment import write as _band_write
from hwsim.schedule.slices import by_input, column, passable, rows_of


@dataclass(frozen=True)
class FilterGroups(Tiling):
    """Groups of ``chunk_channels`` output channels outermost, each running every band of ``band_rows``
    rows (a :class:`Tiling` of another order: never equal to a band order of the same sizes)."""


@dataclass(frozen=True)
class InputPasses(Tiling):
    """Groups of ``chunk_channels`` output channels outermost, each running every band of ``band_rows`` rows,
    each band in passes over ``input_channels`` input channels at a time (module docstring)."""

    input_channels: int = 1


def groups_of(segment: Segment, tiling: Tiling) -> int:
    """How many filter groups the step runs (each reads the input again)."""
    return -(-segment.output.layer.output_shape[2] // tiling.chunk_channels)


def groupable(segment: Segment) -> bool:
    """Whether the step can run filter groups outermost: it can stream its weights in chunks (a step without
    weights, a pooling layer, say, runs in groups of its channels the same way), and every group reads every map
    it reads from outside (a concat's group may read one input alone: not here)."""
    if not segment.chunkable:
        return False
    channels = segment.output.layer.output_shape[2]
    return all(_read_channels(segment, t, here) for t in segment.inputs for here in ((0, 1), (channels - 1, channels)))


def conv_group(segment: Segment) -> int:
    """Output channels per convolution group of the step's first layer (1 for a depthwise layer), or 0 when
    every output channel reads all its input."""
    layer = segment.costs[0].layer
    if CHANNELS[layer.op] is not Channels.GROUPS:
        return 0
    assert isinstance(layer.attrs, (ConvAttrs, ConvTransposeAttrs))
    return layer.output_shape[2] // layer.attrs.groups if layer.attrs.groups > 1 else 0


def _spread(channels: int, widest: int, unit: int = 1) -> int:
    """Groups of whole ``unit``s no wider than ``widest``: as few as that allows, as even as they go."""
    units = channels // unit
    return unit * -(-units // -(-units // (widest // unit)))


def group_widths(segment: Segment, widest: int) -> list[int]:
    """Widths of filter groups to try, none wider than ``widest`` (which fits), those whose groups read the
    fewest input channels in all first, then the narrowest: ``widest`` itself; spread over as few groups as
    it allows, as evenly as they go; for a grouped convolution, whose filter group reads the inputs of
    every convolution group it straddles, as many whole convolution groups a filter group, or the widest
    divisor of one (no filter group then reads two, though it may need more groups)."""
    channels = segment.output.layer.output_shape[2]
    per = conv_group(segment)
    widths = {widest, _spread(channels, widest)}
    if per > 1 and widest >= per:
        widths.add(_spread(channels, widest, per))
    elif per > 1:
        widths.add(max(d for d in range(1, widest + 1) if per % d == 0))

    def reads(width: int) -> int:
        if per <= 1:
            return -(-channels // width)  # each group reads all the input, or its own channels: fewest groups
        spans = [
            _read_channels(segment, t, (lo, min(lo + width, channels)))
            for lo in range(0, channels, width)
            for t in segment.inputs
        ]
        return sum(span[1] - span[0] for span in spans if span is not None)

    return sorted(widths, key=lambda w: (reads(w), w))


def _read_channels(segment: Segment, t: str, here: Span) -> Span | None:
    """The channels of map ``t`` that output channels ``here`` of the step read (None: none)."""
    spans = [
        c
        for cost in segment.costs
        for name, c in zip(cost.layer.inputs, input_channels(cost.layer, here))
        if name == t and c is not None and c[1] > c[0]
    ]
    return (min(lo for lo, _ in spans), max(hi for _, hi in spans)) if spans else None


class _Groups(_Bands):
    """One step, filter groups outermost, every band of the input inside each (module docstring)."""

    def __init__(self, program: Program, segment: Segment, placement: Placement, tiling: Tiling, steps: list[int]):
        super().__init__(program, segment, placement, tiling, steps)
        self.width = self.sink.channels[1]
        self.here: Span = (0, self.width)
        """The output channels of the group being written."""
        self.weighted = [lay for lay in self.layers if lay.cost.weight_bytes]

    def span(self, g: int) -> Span:
        m = self.tiling.chunk_channels
        return (g * m, min((g + 1) * m, self.width))

    def run(self, compact: bool = True) -> None:
        """Every group: its weights (the next group's loading during it, when loads run ahead), its bands,
        its weights freed. Groups alike but for their channels as one block; the resident inputs this step
        consumes freed after the last, and the weights loaded for later segments after that."""
        count, ahead = groups_of(self.segment, self.tiling), self.tiling.ahead
        if ahead:
            self.weights(LOAD, self.span(0))
        m = self.tiling.chunk_channels
        full = self.width // m
        same = (full - 1 if ahead else full) if compact else 0
        per = conv_group(self.segment)
        alike = same >= 2 and (not per or m % per == 0)  # narrower groups than a conv group's read its inputs again
        shifts = self._chunk_shifts([self.span(i) for i in range(min(same, 3))]) if alike else None
        first = 0
        if shifts is not None:
            with self.program.repeated(same, {}, shifts):
                self.group(0, count, compact)
            first = same
        for g in range(first, count):
            self.group(g, count, compact)
        for t in self.place.consumed & set(self.segment.inputs):
            self.program.free(self.first_step, self.program.full(self.ids[t]))
        for step in range(len(self.progress)):
            _Run.prefetch(self, step)

    def group(self, g: int, count: int, compact: bool) -> None:
        here = self.here = self.span(g)
        if not self.tiling.ahead:
            self.weights(LOAD, here)
        elif g + 1 < count:
            self.weights(LOAD, self.span(g + 1))  # double-buffered: the next group's load while this one runs
        self.have = {}
        super().run(compact)  # the bands, chunked: the weights are this method's
        self.weights(FREE, here)

    def weights(self, action: Action, channels: Span) -> None:
        """Load (or free) the weights of output ``channels``."""
        for lay in self.weighted:
            region = Region(weights_of(lay.name), (0, 1), channels)
            self.program.add(lay.step, action, region, self.program.bytes(region))

    def prefetch(self, step: int) -> None:
        """Weights for later segments load after the last group (:meth:`run`), not band by band."""

    def prefetched(self, step: int) -> dict[str, int]:
        return {}

    def load_rows(self, t: str, rows: Span) -> None:
        """Rows of a streamed map loaded, in the channels the group reads."""
        self.program.occupy(self.first_step, LOAD, self.region(t, rows))

    def region(self, t: str, rows: Span) -> Region:
        """Rows of map ``t`` in the channels the current group reads or writes."""
        channels = self.here if t in self.by_name else _read_channels(self.segment, t, self.here)
        assert channels is not None  # groupable
        return Region(self.ids[t], rows, channels)

    def band(self, b: int, chunked: bool) -> None:
        """Band ``b`` of the current group: the input rows it adds loaded (the next band's, when loads run
        ahead), every layer's new rows computed in the group's channels, the output's stored, and the rows
        no later band of the group needs freed (a resident input stays for the next group)."""
        program, here = self.program, self.here
        new, releases = self.advance(b, keep_resident=True)
        for lay in self.layers:
            rows = new.get(lay.name)
            if rows is not None and rows[0] < rows[1]:
                self.compute(lay, rows, here)
            for t, freed in releases.get(lay.index, ()):
                program.free(lay.step, self.region(t, freed))
        self.store(b, new, here)
        for t, freed in (pair for pairs in releases.values() for pair in pairs):
            self.have[t] = (freed[1], self.have[t][1])
        if self.sink.name in self.place.stored and self.sink.name in new:
            self.have[self.sink.name] = (new[self.sink.name][1], new[self.sink.name][1])


class _Passes(_Groups):
    """One step, filter groups outermost, every band inside each, and in each band the first layer's output
    computed in passes over its input channels (module docstring): per pass, the input rows the band reads
    (halo included) in the pass's channels and their weights for the group are loaded (the next pass's, when
    loads run ahead), added to the band's partial sums, and freed. The layers after the first work on the
    group's channels once the last pass is done."""

    def __init__(self, program: Program, segment: Segment, placement: Placement, tiling: Tiling, steps: list[int]):
        super().__init__(program, segment, placement, tiling, steps)
        self.first = self.layers[0]
        self.weighted = [lay for lay in self.layers[1:] if lay.cost.weight_bytes]  # the first's load by pass
        self.source = self.first.inputs[0]
        self.streams = self.source not in self.place.resident
        assert isinstance(tiling, InputPasses)
        self.per_pass = tiling.input_channels
        self.inputs = self.first.layer.input_shape[2]
        self.per_input = column(self.first.cost).per_input

    def load_band(self, need: dict[str, Span]) -> None:
        """Nothing: the input streams pass by pass (:meth:`passes`)."""

    def _chunk_shifts(self, spans: list[Span]) -> dict[TensorId, int] | None:
        """As filter groups move, with the first layer's weights by input channel moving with its output."""
        shifts = super()._chunk_shifts(spans)
        if shifts is not None:
            shifts[by_input(self.first.name)] = shifts.get(self.first.id, 0)
        return shifts

    def compute(self, lay: _Layer, rows: Span, channels: Span) -> None:
        if lay is self.first:
            self.passes(rows, channels)
        else:
            super().compute(lay, rows, channels)

    def passes(self, rows: Span, channels: Span) -> None:
        """The first layer's ``rows`` x ``channels``: its partial sums allocated, then every pass."""
        program, first, width = self.program, self.first, self.per_pass
        program.occupy(first.step, ALLOC, Region(first.id, rows, channels))
        source = Region(self.ids[self.source], first.spans[self.source](rows), (0, 0))
        count, ahead = -(-self.inputs // width), self.tiling.ahead

        def span(k: int) -> Span:
            return (k * width, min((k + 1) * width, self.inputs))

        def move(action: Action, k: int) -> None:
            """Pass ``k``'s input rows (when streamed) and weights loaded, or freed."""
            inputs = span(k)
            weights = Region(by_input(first.name), rows_of(first.cost, inputs), channels)
            for region in (source._replace(channels=inputs), weights) if self.streams else (weights,):
                program.add(first.step, action, region, program.bytes(region))

        def one(k: int) -> None:
            if not ahead:
                move(LOAD, k)
            elif k + 1 < count:
                move(LOAD, k + 1)  # double-buffered: the next pass's loads while this one computes
            program.compute_pass(first.step, first.cost, rows, channels, span(k), k == 0)
            move(FREE, k)

        if ahead:
            move(LOAD, 0)
        one(0)
        # passes 1 .. alike - 1 alike: full, not the last (its weights take the rows left over), nor loading it ahead
        alike = count - 2 if ahead else count - 1
        rest = 1
        if alike - 1 >= 2:
            with program.repeated(
                alike - 1, {by_input(first.name): width * self.per_input}, {self.ids[self.source]: width}
            ):
                one(1)
            rest = alike
        for k in range(rest, count):
            one(k)


def passable_step(segment: Segment) -> bool:
    """Whether the step can run its first layer in passes over its input channels: one map in, read by the first
    layer alone, whose every output channel reads every input channel; the layers after it work channel by
    channel on the same rows."""
    if not segment.chunkable:
        return False
    first, *rest = segment.costs
    if (
        not passable(first)
        or segment.inputs != (first.layer.inputs[0],)
        or len(segment.readers[segment.inputs[0]]) != 1
    ):
        return False
    return all(ROWS[c.layer.op] is Rows.SAME for c in rest)


def passes_reread(program: Program, segment: Segment, placement: Placement, tiling: Tiling) -> int:
    """Bytes the step in input passes loads beyond loading every tensor once: its first layer's weights once
    per band after the first, and (streamed) the input rows each band reads, halo included, once per group."""
    first = segment.costs[0]
    height, channels = first.layer.output_shape[0], first.layer.output_shape[2]
    bands = -(-height // tiling.band_rows)
    total = (bands - 1) * first.weight_bytes
    source = first.layer.inputs[0]
    if source not in placement.resident:
        groups = -(-channels // tiling.chunk_channels)
        row_bytes = program.size(map_of(source)) // first.layer.input_shape[0]
        rows = band_rows_read(first.layer, tiling.band_rows)
        total += groups * rows * row_bytes - program.size(map_of(source))
    return total


def write(
    program: Program,
    segment: Segment,
    placement: Placement,
    tiling: Tiling,
    steps: list[int],
    compact: bool = True,
) -> None:
    """:func:`hwsim.schedule.segment.write` in the tiling's loop order."""
    if isinstance(tiling, InputPasses):
        _Passes(program, segment, placement, tiling, steps).run(compact)
    elif isinstance(tiling, FilterGroups):
        _Groups(program, segment, placement, tiling, steps).run(compact)
    else:
        _band_write(program, segment, placement, tiling, steps, compact)


def peak(program: Program, segment: Segment, placement: Placement, tiling: Tiling, limit: int | None = None) -> int:
    """:func:`hwsim.schedule.segment.peak` in the tiling's loop order."""
    if not isinstance(tiling, (FilterGroups, InputPasses)):
        return _band_peak(program, segment, placement, tiling, limit)
    scratch = program.scratch()
    base = held_before(scratch, placement)
    scratch.resident = base
    write(scratch, segment, placement, tiling, [scratch.begin(_PLAN) for _ in segment.groups])
    return max(scratch.peak, base)


def largest(most: int, fits: Callable[[int], bool]) -> int | None:
    """The largest of 1 .. ``most`` that fits, by bisection (a larger group never needs less room)."""
    if fits(most):
        return most
    return _bisect(0, most, fits) or None  # fits(0) is not asked: 0 stands for "none fits"


def _bisect(lo: int, hi: int, fits: Callable[[int], bool]) -> int:
    """The largest of ``lo`` .. ``hi - 1`` that fits, where ``lo`` fits (or stands for none) and ``hi`` does not,
    by bisection (a larger value never needs less room)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def reread(segment: Segment, width: int, streamed: dict[str, int]) -> int:
    """Bytes of the maps the step streams from outside (``streamed``: their sizes) that filter groups of
    ``width`` channels load beyond loading each once: every group loads every row of the channels it reads."""
    channels = segment.output.layer.output_shape[2]
    shapes = {t: shape for c in segment.costs for t, shape in zip(c.layer.inputs, c.layer.input_shapes)}
    total = 0
    for t, size in streamed.items():
        spans = (_read_channels(segment, t, (lo, min(lo + width, channels))) for lo in range(0, channels, width))
        read = sum(span[1] - span[0] for span in spans if span is not None)
        total += size * read // shapes[t][2] - size
    return total


def filter_groups(
    segment: Segment,
    ahead: bool,
    spare: float,
    streamed: dict[str, int],
    beat: float,
    fits: Callable[[Tiling], bool],
    tallest: Callable[[Callable[[int], bool]], int | None],
) -> tuple[FilterGroups, int] | None:
    """The step in filter groups: the largest group that fits beside one-row bands, its channels spread evenly
    over as many groups (:func:`group_widths`), then the tallest band (``tallest``: the planner's search over
    heights) that fits beside it; with the bytes it loads beyond loading every tensor once (:func:`reread`).
    None: it cannot run so, nothing fits, or it cannot load fewer than ``beat`` bytes again. A layer whose
    every output channel reads all its input (the maps ``streamed`` from outside) reads it again for each
    group after the first: as many groups as the ``spare`` bytes beside the maps resident when it starts
    leave for one group's weights are the fewest, and as many as the widest group that fits, the fewest of
    this order."""
    if not groupable(segment) or spare <= 0:
        return None
    channels, everything = segment.output.layer.output_shape[2], not conv_group(segment)
    if everything and (math.ceil(segment.weight_bytes / spare) - 1) * sum(streamed.values()) >= beat:
        return None
    widest = largest(channels, lambda m: fits(FilterGroups(1, m, ahead)))
    if widest is None or everything and reread(segment, widest, streamed) >= beat:
        return None
    # a narrower group may straddle more convolution groups than the widest, and need more room
    width = next(w for w in group_widths(segment, widest) if fits(FilterGroups(1, w, ahead)))
    band = tallest(lambda b: fits(FilterGroups(b, width, ahead)))
    assert band is not None  # one-row bands fit
    return FilterGroups(band, width, ahead), reread(segment, width, streamed)


def _down_from(most: int, fits: Callable[[int], bool]) -> int | None:
    """The largest of 1 .. ``most`` that fits, searched down from ``most`` (a bound that is usually met or nearly):
    steps of 1, 2, 4 .. until one fits, then bisection between it and the last that did not."""
    step, hi = 1, most + 1  # not fits(hi), or hi past the range
    while True:
        lo = max(hi - step, 1)
        if fits(lo):
            break
        if lo == 1:
            return None
        hi, step = lo, step * 2
    return _bisect(lo, hi, fits)


def input_passes(
    program: Program,
    segment: Segment,
    placement: Placement,
    ahead: bool,
    spare: float,
    heights: tuple[int, ...],
    beat: float,
    fits: Callable[[Tiling], bool],
) -> tuple[InputPasses, int] | None:
    """The step in input passes (:class:`InputPasses`): per band height (``heights``, tallest first), the widest
    group that fits beside one-input-channel passes; of those, the one that loads the fewest bytes again
    (:func:`passes_reread`), its channels spread evenly over as many groups, and then the widest passes that fit.
    None: it cannot run so, nothing fits, or it cannot load fewer than ``beat`` bytes again.

    Few peaks are counted. The widest group that could fit each height (what every pass holds: a band of partial
    sums, one input channel's rows and weights, two with loads ahead; and what the next layer's band adds beside
    the partial sums; within ``spare`` bytes beside the maps resident when it starts) bounds the bytes it loads
    again from below; heights are searched fewest bytes first, until that bound reaches ``beat`` or the best found,
    and the searches for the group and the pass start at those bounds, which counted peaks nearly meet."""
    if not passable_step(segment) or spare <= 0 or placement.preloaded or placement.preloaded_part:
        return None
    if beat == math.inf and not fits(InputPasses(heights[-1], 1, ahead)):
        return None  # nothing else fits, nor does the least of this order
    first = segment.costs[0]
    channels, inputs = first.layer.output_shape[2], first.layer.input_shape[2]
    source = first.layer.inputs[0]
    held = 2 if ahead and inputs > 1 else 1  # passes held at once: the next loads ahead
    psum = program.cell_bytes[map_of(first.name)]  # a row of one output channel, every image
    beside = sum(program.cell_bytes[map_of(c.name)] for c in segment.costs[:2])  # the next layer's band computed
    last = rows_of(first, (inputs - 1, inputs))  # the last input channel's weights, with the rows left over
    weights = program.bytes(Region(by_input(first.name), last, (0, 1)))  # of one output channel: a pass's most

    def rows(band: int) -> int:
        """Bytes of one input channel's rows a band reads (none when the input is resident)."""
        lo, hi = input_rows(first.layer, (0, band))[0]
        return (hi - lo) * program.cell_bytes[map_of(source)] if source not in placement.resident else 0

    bounds = []  # per height, the widest group that could fit and the fewest bytes it could load again
    for band in heights:
        most = min(channels, int((spare - held * rows(band)) // (band * psum + held * weights)))
        most = min(most, int(spare // (band * beside)))
        if most >= 1:
            bounds.append((passes_reread(program, segment, placement, InputPasses(band, most, ahead)), band, most))
    found: tuple[InputPasses, int] | None = None
    for least, band, most in sorted(bounds, key=lambda bound: (bound[0], -bound[1])):  # a tie: the taller band
        if least >= (found[1] if found else beat):
            break  # no height left can load fewer bytes again
        widest = _down_from(most, lambda m: fits(InputPasses(band, m, ahead)))  # noqa: B023 (called here)
        if widest is None:
            continue
        # as few groups, as even as they go (a kept output's last group may not fit a narrower width: then the widest)
        even = InputPasses(band, _spread(channels, widest), ahead)
        tiling = even if fits(even) else InputPasses(band, widest, ahead)
        again = passes_reread(program, segment, placement, tiling)
        if again < (found[1] if found else beat):
            found = tiling, again
    if found is None:
        return None
    tiling, again = found
    pass_bytes = held * (rows(tiling.band_rows) + tiling.chunk_channels * weights)
    most = min(inputs, max(1, int((spare - tiling.band_rows * tiling.chunk_channels * psum) // pass_bytes)))
    width = _down_from(most, lambda c: fits(replace(tiling, input_channels=c)))
    assert width is not None  # one-channel passes fit
    return replace(tiling, input_channels=width), again


def note(tiling: Tiling, segment: Segment) -> str:
    """The report's word on how a step with streamed weights runs."""
    if isinstance(tiling, InputPasses):
        return (
            f"{groups_of(segment, tiling)} filter groups of {tiling.chunk_channels} channels, each band in passes "
            f"over {tiling.input_channels} input channels: partial sums held, weights loaded once per band"
        )
    if isinstance(tiling, FilterGroups):
        groups = groups_of(segment, tiling)
        if not segment.weight_bytes:
            return f"{groups} groups of {tiling.chunk_channels} channels outermost, each loading the channels it reads"
        if groups == 1:
            return "weights loaded once; each band's output stored as it is computed"
        return (
            f"{groups} filter groups of {tiling.chunk_channels} channels outermost: weights loaded once, "
            f"the input channels a group reads loaded for each group"
        )
    return f"weights streamed in chunks of {tiling.chunk_channels} channels"
