"""Training costs: ops of the training forward, the backward and the optimizer step, per layer.

The companion of :mod:`hwsim.cost.inference` (inference forward). Counts are exact: the arithmetic the
NumPy reference performs (``hwsim verify`` checks them by execution); the paper gives no training
counts, so these do not change with ``--counting``. ``N`` is a layer's output elements times the
batch, ``m`` the values per channel that batch norm averages (batch * H * W). Table: docs/reference.md.

A layer's backward depends on its place in the graph (:class:`GradientFlow`): gradients are not
computed for the network input, a map read by k layers sums k gradients (k - 1 adds, charged to
its producer), and the softmax that feeds the cross-entropy loss takes the fused gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hwsim.cost.inference import EXACT, Counting
from hwsim.model.execution import Pass, depthwise_transposed_gradient
from hwsim.model.graph import INPUT, Graph, Layer, elements
from hwsim.ops import ConvAttrs, DenseAttrs, LrnAttrs, Op, PoolAttrs


@dataclass(frozen=True)
class GradientFlow:
    """What one layer's backward must produce, given the graph around it."""

    input_grads: tuple[bool, ...]
    """Per input: whether a gradient flows into it (not for the network input)."""
    readers: int
    """How many inputs of layers on the gradient path read this layer's output."""
    feeds_loss: bool
    """This is the output softmax under the cross-entropy loss."""


TrainingRule = Callable[[Layer, int, GradientFlow], int]
"""(layer, batch, flow) -> ops for the whole batch."""
ForwardTrainRule = Callable[[Layer, int, "GradientFlow | None"], int]
"""Like :data:`TrainingRule`; ``flow`` is None for a layer the loss does not depend on."""

OPTIMIZER_OPS_PER_PARAM = {
    "adam": 14,  # m: 3, v: 4 (with g*g), two bias corrections, sqrt, +eps, alpha*m̂, divide, subtract
    "sgd": 2,  # lr*g, subtract
    "sgd-momentum": 4,  # mu*b + g: 2, then lr*b, subtract
}


def gradient_path(graph: Graph) -> set[str]:
    """Layers whose output the loss depends on: the output and every layer it (transitively) reads."""
    reached = {graph.output.name}
    for layer in reversed(graph.layers):
        if layer.name in reached:
            reached.update(name for name in layer.inputs if name != INPUT)
    return reached


def gradient_flows(graph: Graph) -> dict[str, GradientFlow]:
    """The :class:`GradientFlow` of every layer on the gradient path."""
    path = gradient_path(graph)
    readers = {name: 0 for name in path}
    for layer in graph.layers:
        if layer.name in path:
            for name in layer.inputs:
                if name != INPUT:
                    readers[name] += 1
    feeds_loss = graph.output.op is Op.SOFTMAX
    return {
        layer.name: GradientFlow(
            input_grads=tuple(name != INPUT for name in layer.inputs),
            readers=readers[layer.name],
            feeds_loss=feeds_loss and layer is graph.output,
        )
        for layer in graph.layers
        if layer.name in path
    }


def _outputs(layer: Layer, batch: int) -> int:
    return elements(layer.output_shape) * batch


def _per_channel_values(layer: Layer, batch: int) -> tuple[int, int]:
    """(m, C) of a batch norm: values averaged per channel, and channels."""
    h, w, c = layer.output_shape
    return batch * h * w, c


def _window_scatter(layer: Layer, batch: int, channels: int, size: tuple[int, int], stride: tuple[int, int]) -> int:
    """Adds to sum overlapping windows back onto the input (col2im): none when windows do not overlap."""
    ho, wo, _ = layer.output_shape
    overlapping = stride[0] < size[0] or stride[1] < size[1]
    return (size[0] * size[1] - 1) * batch * ho * wo * channels if overlapping else 0


# ---- training forward: the inference rule, except where training computes more ----------------


def _forward_train_batchnorm(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    """Batch mean and variance, normalise, scale and shift, update the running averages.

    sum x, /m, x - mu, (x - mu)^2, sum, /m, + eps, sqrt, divide, *gamma, +beta: 5N + 2(m-1)C + 4C;
    running mean and variance, (1 - momentum) r + momentum s: 3C each.
    """
    m, c = _per_channel_values(layer, batch)
    return 5 * _outputs(layer, batch) + 2 * (m - 1) * c + 10 * c


def _forward_train_dropout(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    """keep = u >= rate, mask = keep / (1 - rate), y = x * mask: 3N (drawing u is not counted)."""
    return 3 * _outputs(layer, batch)


def _forward_train_softmax(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    """The softmax, and as the network output the loss: log of each label's p, sum, times -1/batch (2 per image)."""
    feeds_loss = flow is not None and flow.feeds_loss
    return EXACT.rule(Op.SOFTMAX)(layer, batch)[1] + (2 * batch if feeds_loss else 0)


FORWARD_TRAIN_RULES: dict[Op, ForwardTrainRule] = {
    Op.BATCHNORM: _forward_train_batchnorm,
    Op.DROPOUT: _forward_train_dropout,
    Op.SOFTMAX: _forward_train_softmax,
}
"""Ops whose training forward differs from inference; the rest run their exact inference rule."""


# ---- backward ------------------------------------------------------------------------------


def _backward_conv(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dW: 2*MACs; db: (batch*Ho*Wo - 1) adds per channel; dx: see :func:`depthwise_transposed_gradient`.

    Transposed: 2 per multiply-add over every input position, 2 * batch * H * W * Co * Kh * Kw.
    Otherwise: 2*MACs for the columns plus the col2im adds.
    """
    a = layer.attrs
    assert isinstance(a, ConvAttrs)
    macs = EXACT.rule(layer.op)(layer, batch)[0]
    ho, wo, co = layer.output_shape
    ops = 2 * macs + ((batch * ho * wo - 1) * co if a.bias else 0)
    if not flow.input_grads[0]:
        return ops
    if depthwise_transposed_gradient(layer):
        h, w, _ = layer.input_shape
        return ops + 2 * batch * h * w * co * a.kernel[0] * a.kernel[1]
    return ops + 2 * macs + _window_scatter(layer, batch, layer.input_shape[2], a.kernel, a.stride)


def _backward_dense(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dW = x^T dy, dx = dy W^T: 2*MACs each; db: (batch - 1) adds per unit."""
    a = layer.attrs
    assert isinstance(a, DenseAttrs)
    macs = EXACT.rule(Op.DENSE)(layer, batch)[0]
    return 2 * macs + ((batch - 1) * a.units if a.bias else 0) + (2 * macs if flow.input_grads[0] else 0)


def _backward_batchnorm(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dbeta = sum dy, dgamma = sum dy*x̂: N + 2(m-1)C; dx = gamma/std * (dy - dbeta/m - x̂ dgamma/m): 4N + 3C."""
    m, c = _per_channel_values(layer, batch)
    n = _outputs(layer, batch)
    return n + 2 * (m - 1) * c + (4 * n + 3 * c if flow.input_grads[0] else 0)


def _backward_maxpool(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dy routed to each window's winner: only overlapping windows add."""
    a = layer.attrs
    assert isinstance(a, PoolAttrs)
    return _window_scatter(layer, batch, layer.output_shape[2], a.size, a.stride)


def _backward_avgpool(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dy / area once per output, spread over the window; overlapping windows add."""
    a = layer.attrs
    assert isinstance(a, PoolAttrs)
    return _outputs(layer, batch) + _window_scatter(layer, batch, layer.output_shape[2], a.size, a.stride)


def _backward_softmax(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """Under the loss: (p - onehot) / batch, 1 subtract per image and N scales.

    Elsewhere: dx = p * (dy - sum(dy * p)): 3N plus (C - 1) adds per position.
    """
    n = _outputs(layer, batch)
    if flow.feeds_loss:
        return batch + n
    h, w, c = layer.output_shape
    return 3 * n + (c - 1) * batch * h * w


def _per_output(ops_per_element: Callable[[Layer], int]) -> TrainingRule:
    return lambda layer, batch, flow: ops_per_element(layer) * _outputs(layer, batch)


def _lrn_backward_per_element(layer: Layer) -> int:
    """dy*y/d (2), the reflected window sum (size - 1), dy/d^beta, x*sum, *2*alpha*beta/size, subtract (4)."""
    assert isinstance(layer.attrs, LrnAttrs)
    return layer.attrs.size + 5


BACKWARD_RULES: dict[Op, TrainingRule] = {
    Op.CONV: _backward_conv,
    Op.DWCONV: _backward_conv,
    Op.DENSE: _backward_dense,
    Op.BATCHNORM: _backward_batchnorm,
    Op.RELU: _per_output(lambda layer: 2),  # y > 0, times dy
    Op.MAXPOOL: _backward_maxpool,
    Op.AVGPOOL: _backward_avgpool,
    Op.GLOBAL_AVG_POOL: _per_output(lambda layer: 1),  # dy / (H*W), broadcast
    Op.SOFTMAX: _backward_softmax,
    Op.DROPOUT: _per_output(lambda layer: 1),  # dy * mask
    Op.LRN: _per_output(_lrn_backward_per_element),
    Op.ADD: _per_output(lambda layer: 0),  # dy passes to every input
    Op.CONCAT: _per_output(lambda layer: 0),
    Op.FLATTEN: _per_output(lambda layer: 0),
}
assert set(BACKWARD_RULES) == set(Op), "every op needs a backward rule"


# ---- per layer, per pass ---------------------------------------------------------------------


def forward_train_ops(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    rule = FORWARD_TRAIN_RULES.get(layer.op)
    return rule(layer, batch, flow) if rule else EXACT.rule(layer.op)(layer, batch)[1]


def backward_ops(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    """The layer's backward plus summing the gradients of its readers; 0 off the gradient path (``flow`` None)."""
    if flow is None:
        return 0
    summing = max(flow.readers - 1, 0) * _outputs(layer, batch)
    return BACKWARD_RULES[layer.op](layer, batch, flow) + summing


def optimizer_ops(layer: Layer, optimizer: str) -> int:
    """One optimizer step over the layer's parameters (every parameter is updated, reached or not)."""
    return OPTIMIZER_OPS_PER_PARAM[optimizer] * layer.params


@dataclass(frozen=True)
class PassOps:
    """Scalar operations of one layer in each pass, for the whole batch."""

    layer: Layer
    forward: int
    forward_train: int
    backward: int
    optimizer: int

    def of(self, pass_: Pass) -> int:
        return getattr(self, pass_.value)


def pass_ops(graph: Graph, counting: Counting = EXACT, batch: int = 1, optimizer: str = "adam") -> tuple[PassOps, ...]:
    """Every layer's ops in the four passes; only the inference forward follows ``counting``."""
    flows = gradient_flows(graph)
    rows = []
    for layer in graph.layers:
        flow = flows.get(layer.name)
        rows.append(
            PassOps(
                layer=layer,
                forward=counting.rule(layer.op)(layer, batch)[1],
                forward_train=forward_train_ops(layer, batch, flow),
                backward=backward_ops(layer, batch, flow),
                optimizer=optimizer_ops(layer, optimizer),
            )
        )
    return tuple(rows)
