"""conv_transpose: the 2-D transposed convolution (PyTorch's ConvTranspose2d, ONNX ConvTranspose).

Every input pixel scatters its channels, times the kernel, onto a (Kh, Kw) patch of the output:
input row i adds to output rows i * stride - top + k * dilation for every tap k, the rows outside the
output (the cropped ``padding``, or beyond) dropped; ``output_padding`` adds rows (and columns) at the
bottom (right) that only taps beyond the crop reach. The output is

    (H - 1) * stride - top - bottom + dilation * (kernel - 1) + output_padding + 1

rows high (top = bottom = PyTorch's ``padding``). The MACs are the products the scatter performs:
every input pixel times the kernel times the output channels of its group, cropped ones included,
as PyTorch executes it (a matrix product into columns, then col2im) and fvcore counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from pydantic import StrictBool, model_validator

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
    PositiveInt,
    Rows,
    Shape,
    ShapeError,
    Unit,
    elements,
    pair,
)
from hwsim.ops.window import Padding

if TYPE_CHECKING:
    from hwsim.model.graph import Layer

Span = tuple[int, int]
"""[start, stop) along one axis."""


@dataclass(frozen=True)
class ConvTransposeAttrs(Attrs):
    """A transposed convolution, normalised: ``padding`` is the crop on each side of the full scatter."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: Padding
    output_padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    out_channels: int
    bias: bool

    @cached_property
    def extent(self) -> tuple[int, int]:
        """Rows and columns one input pixel's patch spans: the kernel, spread out by its dilation."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return ((kh - 1) * dh + 1, (kw - 1) * dw + 1)

    def full(self, hw: tuple[int, int]) -> tuple[int, int]:
        """Rows and columns of the scatter before the crop, output padding included: what the reference
        scatters into."""
        (eh, ew), (sh, sw), (oh, ow) = self.extent, self.stride, self.output_padding
        return ((hw[0] - 1) * sh + eh + oh, (hw[1] - 1) * sw + ew + ow)


class ConvTransposeLayer(LayerEntry):
    op: Literal["conv_transpose"]
    filters: PositiveInt
    kernel: IntPair
    stride: IntPair = 1
    padding: NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt] = 0
    output_padding: NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt] = 0
    groups: PositiveInt = 1
    bias: StrictBool = True
    dilation: IntPair = 1

    @model_validator(mode="after")
    def _output_padding_reachable(self) -> ConvTransposeLayer:
        check_output_padding(pair(self.output_padding), pair(self.stride), pair(self.dilation))
        return self

    def attrs(self, input_shape: Shape) -> ConvTransposeAttrs:
        p = self.padding
        padding = Padding(p, p, p, p) if isinstance(p, int) else Padding(*p)
        return ConvTransposeAttrs(
            pair(self.kernel),
            pair(self.stride),
            padding,
            pair(self.output_padding),
            pair(self.dilation),
            self.groups,
            self.filters,
            self.bias,
        )


def check_output_padding(output_padding: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> None:
    """Refuse output padding no tap can reach, as PyTorch does: it must be below the stride or the dilation."""
    for extra, s, d in zip(output_padding, stride, dilation):
        if extra >= s and extra >= d:
            raise ValueError(f"output_padding {extra} must be smaller than the stride {s} or the dilation {d}")


def _shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    assert isinstance(attrs, ConvTransposeAttrs)
    h, w, c = inputs[0]
    if c % attrs.groups or attrs.out_channels % attrs.groups:
        raise ShapeError(f"groups {attrs.groups} must divide input channels {c} and filters {attrs.out_channels}")
    (fh, fw), p = attrs.full((h, w)), attrs.padding
    oh, ow = fh - p.top - p.bottom, fw - p.left - p.right
    if oh < 1 or ow < 1:
        raise ShapeError(f"padding {p.top}+{p.bottom}, {p.left}+{p.right} crops the whole {fh}x{fw} output")
    return (oh, ow, attrs.out_channels)


def _params(attrs: Attrs, inputs: tuple[Shape, ...]) -> tuple[int, int]:
    """Weights (Kh, Kw, C_in, C_out/groups), PyTorch's (C_in, C_out/groups, Kh, Kw), and a bias per output channel."""
    assert isinstance(attrs, ConvTransposeAttrs)
    kh, kw = attrs.kernel
    weights = kh * kw * inputs[0][2] * (attrs.out_channels // attrs.groups)
    return weights + (attrs.out_channels if attrs.bias else 0), 0


def macs_per_image(layer: Layer) -> int:
    """Every input pixel times the kernel times the output channels of its group."""
    a = layer.attrs
    assert isinstance(a, ConvTransposeAttrs)
    h, w, c = layer.input_shape
    return h * w * c * a.kernel[0] * a.kernel[1] * (a.out_channels // a.groups)


def overlapping(attrs: ConvTransposeAttrs) -> bool:
    """Whether patches overlap along either axis: the scatter then adds each tap after the first onto what
    earlier taps left (col2im), instead of copying it."""
    (eh, ew), (sh, sw) = attrs.extent, attrs.stride
    return sh < eh or sw < ew


def _exact(layer: Layer, batch: int) -> tuple[int, int]:
    """2 per MAC into the columns; col2im's adds, (Kh*Kw - 1) per input pixel and output channel where patches
    overlap; the bias, one add per output element."""
    a = layer.attrs
    assert isinstance(a, ConvTransposeAttrs)
    macs = macs_per_image(layer) * batch
    h, w, _ = layer.input_shape
    scatter = (a.kernel[0] * a.kernel[1] - 1) * batch * h * w * a.out_channels if overlapping(a) else 0
    bias_adds = elements(layer.output_shape) * batch if a.bias else 0
    return macs, 2 * macs + scatter + bias_adds


def _backward(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dW: 2*MACs (the input against dy's windows); db: (batch*Ho*Wo - 1) adds per channel; dx: 2*MACs, a plain
    convolution of dy (no col2im: each input pixel gathers its patch)."""
    a = layer.attrs
    assert isinstance(a, ConvTransposeAttrs)
    macs = macs_per_image(layer) * batch
    ho, wo, co = layer.output_shape
    ops = 2 * macs + ((batch * ho * wo - 1) * co if a.bias else 0)
    return ops + 2 * macs if flow.input_grads[0] else ops


TRAITS = (
    OpTraits(
        op=Op.CONV_TRANSPOSE,
        layer=ConvTransposeLayer,
        shape=_shape,
        params=_params,
        exact=_exact,
        backward=_backward,
        unit=Unit.MATRIX,
        rows=Rows.TRANSPOSED,
        channels=Channels.GROUPS,
        chunks=Chunks.FIRST,
        streams=True,
        fuses=False,
    ),
)
