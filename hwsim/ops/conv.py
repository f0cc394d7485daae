"""conv and dwconv: a depthwise conv is a conv with one group per input channel."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from pydantic import StrictBool

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    GradientFlow,
    IntPair,
    LayerEntry,
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
from hwsim.ops.window import Padding, PaddingMode, Window, resolve_padding, window_scatter, windowed_hw

if TYPE_CHECKING:
    from hwsim.model.graph import Layer


@dataclass(frozen=True)
class ConvAttrs(Window):
    """conv and dwconv. A depthwise conv is a conv with ``groups == C_in``.

    ``dilation`` spreads the kernel's taps: tap i reads the row ``dilation`` * i below the window's
    first, so a window spans (kernel - 1) * dilation + 1 rows (its :attr:`extent`).
    """

    groups: int
    out_channels: int
    bias: bool
    dilation: tuple[int, int] = (1, 1)  # a field where Window has a property


class ConvLayer(LayerEntry):
    op: Literal["conv"]
    filters: PositiveInt
    kernel: IntPair
    stride: IntPair = 1
    padding: PaddingMode = "same"
    groups: PositiveInt = 1
    bias: StrictBool = True
    dilation: IntPair = 1

    def attrs(self, input_shape: Shape) -> ConvAttrs:
        return _attrs(
            self.kernel, self.stride, self.dilation, self.padding, input_shape, self.groups, self.filters, self.bias
        )


class DwConvLayer(LayerEntry):
    op: Literal["dwconv"]
    kernel: IntPair
    stride: IntPair = 1
    padding: PaddingMode = "same"
    multiplier: PositiveInt = 1
    bias: StrictBool = True
    dilation: IntPair = 1

    def attrs(self, input_shape: Shape) -> ConvAttrs:
        c = input_shape[2]
        return _attrs(
            self.kernel, self.stride, self.dilation, self.padding, input_shape, c, c * self.multiplier, self.bias
        )


def _attrs(
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int],
    dilation: int | tuple[int, int],
    padding: PaddingMode,
    input_shape: Shape,
    groups: int,
    out_channels: int,
    bias: bool,
) -> ConvAttrs:
    """The attributes of a conv or dwconv entry: ``same`` padding covers the dilated kernel."""
    attrs = ConvAttrs(pair(kernel), pair(stride), Padding(), groups, out_channels, bias, pair(dilation))
    return replace(attrs, padding=resolve_padding(padding, attrs.extent, attrs.stride, input_shape[:2]))


def _shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    assert isinstance(attrs, ConvAttrs)
    c = inputs[0][2]
    if c % attrs.groups or attrs.out_channels % attrs.groups:
        raise ShapeError(f"groups {attrs.groups} must divide input channels {c} and filters {attrs.out_channels}")
    oh, ow = windowed_hw(inputs[0], attrs, "kernel")
    return (oh, ow, attrs.out_channels)


def _params(attrs: Attrs, inputs: tuple[Shape, ...]) -> tuple[int, int]:
    """Weights (Kh, Kw, C_in/groups, C_out) and a bias per output channel."""
    assert isinstance(attrs, ConvAttrs)
    kh, kw = attrs.kernel
    weights = kh * kw * (inputs[0][2] // attrs.groups) * attrs.out_channels
    return weights + (attrs.out_channels if attrs.bias else 0), 0


def _macs_per_image(layer: Layer) -> int:
    a = layer.attrs
    assert isinstance(a, ConvAttrs)
    ho, wo, co = layer.output_shape
    return ho * wo * co * a.kernel[0] * a.kernel[1] * (layer.input_shape[2] // a.groups)


def _exact(layer: Layer, batch: int) -> tuple[int, int]:
    assert isinstance(layer.attrs, ConvAttrs)
    macs = _macs_per_image(layer) * batch
    bias_adds = elements(layer.output_shape) * batch if layer.attrs.bias else 0
    return macs, 2 * macs + bias_adds


def _paper(layer: Layer, batch: int) -> tuple[int, int]:
    """2*K^2*C_in*C_out*H*W: every conv as if dense, so depthwise is overcounted by C (erratum 1)."""
    assert isinstance(layer.attrs, ConvAttrs)
    kh, kw = layer.attrs.kernel
    ho, wo, co = layer.output_shape
    macs = kh * kw * layer.input_shape[2] * co * ho * wo * batch
    return macs, 2 * macs


def depthwise_transposed_gradient(layer: Layer) -> bool:
    """Whether a conv's input gradient is a correlation of the padded dy with the flipped kernel.

    Done for depthwise convs (one input channel per group) at stride 1, not dilated, whose padding is
    below the kernel size: no Kh*Kw-fold column array and no col2im. Other convs multiply dy by the weights
    into columns and add them back with col2im. The reference executes this choice and the cost
    model counts it: it lives here, below both.
    """
    a = layer.attrs
    assert isinstance(a, ConvAttrs)
    p = a.padding
    return (
        layer.input_shape[2] == a.groups
        and a.stride == (1, 1)
        and a.dilation == (1, 1)
        and max(p.top, p.bottom) < a.kernel[0]
        and max(p.left, p.right) < a.kernel[1]
    )


def _backward(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dW: 2*MACs; db: (batch*Ho*Wo - 1) adds per channel; dx: see :func:`depthwise_transposed_gradient`.

    Transposed: 2 per multiply-add over every input position, 2 * batch * H * W * Co * Kh * Kw.
    Otherwise: 2*MACs for the columns plus the col2im adds.
    """
    a = layer.attrs
    assert isinstance(a, ConvAttrs)
    macs = _macs_per_image(layer) * batch
    ho, wo, co = layer.output_shape
    ops = 2 * macs + ((batch * ho * wo - 1) * co if a.bias else 0)
    if not flow.input_grads[0]:
        return ops
    if depthwise_transposed_gradient(layer):
        h, w, _ = layer.input_shape
        return ops + 2 * batch * h * w * co * a.kernel[0] * a.kernel[1]
    return ops + 2 * macs + window_scatter(layer, batch, layer.input_shape[2], a)


def _conv(op: Op, layer: type[LayerEntry], chunks: Chunks) -> OpTraits:
    return OpTraits(
        op=op,
        layer=layer,
        shape=_shape,
        params=_params,
        exact=_exact,
        paper=_paper,
        backward=_backward,
        unit=Unit.MATRIX,
        rows=Rows.WINDOW,
        channels=Channels.GROUPS,
        chunks=chunks,
        streams=True,
        fuses=False,
    )


TRAITS = (_conv(Op.CONV, ConvLayer, Chunks.FIRST), _conv(Op.DWCONV, DwConvLayer, Chunks.ANY))
