"""slice and channel_shuffle: channels taken or reordered, nothing computed (ShuffleNet's split and shuffle).

``slice`` keeps the channels [start, end) of its input: ``x.chunk(2, dim=1)`` is two slices of one map.
``channel_shuffle`` with g groups reads its C channels as g groups of C/g and interleaves them: output
channel j·g + i is input channel i·(C/g) + j (``view(N, g, C/g, H, W)``, ``transpose(1, 2)``, ``view``).

Both declare that an output channel may read every input channel (``Channels.ALL``): true of the shuffle
for any chunk of g or more outputs, and an over-estimate for a slice (it reads only its own range), which
makes a tiled schedule keep more of the input than it needs, never less. An exact kind would be a new
member of ``Channels`` with its arithmetic in ``model/regions.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    LayerEntry,
    NonNegativeInt,
    Op,
    OpTraits,
    PositiveInt,
    Rows,
    Shape,
    ShapeError,
    Unit,
    backward_per_output,
    no_params,
    per_output,
)


@dataclass(frozen=True)
class SliceAttrs(Attrs):
    start: int
    end: int


class SliceLayer(LayerEntry):
    op: Literal["slice"]
    start: NonNegativeInt = Field(description="the first channel kept")
    end: PositiveInt = Field(description="one past the last channel kept")

    @model_validator(mode="after")
    def _nonempty(self) -> SliceLayer:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self

    def attrs(self, input_shape: Shape) -> SliceAttrs:
        return SliceAttrs(self.start, self.end)


def _slice_shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    assert isinstance(attrs, SliceAttrs)
    h, w, c = inputs[0]
    if attrs.end > c:
        raise ShapeError(f"slice of channels {attrs.start} to {attrs.end} from a map of {c} channels")
    return (h, w, attrs.end - attrs.start)


@dataclass(frozen=True)
class ChannelShuffleAttrs(Attrs):
    groups: int


class ChannelShuffleLayer(LayerEntry):
    op: Literal["channel_shuffle"]
    groups: PositiveInt = Field(2, description="groups of channels interleaved")

    def attrs(self, input_shape: Shape) -> ChannelShuffleAttrs:
        return ChannelShuffleAttrs(self.groups)


def _shuffle_shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    assert isinstance(attrs, ChannelShuffleAttrs)
    channels = inputs[0][2]
    if channels % attrs.groups:
        raise ShapeError(f"channel_shuffle of {channels} channels into {attrs.groups} groups")
    return inputs[0]


def _moving(op: Op, layer: type[LayerEntry], shape: object) -> OpTraits:
    return OpTraits(
        op=op,
        layer=layer,
        shape=shape,  # type: ignore[arg-type]
        params=no_params,
        exact=per_output(lambda layer: 0),  # data movement
        backward=backward_per_output(lambda layer: 0),  # dy moved back (a slice's other channels get zeros)
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.ALL,
        chunks=Chunks.NO,
        streams=True,
        fuses=False,
    )


TRAITS = (
    _moving(Op.SLICE, SliceLayer, _slice_shape),
    _moving(Op.CHANNEL_SHUFFLE, ChannelShuffleLayer, _shuffle_shape),
)
