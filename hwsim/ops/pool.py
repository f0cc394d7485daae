"""maxpool, avgpool and global_avg_pool."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

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
    no_params,
    outputs,
    pair,
    per_input,
    per_output,
)
from hwsim.ops.window import PaddingMode, Window, resolve_padding, window_scatter, windowed_hw

if TYPE_CHECKING:
    from hwsim.model.graph import Layer


@dataclass(frozen=True)
class PoolAttrs(Window):
    """maxpool and avgpool. Average pooling divides by the full window area (padding counts as zeros)."""


class PoolLayer(LayerEntry):
    op: Literal["maxpool", "avgpool"]
    size: IntPair
    stride: IntPair | None = Field(None, description="default: the pool size")
    padding: PaddingMode = "valid"

    def attrs(self, input_shape: Shape) -> PoolAttrs:
        size = pair(self.size)
        stride = pair(self.stride) if self.stride is not None else size
        return PoolAttrs(size, stride, resolve_padding(self.padding, size, stride, input_shape[:2]))


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
)
