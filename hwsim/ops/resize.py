"""upsample and pad: maps made larger, by repeating or interpolating pixels, or by adding a border."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, FiniteFloat, StrictBool, model_validator

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    GradientFlow,
    IntPair,
    LayerEntry,
    NonNegativeInt,
    Op,
    OpTraits,
    Rows,
    Shape,
    ShapeError,
    Unit,
    elements,
    no_params,
    outputs,
    pair,
    per_output,
)

if TYPE_CHECKING:
    from hwsim.model.graph import Layer

Span = tuple[int, int]
"""[start, stop) along one axis."""

# ---- upsample --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Taps:
    """Where one output row (or column) of a bilinear upsample reads: (1 - weight) * x[first] + weight * x[second]."""

    first: int
    second: int
    weight: float


def bilinear_taps(out: int, size: int, factor: int, align_corners: bool) -> Taps:
    """The taps of output index ``out`` along an axis of ``size`` inputs scaled by ``factor``.

    Half-pixel centres (align_corners false; PyTorch's default, ONNX half_pixel): the source coordinate
    is (out + 1/2) / factor - 1/2, at least 0. align_corners (ONNX align_corners): out * (size - 1) /
    (size * factor - 1), so the first and last pixels of input and output coincide. The second tap is
    the first's neighbour, the last input at the edge.
    """
    if align_corners:
        source = out * (size - 1) / (size * factor - 1) if size * factor > 1 else 0.0
    else:
        source = max((out + 0.5) / factor - 0.5, 0.0)
    first = min(int(math.floor(source)), size - 1)
    return Taps(first, min(first + 1, size - 1), source - first)


@dataclass(frozen=True)
class UpsampleAttrs(Attrs):
    """A map made ``factor`` (rows, columns) times larger.

    nearest: y[h, w, c] = x[h // fh, w // fw, c] (for integer factors also ONNX's half_pixel with
    round_prefer_floor, and asymmetric with floor). bilinear: interpolated between the two rows and the
    two columns around each output pixel's source coordinate (:func:`bilinear_taps`).
    """

    factor: tuple[int, int]
    mode: Literal["nearest", "bilinear"] = "nearest"
    align_corners: bool = False

    def source_rows(self, rows: Span, height: int) -> Span:
        """The input rows that output ``rows`` read (:attr:`hwsim.ops.Rows.SCALE`)."""
        start, stop = rows
        if stop <= start:
            return (0, 0)
        f = self.factor[0]
        if self.mode == "nearest":
            return (start // f, (stop - 1) // f + 1)
        return (
            bilinear_taps(start, height, f, self.align_corners).first,
            bilinear_taps(stop - 1, height, f, self.align_corners).second + 1,
        )


class UpsampleLayer(LayerEntry):
    op: Literal["upsample"]
    factor: IntPair = 2
    mode: Literal["nearest", "bilinear"] = "nearest"
    align_corners: StrictBool = Field(
        False, description="bilinear: corner pixels aligned instead of half-pixel centres"
    )

    @model_validator(mode="after")
    def _bilinear_only(self) -> UpsampleLayer:
        if self.align_corners and self.mode != "bilinear":
            raise ValueError("align_corners applies to mode bilinear only")
        return self

    def attrs(self, input_shape: Shape) -> UpsampleAttrs:
        return UpsampleAttrs(pair(self.factor), self.mode, self.align_corners)


def _upsample_shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    assert isinstance(attrs, UpsampleAttrs)
    h, w, c = inputs[0]
    return (h * attrs.factor[0], w * attrs.factor[1], c)


def _upsample_passes(layer: Layer) -> tuple[tuple[int, int, int], ...]:
    """Bilinear runs one pass per scaled axis, rows first, then columns: per pass, (output elements,
    input size along the axis, output size along it), per image."""
    a = layer.attrs
    assert isinstance(a, UpsampleAttrs)
    (h, w, c), (ho, wo, _) = layer.input_shape, layer.output_shape
    passes = []
    if a.factor[0] > 1:
        passes.append((ho * w * c, h, ho))
    if a.factor[1] > 1:
        passes.append((ho * wo * c, w, wo))
    return tuple(passes)


def _exact_upsample(layer: Layer, batch: int) -> tuple[int, int]:
    """nearest: data movement. bilinear: (1 - t) * x[i] + t * x[i + 1], 3 ops per element of each pass."""
    assert isinstance(layer.attrs, UpsampleAttrs)
    if layer.attrs.mode == "nearest":
        return 0, 0
    return 0, 3 * batch * sum(n for n, _, _ in _upsample_passes(layer))


def _backward_upsample(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """nearest: each input pixel sums the fh x fw outputs copied from it, (fh·fw - 1)·N_in adds.

    bilinear, per pass in reverse: dy times both tap weights (2 per output element), then each input
    index sums the products aimed at it: 2·out - in adds per line of the axis.
    """
    a = layer.attrs
    assert isinstance(a, UpsampleAttrs)
    if a.mode == "nearest":
        return (a.factor[0] * a.factor[1] - 1) * elements(layer.input_shape) * batch
    return batch * sum(2 * n + (2 * out - size) * (n // out) for n, size, out in _upsample_passes(layer))


# ---- pad ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PadAttrs(Attrs):
    """A border of ``top``, ``bottom``, ``left`` and ``right`` pixels around the map.

    constant: filled with ``value``. reflect: the map mirrored about its edge pixel, which is not
    repeated (x[-1] = x[1]; NumPy's and ONNX's reflect). edge: the edge pixel repeated.
    """

    top: int
    bottom: int
    left: int
    right: int
    mode: Literal["constant", "reflect", "edge"] = "constant"
    value: float = 0.0

    def source_rows(self, rows: Span, height: int) -> Span:
        """The input rows that output ``rows`` read (:attr:`hwsim.ops.Rows.PADDED`): the band moved up by
        ``top``, within the map; a band of border rows reads the edge row (edge copies it; constant
        copies nothing, but the schedulers assume every band reads some row of its input).

        reflect's border rows read rows back from the edge, so the span widens to what rows before and
        after the band read: a band never starts below a later band's start, nor ends above an earlier
        band's end (schedulers free rows no later band needs, produce the rows an earlier one did).
        """
        start, last = rows[0] - self.top, rows[1] - 1 - self.top  # border rows fall outside [0, height)
        if last < start:
            return (0, 0)
        if self.mode != "reflect":
            return (min(max(start, 0), height - 1), min(max(last, 0), height - 1) + 1)
        low = 0 if start <= 0 else min(start, height - 1 - self.bottom)  # the bottom border reaches back to this
        high = max(self.top, min(last, height - 1))  # the top border reaches down to row ``top``
        return (low, high + 1)


def padded_source(index: int, size: int, mode: str) -> int:
    """The input index that reflect or edge padding copies to ``index`` (negative: before the map, ``size``
    or more: after it)."""
    if 0 <= index < size:
        return index
    if mode == "edge":
        return min(max(index, 0), size - 1)
    return -index if index < 0 else 2 * (size - 1) - index


class PadLayer(LayerEntry):
    op: Literal["pad"]
    pads: NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt] = Field(
        description="every side, or [top, bottom, left, right]"
    )
    mode: Literal["constant", "reflect", "edge"] = "constant"
    value: FiniteFloat = Field(0.0, description="constant: the border's value")

    def attrs(self, input_shape: Shape) -> PadAttrs:
        sides = (self.pads,) * 4 if isinstance(self.pads, int) else self.pads
        return PadAttrs(*sides, mode=self.mode, value=self.value)


def _pad_shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    assert isinstance(attrs, PadAttrs)
    h, w, c = inputs[0]
    if attrs.mode == "reflect" and (max(attrs.top, attrs.bottom) >= h or max(attrs.left, attrs.right) >= w):
        raise ShapeError(
            f"reflect padding of {attrs.top}, {attrs.bottom}, {attrs.left}, {attrs.right} (top, bottom, left, right)"
            f" needs a map larger than the border, got {h}x{w}"
        )
    return (h + attrs.top + attrs.bottom, w + attrs.left + attrs.right, c)


def _backward_pad(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """constant: dy cropped. reflect and edge: every border element's gradient added onto the pixel it copies."""
    assert isinstance(layer.attrs, PadAttrs)
    if layer.attrs.mode == "constant":
        return 0
    return outputs(layer, batch) - elements(layer.input_shape) * batch


TRAITS = (
    OpTraits(
        op=Op.UPSAMPLE,
        layer=UpsampleLayer,
        shape=_upsample_shape,
        params=no_params,
        exact=_exact_upsample,
        backward=_backward_upsample,
        unit=Unit.VECTOR,
        rows=Rows.SCALE,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    ),
    OpTraits(
        op=Op.PAD,
        layer=PadLayer,
        shape=_pad_shape,
        params=no_params,
        exact=per_output(lambda layer: 0),  # data movement
        backward=_backward_pad,
        unit=Unit.VECTOR,
        rows=Rows.PADDED,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    ),
)
