"""Which part of each input a layer reads to produce part of its output (receptive fields, halos).

Rows are the height axis of a map; channels its last axis. A tiled schedule asks this for every
band it computes; the validator asks it again to check that the band's inputs were resident.
"""

from __future__ import annotations

from hwsim.model.graph import Layer
from hwsim.ops import ConvAttrs, LrnAttrs, Op, PoolAttrs

Span = tuple[int, int]
"""[start, stop) along one axis."""

CHANNEL_LOCAL_OPS = frozenset(
    {Op.BATCHNORM, Op.RELU, Op.DROPOUT, Op.MAXPOOL, Op.AVGPOOL, Op.DWCONV, Op.GLOBAL_AVG_POOL}
)
"""Ops whose output channel c depends on input channel c alone: they can run on a chunk of channels."""


CONVS = frozenset({Op.CONV, Op.DWCONV})
POOLS = frozenset({Op.MAXPOOL, Op.AVGPOOL})
READS_WHOLE = frozenset({Op.GLOBAL_AVG_POOL, Op.DENSE, Op.FLATTEN, Op.SOFTMAX})
"""Ops whose every output row reads every input row."""
ROW_FOR_ROW = frozenset({Op.LRN, Op.CONCAT, Op.ADD, Op.BATCHNORM, Op.RELU, Op.DROPOUT})
"""Ops whose output row r reads input row r."""
CHANNEL_FOR_CHANNEL = frozenset({Op.ADD, Op.BATCHNORM, Op.RELU, Op.DROPOUT, Op.MAXPOOL, Op.AVGPOOL, Op.GLOBAL_AVG_POOL})
"""Ops whose output channel c reads channel c of every input."""
ALL_CHANNELS = frozenset({Op.DENSE, Op.FLATTEN, Op.SOFTMAX})
# frozensets, not tuples of members: ``Op.CONV`` is an enum class attribute lookup, as slow as the
# rest of a receptive field, and a band asks for several


def _window_rows(rows: Span, kernel: int, stride: int, pad_top: int, height: int) -> Span:
    """Input rows under the windows of output rows ``rows``: the band plus its halo, clipped to the map."""
    start, stop = rows
    if stop <= start:
        return (0, 0)
    return (max(start * stride - pad_top, 0), min((stop - 1) * stride - pad_top + kernel, height))


def _group_channels(layer: Layer, channels: Span) -> Span:
    assert isinstance(layer.attrs, ConvAttrs)
    c_in, c_out, groups = layer.input_shape[2], layer.output_shape[2], layer.attrs.groups
    per_out, per_in = c_out // groups, c_in // groups
    first, last = channels[0] // per_out, (channels[1] - 1) // per_out
    return (first * per_in, (last + 1) * per_in)


def input_rows(layer: Layer, rows: Span) -> tuple[Span, ...]:
    """For each input of ``layer``, the rows that output ``rows`` read (in whichever channels): what a
    band needs, without the channel arithmetic of :func:`input_regions`."""
    op, a = layer.op, layer.attrs
    h_in = layer.input_shapes[0][0]
    if op in ROW_FOR_ROW:
        return tuple(rows for _ in layer.inputs)
    if op in CONVS:
        assert isinstance(a, ConvAttrs)
        return (_window_rows(rows, a.kernel[0], a.stride[0], a.padding.top, h_in),)
    if op in POOLS:
        assert isinstance(a, PoolAttrs)
        return (_window_rows(rows, a.size[0], a.stride[0], a.padding.top, h_in),)
    if op in READS_WHOLE:
        return ((0, h_in),)
    raise ValueError(f"no receptive field rule for op {op!r}")


def input_channels(layer: Layer, channels: Span) -> tuple[Span | None, ...]:
    """For each input of ``layer``, the channels that output ``channels`` read (None: nothing)."""
    op, a = layer.op, layer.attrs
    c_in = layer.input_shapes[0][2]
    if op in CHANNEL_FOR_CHANNEL:
        return tuple(channels for _ in layer.inputs)
    if op in CONVS:
        return (_group_channels(layer, channels),)
    if op in ALL_CHANNELS:
        return ((0, c_in),)
    if op is Op.LRN:
        assert isinstance(a, LrnAttrs)
        half = a.size // 2
        return ((max(channels[0] - half, 0), min(channels[1] + half, c_in)),)
    if op is Op.CONCAT:
        spans: list[Span | None] = []
        offset = 0
        for shape in layer.input_shapes:
            lo, hi = max(channels[0], offset), min(channels[1], offset + shape[2])
            spans.append((lo - offset, hi - offset) if lo < hi else None)
            offset += shape[2]
        return tuple(spans)
    raise ValueError(f"no receptive field rule for op {op!r}")


def input_regions(layer: Layer, rows: Span, channels: Span) -> tuple[tuple[Span, Span] | None, ...]:
    """For each input of ``layer``, the (rows, channels) that output ``rows`` x ``channels`` read (None: nothing)."""
    return tuple(
        None if c is None else (r, c) for r, c in zip(input_rows(layer, rows), input_channels(layer, channels))
    )
