"""maxpool, avgpool, global_avg_pool and global_max_pool."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, StrictBool, model_validator

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    GradientFlow,
    IntPair,
    LayerEntry,
    Op,
    OpTraits,
    PlainEntry,
    Rows,
    Shape,
    TrainingRule,
    Unit,
    backward_per_output,
    elements,
    no_params,
    outputs,
    pair,
    per_input,
    per_output,
)
from hwsim.ops.window import Padding, PaddingMode, Window, resolve_padding, window_scatter, windowed_hw

if TYPE_CHECKING:
    from hwsim.model.graph import Layer


@dataclass(frozen=True)
class PoolAttrs(Window):
    """maxpool and avgpool.

    ``padding`` is what the windows read: the padding as written, plus at the bottom and right the
    ``overhang`` rows and columns that ``ceil_mode`` lets the last window reach beyond it. Average
    pooling divides by the taps inside the input and its written padding (``count_include_pad``, the
    whole window unless ceil_mode overhangs) or inside the input alone; PyTorch and ONNX alike.
    """

    ceil_mode: bool = False
    count_include_pad: bool = True
    overhang: tuple[int, int] = (0, 0)

    @property
    def counted(self) -> Padding:
        """The padding whose zeros an average counts in its divisor."""
        if not self.count_include_pad:
            return Padding()
        p, (down, right) = self.padding, self.overhang
        return Padding(p.top, p.bottom - down, p.left, p.right - right)


def ceil_overhang(n: int, size: int, stride: int, before: int, after: int) -> int:
    """Rows past the padding that ceil_mode's last window reaches: the output is ceil((n + pads - size) / stride) + 1
    windows, less the last if it would start beyond the input and its leading padding (PyTorch's and ONNX's rule)."""
    padded = n + before + after
    if size > padded:
        return 0  # the shape rule reports it
    count = -(-(padded - size) // stride) + 1
    if (count - 1) * stride >= n + before:
        count -= 1
    return max((count - 1) * stride + size - padded, 0)


class PoolLayer(LayerEntry):
    op: Literal["maxpool", "avgpool"]
    size: IntPair
    stride: IntPair | None = Field(None, description="default: the pool size")
    padding: PaddingMode = "valid"
    ceil_mode: StrictBool = Field(False, description="the output size rounds up: a last, partial window")
    count_include_pad: StrictBool = Field(True, description="avgpool: the written padding counts in the divisor")

    @model_validator(mode="after")
    def _meaningful(self) -> PoolLayer:
        if self.op == "maxpool" and "count_include_pad" in self.model_fields_set:
            raise ValueError("count_include_pad applies to avgpool only")
        if self.ceil_mode and isinstance(self.padding, (int, tuple)):
            sides = (self.padding,) * 4 if isinstance(self.padding, int) else self.padding
            (kh, kw) = pair(self.size)
            if max(sides[:2]) >= kh or max(sides[2:]) >= kw:
                raise ValueError(f"ceil_mode needs padding below the pool size {kh}x{kw}, got {self.padding}")
        return self

    def attrs(self, input_shape: Shape) -> PoolAttrs:
        size = pair(self.size)
        stride = pair(self.stride) if self.stride is not None else size
        p = resolve_padding(self.padding, size, stride, input_shape[:2])
        overhang = (0, 0)
        if self.ceil_mode:
            (h, w, _), (kh, kw), (sh, sw) = input_shape, size, stride
            overhang = (ceil_overhang(h, kh, sh, p.top, p.bottom), ceil_overhang(w, kw, sw, p.left, p.right))
            p = Padding(p.top, p.bottom + overhang[0], p.left, p.right + overhang[1])
        return PoolAttrs(size, stride, p, self.ceil_mode, self.count_include_pad, overhang)


def _shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    assert isinstance(attrs, PoolAttrs)
    oh, ow = windowed_hw(inputs[0], attrs, "pool size")
    return (oh, ow, inputs[0][2])


def _area(layer: Layer) -> int:
    assert isinstance(layer.attrs, PoolAttrs)
    return layer.attrs.kernel[0] * layer.attrs.kernel[1]


def _backward_maxpool(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dy routed to each window's winner: only overlapping windows add."""
    assert isinstance(layer.attrs, PoolAttrs)
    return window_scatter(layer, batch, layer.output_shape[2], layer.attrs)


def _backward_avgpool(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dy / area once per output, spread over the window; overlapping windows add."""
    assert isinstance(layer.attrs, PoolAttrs)
    return outputs(layer, batch) + window_scatter(layer, batch, layer.output_shape[2], layer.attrs)


def _global_max(layer: Layer, batch: int) -> tuple[int, int]:
    """H*W - 1 comparisons per channel."""
    return 0, (elements(layer.input_shape) - layer.output_shape[2]) * batch


def _window_pool(op: Op, exact: Callable[[Layer], int], backward: TrainingRule) -> OpTraits:
    return OpTraits(
        op=op,
        layer=PoolLayer,
        shape=_shape,
        params=no_params,
        exact=per_output(exact),
        paper=per_input(1),
        backward=backward,
        unit=Unit.VECTOR,
        rows=Rows.WINDOW,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    )


TRAITS = (
    _window_pool(Op.MAXPOOL, lambda layer: _area(layer) - 1, _backward_maxpool),  # comparisons
    _window_pool(Op.AVGPOOL, _area, _backward_avgpool),  # area - 1 adds, 1 divide
    OpTraits(
        op=Op.GLOBAL_AVG_POOL,
        layer=PlainEntry,
        shape=lambda attrs, inputs: (1, 1, inputs[0][2]),
        params=no_params,
        exact=per_input(1),  # H*W - 1 adds and 1 divide per channel
        paper=per_input(1),
        backward=backward_per_output(lambda layer: 1),  # dy / (H*W), broadcast
        unit=Unit.VECTOR,
        rows=Rows.ACCUMULATE,  # a running sum: each input row added as it arrives
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=False,
    ),
    OpTraits(
        op=Op.GLOBAL_MAX_POOL,
        layer=PlainEntry,
        shape=lambda attrs, inputs: (1, 1, inputs[0][2]),
        params=no_params,
        exact=_global_max,  # the appendix has no global max pool: counted exactly under paper too
        backward=backward_per_output(lambda layer: 0),  # dy routed to each channel's winner (argmax: as max)
        unit=Unit.VECTOR,
        rows=Rows.ACCUMULATE,  # a running maximum: each input row compared as it arrives
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=False,
    ),
)
