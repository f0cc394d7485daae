"""Which part of each input a layer reads to produce part of its output (receptive fields, halos).

Rows are the height axis of a map; channels its last axis. A tiled schedule asks this for every
band it computes; the validator asks it again to check that the band's inputs were resident. How
an op's output rows and channels read its inputs is one of its traits, a kind (:class:`hwsim.ops.Rows`,
:class:`hwsim.ops.Channels`); the arithmetic of each kind is here.
"""

from __future__ import annotations

from hwsim.model.graph import Layer
from hwsim.ops import (
    TRAITS,
    Channels,
    ConvAttrs,
    ConvTransposeAttrs,
    LrnAttrs,
    PadAttrs,
    Rows,
    UpsampleAttrs,
    Window,
)

Span = tuple[int, int]
"""[start, stop) along one axis."""

ROWS = {op: traits.rows for op, traits in TRAITS.items()}
CHANNELS = {op: traits.channels for op, traits in TRAITS.items()}
# Each op's kinds in a dict, and each kind's member in a module global: ``TRAITS[op].rows`` and
# ``Rows.SAME`` are attribute lookups, as slow as the rest of a receptive field, and a band asks for several
SAME_ROWS, WINDOW_ROWS, WHOLE_ROWS, SCALE_ROWS, ACCUMULATE_ROWS = (
    Rows.SAME,
    Rows.WINDOW,
    Rows.WHOLE,
    Rows.SCALE,
    Rows.ACCUMULATE,
)
BROADCAST_ROWS, PADDED_ROWS, TRANSPOSED_ROWS = Rows.BROADCAST, Rows.PADDED, Rows.TRANSPOSED
SAME_CHANNELS, GROUP_CHANNELS, ALL_CHANNELS, NEIGHBOUR_CHANNELS, STACKED_CHANNELS, BROADCAST_CHANNELS = (
    Channels.SAME,
    Channels.GROUPS,
    Channels.ALL,
    Channels.NEIGHBOURS,
    Channels.STACKED,
    Channels.BROADCAST,
)


def _window_rows(rows: Span, kernel: int, stride: int, pad_top: int, height: int) -> Span:
    """Input rows under the windows of output rows ``rows``: the band plus its halo, clipped to the map
    (empty, at the edge, where the windows lie in the padding alone)."""
    start, stop = rows
    if stop <= start:
        return (0, 0)
    first = min(max(start * stride - pad_top, 0), height)
    return (first, max(min((stop - 1) * stride - pad_top + kernel, height), first))


def transposed_rows(rows: Span, extent: int, stride: int, pad_top: int, height: int) -> Span:
    """Input rows that output ``rows`` of a transposed convolution read (:attr:`hwsim.ops.Rows.TRANSPOSED`).

    Row r reads the rows i with i * stride - pad_top <= r < i * stride - pad_top + extent: exactly the rows it
    reads when the kernel is not dilated, and their hull when it is (a dilated tap may miss row r). A band
    whose rows read no row (the stride leaves gaps, or output padding lies beyond every tap) reads the row
    where its taps would start instead, so that every band reads a row and no span moves back; a band whose
    last row reads none reads that row too, so that a band's span holds each of its rows' (a fused step
    computes a band row by row, each reading its own span). The first band reads from row 0, as a window's
    first band does, even where the crop leaves the rows above its taps unread: the schedulers take a map's
    first band to start at its first row."""
    start, stop = rows
    if stop <= start:
        return (0, 0)

    def taps_start(row: int) -> int:
        return 0 if row == 0 else min(max(-((extent - 1 - row - pad_top) // stride), 0), height - 1)

    return (taps_start(start), max(min((stop - 1 + pad_top) // stride + 1, height), taps_start(stop - 1) + 1))


def _group_channels(layer: Layer, channels: Span) -> Span:
    assert isinstance(layer.attrs, (ConvAttrs, ConvTransposeAttrs))
    c_in, c_out, groups = layer.input_shape[2], layer.output_shape[2], layer.attrs.groups
    per_out, per_in = c_out // groups, c_in // groups
    first, last = channels[0] // per_out, (channels[1] - 1) // per_out
    return (first * per_in, (last + 1) * per_in)


def rows_read(layer: Layer) -> int:
    """How many rows of its first input ``layer``'s outputs read, all of them together: every row, but where a
    window is shorter than its stride (a strided 1x1 conv reads every other row) or the padding's windows start or
    end inside the map. What a step that reads a map, band by band, must load of it at least."""
    h_in = layer.input_shapes[0][0]
    if ROWS[layer.op] is TRANSPOSED_ROWS:  # the bands' spans meet: one span
        first, last = input_rows(layer, (0, layer.output_shape[0]))[0]
        return last - first
    if ROWS[layer.op] is not WINDOW_ROWS:
        return h_in
    a = layer.attrs
    assert isinstance(a, Window)
    extent, stride, pad, h_out = a.extent[0], a.stride[0], a.padding.top, layer.output_shape[0]
    if extent >= stride:  # the windows overlap or touch: one span
        first, last = _window_rows((0, h_out), extent, stride, pad, h_in)
        return last - first
    # apart: each window's rows inside the map; the windows wholly inside (first to last) read `extent` each
    first, last = -(-pad // stride), min((h_in - extent + pad) // stride, h_out - 1)
    edges = [*range(first), *range(last + 1, h_out)] if first <= last else range(h_out)
    clipped = sum(max(min(o * stride - pad + extent, h_in) - max(o * stride - pad, 0), 0) for o in edges)
    return max(last - first + 1, 0) * extent + clipped


def band_rows_read(layer: Layer, band: int) -> int:
    """Rows of its first input that ``layer``'s output read in bands of ``band`` rows, added up over the bands
    (halos read again): what a step in bands loads of a streamed input. A window's bands read alike but at the
    map's edges, so those inside are counted at once (a map of a million rows has as many bands)."""
    height = layer.output_shape[0]
    count = -(-height // band)

    def read(b: int) -> int:
        lo, hi = input_rows(layer, (b * band, min((b + 1) * band, height)))[0]
        return hi - lo

    if ROWS[layer.op] is not WINDOW_ROWS:
        return sum(read(b) for b in range(count))
    a = layer.attrs
    assert isinstance(a, Window)
    extent, stride, pad, h_in = a.extent[0], a.stride[0], a.padding.top, layer.input_shapes[0][0]
    # bands first .. last lie wholly inside the map: each reads its rows' windows, overlaps included
    first = -(-pad // (band * stride)) if pad > 0 else 0
    last = min(height // band, ((h_in + pad - extent) // stride + 1) // band) - 1 if h_in + pad >= extent else -1
    if first > last:
        return sum(read(b) for b in range(count))
    inside = (last - first + 1) * ((band - 1) * stride + extent)
    return inside + sum(read(b) for b in range(first)) + sum(read(b) for b in range(last + 1, count))


def input_rows(layer: Layer, rows: Span) -> tuple[Span, ...]:
    """For each input of ``layer``, the rows that output ``rows`` read (in whichever channels): what a band
    needs, without the channel arithmetic of :func:`input_regions`. A layer that accumulates reads all of
    its input."""
    kind = ROWS[layer.op]
    if kind is SAME_ROWS:
        return tuple(rows for _ in layer.inputs)
    if kind is BROADCAST_ROWS:
        one = (0, 1) if rows[1] > rows[0] else (0, 0)
        return tuple(one if shape[0] == 1 else rows for shape in layer.input_shapes)
    h_in = layer.input_shapes[0][0]
    if kind is WINDOW_ROWS:
        a = layer.attrs
        assert isinstance(a, Window)
        return (_window_rows(rows, a.extent[0], a.stride[0], a.padding.top, h_in),)
    if kind is WHOLE_ROWS or kind is ACCUMULATE_ROWS:
        return ((0, h_in) if rows[1] > rows[0] else (0, 0),)
    if kind is TRANSPOSED_ROWS:
        t = layer.attrs
        assert isinstance(t, ConvTransposeAttrs)
        return (transposed_rows(rows, t.extent[0], t.stride[0], t.padding.top, h_in),)
    if kind is SCALE_ROWS or kind is PADDED_ROWS:
        assert isinstance(layer.attrs, (UpsampleAttrs, PadAttrs))
        return (layer.attrs.source_rows(rows, h_in),)
    raise ValueError(f"no receptive field rule for rows of kind {kind!r}")


def accumulates(layer: Layer) -> bool:
    """Whether the layer's one output row is a running reduction that can add its input's rows in parts."""
    return ROWS[layer.op] is ACCUMULATE_ROWS


def input_channels(layer: Layer, channels: Span) -> tuple[Span | None, ...]:
    """For each input of ``layer``, the channels that output ``channels`` read (None: nothing)."""
    kind = CHANNELS[layer.op]
    if kind is SAME_CHANNELS:
        return tuple(channels for _ in layer.inputs)
    if kind is BROADCAST_CHANNELS:
        one = (0, 1) if channels[1] > channels[0] else (0, 0)
        return tuple(one if shape[2] == 1 else channels for shape in layer.input_shapes)
    c_in = layer.input_shapes[0][2]
    if kind is GROUP_CHANNELS:
        return (_group_channels(layer, channels),)
    if kind is ALL_CHANNELS:
        return ((0, c_in),)
    if kind is NEIGHBOUR_CHANNELS:
        assert isinstance(layer.attrs, LrnAttrs)
        half = layer.attrs.size // 2
        return ((max(channels[0] - half, 0), min(channels[1] + half, c_in)),)
    if kind is STACKED_CHANNELS:
        spans: list[Span | None] = []
        offset = 0
        for shape in layer.input_shapes:
            lo, hi = max(channels[0], offset), min(channels[1], offset + shape[2])
            spans.append((lo - offset, hi - offset) if lo < hi else None)
            offset += shape[2]
        return tuple(spans)
    raise ValueError(f"no receptive field rule for channels of kind {kind!r}")


def has_halo(layer: Layer) -> bool:
    """Whether a band of this layer's output reads input rows beyond its own: a window taller than one row, or
    a transposed convolution's patches that overlap."""
    if ROWS[layer.op] is TRANSPOSED_ROWS:
        assert isinstance(layer.attrs, ConvTransposeAttrs)
        return layer.attrs.extent[0] > layer.attrs.stride[0]
    return ROWS[layer.op] is WINDOW_ROWS and isinstance(layer.attrs, Window) and layer.attrs.kernel[0] > 1


def input_regions(layer: Layer, rows: Span, channels: Span) -> tuple[tuple[Span, Span] | None, ...]:
    """For each input of ``layer``, the (rows, channels) that output ``rows`` x ``channels`` read (None: nothing)."""
    return tuple(
        None if c is None else (r, c) for r, c in zip(input_rows(layer, rows), input_channels(layer, channels))
    )
