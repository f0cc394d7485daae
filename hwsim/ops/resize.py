"""upsample: a map made larger by repeating its pixels (nearest neighbour)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    GradientFlow,
    LayerEntry,
    Op,
    OpTraits,
    PositiveInt,
    Rows,
    Shape,
    Unit,
    elements,
    no_params,
    per_output,
)

if TYPE_CHECKING:
    from hwsim.model.graph import Layer


@dataclass(frozen=True)
class UpsampleAttrs(Attrs):
    """Every pixel repeated ``factor`` times down and across: y[h, w, c] = x[h // factor, w // factor, c]."""

    factor: int


class UpsampleLayer(LayerEntry):
    op: Literal["upsample"]
    factor: PositiveInt = 2

    def attrs(self, input_shape: Shape) -> UpsampleAttrs:
        return UpsampleAttrs(self.factor)


def _shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    assert isinstance(attrs, UpsampleAttrs)
    h, w, c = inputs[0]
    return (h * attrs.factor, w * attrs.factor, c)


def _backward(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dx sums the factor x factor outputs each input pixel was copied to: factor^2 - 1 adds per input element."""
    assert isinstance(layer.attrs, UpsampleAttrs)
    return (layer.attrs.factor**2 - 1) * elements(layer.input_shape) * batch


TRAITS = (
    OpTraits(
        op=Op.UPSAMPLE,
        layer=UpsampleLayer,
        shape=_shape,
        params=no_params,
        exact=per_output(lambda layer: 0),  # data movement
        backward=_backward,
        unit=Unit.VECTOR,
        rows=Rows.SCALE,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    ),
)
