"""relu and dropout: each output element reads the input element at its place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, FiniteFloat

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    GradientFlow,
    LayerEntry,
    Op,
    OpTraits,
    PlainEntry,
    Rows,
    Shape,
    Unit,
    backward_per_output,
    no_params,
    outputs,
    per_output,
    same_shape,
)

if TYPE_CHECKING:
    from hwsim.model.graph import Layer


@dataclass(frozen=True)
class DropoutAttrs(Attrs):
    rate: float


class DropoutLayer(LayerEntry):
    op: Literal["dropout"]
    rate: FiniteFloat = Field(0.5, ge=0, lt=1)

    def attrs(self, input_shape: Shape) -> DropoutAttrs:
        return DropoutAttrs(self.rate)


def _forward_train_dropout(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    """keep = u >= rate, mask = keep / (1 - rate), y = x * mask: 3N (drawing u is not counted)."""
    return 3 * outputs(layer, batch)


TRAITS = (
    OpTraits(
        op=Op.RELU,
        layer=PlainEntry,
        shape=same_shape,
        params=no_params,
        exact=per_output(lambda layer: 1),
        paper=per_output(lambda layer: 1),
        backward=backward_per_output(lambda layer: 2),  # y > 0, times dy
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    ),
    OpTraits(
        op=Op.DROPOUT,
        layer=DropoutLayer,
        shape=same_shape,
        params=no_params,
        exact=per_output(lambda layer: 0),  # identity at inference
        forward_train=_forward_train_dropout,
        backward=backward_per_output(lambda layer: 1),  # dy * mask
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    ),
)
