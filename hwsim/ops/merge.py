"""add, mul and concat: the ops that read several maps.

add and mul broadcast as NumPy and ONNX do, per image: along each of H, W and C an input is as large
as the output or 1, so a 1x1xC map scales or shifts every pixel (squeeze-and-excitation) and an HxWx1
map every channel. An element-wise product is an op, not a MAC (MACs are conv, dense and matmul).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    GradientFlow,
    LayerEntry,
    NoAttrs,
    Op,
    OpTraits,
    Rows,
    Shape,
    ShapeError,
    TrainingRule,
    Unit,
    backward_per_output,
    elements,
    no_params,
    outputs,
    per_output,
)

if TYPE_CHECKING:
    from hwsim.model.graph import Layer


class MergeLayer(LayerEntry):
    op: Literal["add", "concat"]
    inputs: tuple[str, ...] = Field(min_length=2)

    def attrs(self, input_shape: Shape) -> NoAttrs:
        return NoAttrs()


class MulLayer(LayerEntry):
    op: Literal["mul"]
    inputs: tuple[str, ...] = Field(min_length=2, max_length=2)

    def attrs(self, input_shape: Shape) -> NoAttrs:
        return NoAttrs()


def _sizes(inputs: tuple[Shape, ...]) -> str:
    return ", ".join("x".join(map(str, s)) for s in inputs)


def _broadcast_shape(op: str, inputs: tuple[Shape, ...]) -> Shape:
    """The largest size along each axis, where every input has that size or 1."""
    h, w, c = (max(sizes) for sizes in zip(*inputs))
    if any(size not in (1, largest) for shape in inputs for size, largest in zip(shape, (h, w, c))):
        raise ShapeError(f"{op} of different shapes: {_sizes(inputs)} (along H, W and C each size must match or be 1)")
    return (h, w, c)


def _concat_shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    if len({s[:2] for s in inputs}) != 1:
        raise ShapeError("concat needs equal height and width: " + _sizes(inputs))
    h, w, _ = inputs[0]
    return (h, w, sum(s[2] for s in inputs))


def _broadcast_sums(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """Adds that sum dy over the axes an input was broadcast along: N - B·|input| per such input."""
    n = outputs(layer, batch)
    return sum(n - elements(shape) * batch for shape, grad in zip(layer.input_shapes, flow.input_grads) if grad)


def _backward_mul(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """d(a*b)/da = dy * b (N multiplies), summed over the axes a was broadcast along; likewise for b."""
    return outputs(layer, batch) * sum(flow.input_grads) + _broadcast_sums(layer, batch, flow)


def _merge(op: Op, layer: type[LayerEntry], backward: TrainingRule) -> OpTraits:
    return OpTraits(
        op=op,
        layer=layer,
        shape=lambda attrs, inputs: _broadcast_shape(op.value, inputs),
        params=no_params,
        exact=per_output(lambda layer: len(layer.inputs) - 1),  # into an output-sized array, input by input
        backward=backward,
        unit=Unit.VECTOR,
        rows=Rows.BROADCAST,
        channels=Channels.BROADCAST,
        chunks=Chunks.NO,
        streams=True,
        fuses=False,
        many_inputs=True,
    )


TRAITS = (
    _merge(Op.ADD, MergeLayer, _broadcast_sums),  # dy passes to every input, summed where it was broadcast
    _merge(Op.MUL, MulLayer, _backward_mul),
    OpTraits(
        op=Op.CONCAT,
        layer=MergeLayer,
        shape=_concat_shape,
        params=no_params,
        exact=per_output(lambda layer: 0),  # data movement
        backward=backward_per_output(lambda layer: 0),
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.STACKED,
        chunks=Chunks.NO,
        streams=True,
        fuses=False,
        many_inputs=True,
    ),
)
