"""Training costs: ops of the training forward, the backward and the optimizer step, per layer.

The companion of :mod:`hwsim.cost.inference` (inference forward); each op's rules are declared
with its traits (:mod:`hwsim.ops`). Counts are exact: the arithmetic the NumPy reference performs
(``hwsim verify`` checks them by execution); the paper gives no training counts, so these do not
change with ``--counting``. ``N`` is a layer's output elements times the batch, ``m`` the values
per channel that batch norm averages (batch * H * W). Table: docs/reference.md.

A layer's backward depends on its place in the graph (:class:`GradientFlow`): gradients are not
computed for the network input, a map read by k layers sums k gradients (k - 1 adds, charged to
its producer), and the softmax that feeds the cross-entropy loss takes the fused gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.cost.inference import EXACT, Counting
from hwsim.model.execution import Pass
from hwsim.model.graph import INPUT, Graph, Layer
from hwsim.ops import TRAITS, GradientFlow, Op, elements

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

    def readers(name: str) -> int:
        """Inputs on the gradient path that read ``name``: the gradients it sums."""
        return sum(reader.inputs.count(name) for reader in graph.consumers(name) if reader.name in path)

    feeds_loss = graph.output.op is Op.SOFTMAX
    return {
        layer.name: GradientFlow(
            input_grads=tuple(name != INPUT for name in layer.inputs),
            readers=readers(layer.name),
            feeds_loss=feeds_loss and layer is graph.output,
        )
        for layer in graph.layers
        if layer.name in path
    }


# ---- per layer, per pass ---------------------------------------------------------------------


def forward_train_ops(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    """The training forward: the exact inference rule, except for ops whose training forward computes more."""
    traits = TRAITS[layer.op]
    return traits.forward_train(layer, batch, flow) if traits.forward_train else traits.exact(layer, batch)[1]


def backward_ops(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    """The layer's backward plus summing the gradients of its readers; 0 off the gradient path (``flow`` None)."""
    if flow is None:
        return 0
    summing = max(flow.readers - 1, 0) * elements(layer.output_shape) * batch
    return TRAITS[layer.op].backward(layer, batch, flow) + summing


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
