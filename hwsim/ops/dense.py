"""dense, flatten and softmax: the ops that read every channel of their input (dense and flatten every row too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import StrictBool

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    GradientFlow,
    LayerEntry,
    Op,
    OpTraits,
    PlainEntry,
    PositiveInt,
    Rows,
    Shape,
    ShapeError,
    Unit,
    backward_per_output,
    elements,
    no_params,
    outputs,
    per_output,
    same_shape,
)

if TYPE_CHECKING:
    from hwsim.model.graph import Layer


@dataclass(frozen=True)
class DenseAttrs(Attrs):
    units: int
    bias: bool


class DenseLayer(LayerEntry):
    op: Literal["dense"]
    units: PositiveInt
    bias: StrictBool = True

    def attrs(self, input_shape: Shape) -> DenseAttrs:
        return DenseAttrs(self.units, self.bias)


def _dense_shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    assert isinstance(attrs, DenseAttrs)
    h, w, c = inputs[0]
    if (h, w) != (1, 1):
        raise ShapeError(
            f"dense needs a flat input (1x1xC), got {h}x{w}x{c}: add a flatten or global_avg_pool before it"
        )
    return (1, 1, attrs.units)


def _dense_params(attrs: Attrs, inputs: tuple[Shape, ...]) -> tuple[int, int]:
    """Weights (C_in, units) and a bias per unit."""
    assert isinstance(attrs, DenseAttrs)
    return inputs[0][2] * attrs.units + (attrs.units if attrs.bias else 0), 0


def _exact_dense(layer: Layer, batch: int) -> tuple[int, int]:
    a = layer.attrs
    assert isinstance(a, DenseAttrs)
    macs = elements(layer.input_shape) * a.units * batch
    return macs, 2 * macs + (a.units * batch if a.bias else 0)


def _paper_dense(layer: Layer, batch: int) -> tuple[int, int]:
    macs = elements(layer.input_shape) * layer.output_shape[2] * batch
    return macs, 2 * macs


def _backward_dense(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dW = x^T dy, dx = dy W^T: 2*MACs each; db: (batch - 1) adds per unit."""
    a = layer.attrs
    assert isinstance(a, DenseAttrs)
    macs = _exact_dense(layer, batch)[0]
    return 2 * macs + ((batch - 1) * a.units if a.bias else 0) + (2 * macs if flow.input_grads[0] else 0)


def _exact_softmax(layer: Layer, batch: int) -> tuple[int, int]:
    """Per pixel over its C channels: max, subtract, exp, sum, divide, (C-1) + C + C + (C-1) + C.

    So 5N - 2·H·W per image (one max and one sum per pixel), 5N - 2 for a vector of classes."""
    h, w, _ = layer.output_shape
    return 0, (5 * elements(layer.output_shape) - 2 * h * w) * batch


def _forward_train_softmax(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    """The softmax, and as the network output the loss: log of each label's p, sum, times -1/batch (2 per image)."""
    feeds_loss = flow is not None and flow.feeds_loss
    return _exact_softmax(layer, batch)[1] + (2 * batch if feeds_loss else 0)


def _backward_softmax(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """Under the loss: (p - onehot) / batch, 1 subtract per image and N scales.

    Elsewhere: dx = p * (dy - sum(dy * p)): 3N plus (C - 1) adds per position.
    """
    n = outputs(layer, batch)
    if flow.feeds_loss:
        return batch + n
    h, w, c = layer.output_shape
    return 3 * n + (c - 1) * batch * h * w


TRAITS = (
    OpTraits(
        op=Op.DENSE,
        layer=DenseLayer,
        shape=_dense_shape,
        params=_dense_params,
        exact=_exact_dense,
        paper=_paper_dense,
        backward=_backward_dense,
        unit=Unit.MATRIX,
        rows=Rows.WHOLE,
        channels=Channels.ALL,
        chunks=Chunks.FIRST,
        streams=False,
        fuses=False,
        whole_input=True,
    ),
    OpTraits(
        op=Op.FLATTEN,
        layer=PlainEntry,
        shape=lambda attrs, inputs: (1, 1, elements(inputs[0])),
        params=no_params,
        exact=per_output(lambda layer: 0),  # data movement
        backward=backward_per_output(lambda layer: 0),
        unit=Unit.VECTOR,
        rows=Rows.WHOLE,
        channels=Channels.ALL,
        chunks=Chunks.NO,
        streams=False,
        fuses=False,
    ),
    OpTraits(
        op=Op.SOFTMAX,
        layer=PlainEntry,
        shape=same_shape,
        params=no_params,
        exact=_exact_softmax,
        paper=per_output(lambda layer: 3),
        forward_train=_forward_train_softmax,
        backward=_backward_softmax,
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.ALL,
        chunks=Chunks.NO,
        streams=True,
        fuses=False,
    ),
)
