"""add and concat: the ops that read several maps."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    LayerEntry,
    NoAttrs,
    Op,
    OpTraits,
    Rows,
    Shape,
    ShapeError,
    Unit,
    backward_per_output,
    no_params,
    per_output,
)


class MergeLayer(LayerEntry):
    op: Literal["add", "concat"]
    inputs: tuple[str, ...] = Field(min_length=2)

    def attrs(self, input_shape: Shape) -> NoAttrs:
        return NoAttrs()


def _sizes(inputs: tuple[Shape, ...]) -> str:
    return ", ".join("x".join(map(str, s)) for s in inputs)


def _add_shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    if len(set(inputs)) != 1:
        raise ShapeError("add of different shapes: " + _sizes(inputs))
    return inputs[0]


def _concat_shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    if len({s[:2] for s in inputs}) != 1:
        raise ShapeError("concat needs equal height and width: " + _sizes(inputs))
    h, w, _ = inputs[0]
    return (h, w, sum(s[2] for s in inputs))


TRAITS = (
    OpTraits(
        op=Op.ADD,
        layer=MergeLayer,
        shape=_add_shape,
        params=no_params,
        exact=per_output(lambda layer: len(layer.inputs) - 1),
        backward=backward_per_output(lambda layer: 0),  # dy passes to every input
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.SAME,
        chunks=Chunks.ANY,  # channel c of the sum reads channel c of every input
        streams=True,
        fuses=True,  # into the step producing one of its inputs, per band or per chunk of channels
        many_inputs=True,
    ),
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
        fuses=True,  # into the step producing one of its inputs, per band (its channels are another map's)
        many_inputs=True,
    ),
)
