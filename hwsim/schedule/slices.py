"""A layer's weights laid out by input channel, for a schedule that streams the input channels past.

A layer's weights are one cell per output channel (``Region(weights_of(layer), (0, 1), channels)``). A
schedule that runs a layer in passes over its input channels (:class:`hwsim.schedule.order.InputPasses`)
loads, for a group of output channels, the weights of a few input channels at a time, so it addresses the
same bytes another way: each output channel's weights are a column of rows of ``unit`` bytes, input channel
``i``'s the ``per_input`` rows from ``i * per_input``, and the rows left over (the bias, or a batch norm's
parameters folded in) go with the last input channel, which completes the sum. Every row is the same size,
so sizes stay rows x channels x cell bytes, and the column's rows add up to the weights' bytes exactly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from hwsim.cost.inference import LayerCost
from hwsim.model.regions import CHANNELS
from hwsim.ops import Channels, ConvAttrs, ConvTransposeAttrs
from hwsim.schedule.base import Span, TensorId


class Column(NamedTuple):
    """How one output channel's weights are cut by input channel."""

    unit: int
    """Bytes a row."""
    per_input: int
    """Rows an input channel."""
    height: int
    """Rows in all: ``per_input`` for every input channel, and the rows left over."""


def by_input(layer: str) -> TensorId:
    """The weights of ``layer`` laid out by input channel."""
    return TensorId(layer, True, True)


def passable(cost: LayerCost) -> bool:
    """Whether every output channel of the layer reads every input channel and its weights can be cut by them."""
    layer = cost.layer
    kind = CHANNELS[layer.op]
    if not cost.weight_bytes or len(layer.inputs) != 1:
        return False
    if kind is Channels.GROUPS:
        assert isinstance(layer.attrs, (ConvAttrs, ConvTransposeAttrs))
        if layer.attrs.groups != 1:
            return False
    elif kind is not Channels.ALL:
        return False
    return cost.weight_bytes // layer.output_shape[2] >= layer.input_shape[2]


def column(cost: LayerCost) -> Column:
    """The layout of a :func:`passable` layer's weights by input channel (module docstring)."""
    per_output = cost.weight_bytes // cost.layer.output_shape[2]
    inputs = cost.layer.input_shape[2]
    per_input = per_output // inputs
    unit = math.gcd(per_input, per_output - inputs * per_input)
    return Column(unit, per_input // unit, per_output // unit)


def rows_of(cost: LayerCost, inputs: Span) -> Span:
    """The rows of the column holding input channels ``inputs``' weights (the last one's take the rows left over)."""
    layout = column(cost)
    stop = layout.height if inputs[1] == cost.layer.input_shape[2] else inputs[1] * layout.per_input
    return (inputs[0] * layout.per_input, stop)
