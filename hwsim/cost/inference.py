"""The cost table: what each layer computes (MACs, ops) and which tensors it touches (bytes).

Two counting conventions. ``exact`` counts the arithmetic the NumPy reference really performs
(docs/ops.md has the table; ``hwsim verify`` checks it by execution). ``paper`` uses the
conventions read back from the paper's appendix, its depthwise overcount included. A convention is
a set of ops counted by the paper's rule, so the errata can be corrected one op at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hwsim.model.graph import Graph, Layer, elements
from hwsim.ops import ConvAttrs, DenseAttrs, LrnAttrs, Op, PoolAttrs
from hwsim.spec.hardware import HardwareSpec, Precision

Rule = Callable[[Layer, int], tuple[int, int]]
"""(layer, batch) -> (MACs, ops) for the whole batch."""


def _conv_macs_per_image(layer: Layer) -> int:
    a = layer.attrs
    assert isinstance(a, ConvAttrs)
    ho, wo, co = layer.output_shape
    return ho * wo * co * a.kernel[0] * a.kernel[1] * (layer.input_shape[2] // a.groups)


def _exact_conv(layer: Layer, batch: int) -> tuple[int, int]:
    assert isinstance(layer.attrs, ConvAttrs)
    macs = _conv_macs_per_image(layer) * batch
    bias_adds = elements(layer.output_shape) * batch if layer.attrs.bias else 0
    return macs, 2 * macs + bias_adds


def _exact_dense(layer: Layer, batch: int) -> tuple[int, int]:
    a = layer.attrs
    assert isinstance(a, DenseAttrs)
    macs = elements(layer.input_shape) * a.units * batch
    return macs, 2 * macs + (a.units * batch if a.bias else 0)


def _window_area(layer: Layer) -> int:
    assert isinstance(layer.attrs, PoolAttrs)
    return layer.attrs.size[0] * layer.attrs.size[1]


def _per_output(ops_per_element: Callable[[Layer], int]) -> Rule:
    return lambda layer, batch: (0, ops_per_element(layer) * elements(layer.output_shape) * batch)


def _per_input(ops_per_element: int) -> Rule:
    return lambda layer, batch: (0, ops_per_element * elements(layer.input_shape) * batch)


EXACT_RULES: dict[Op, Rule] = {
    Op.CONV: _exact_conv,
    Op.DWCONV: _exact_conv,
    Op.DENSE: _exact_dense,
    # (x - mean) / sqrt(var + eps) * gamma + beta: 4 per element; var + eps and sqrt once per channel
    Op.BATCHNORM: lambda layer, batch: (0, 4 * elements(layer.output_shape) * batch + 2 * layer.output_shape[2]),
    Op.RELU: _per_output(lambda layer: 1),
    Op.MAXPOOL: _per_output(lambda layer: _window_area(layer) - 1),  # comparisons
    Op.AVGPOOL: _per_output(_window_area),  # area - 1 adds, 1 divide
    Op.GLOBAL_AVG_POOL: _per_input(1),  # H*W - 1 adds and 1 divide per channel
    # max, subtract, exp, sum, divide over N classes: (N-1) + N + N + (N-1) + N per image
    Op.SOFTMAX: lambda layer, batch: (0, (5 * elements(layer.output_shape) - 2) * batch),
    Op.DROPOUT: _per_output(lambda layer: 0),  # identity at inference
    # square, (size-1) adds of shifted squares, then k + alpha/size*s, pow, divide
    Op.LRN: _per_output(lambda layer: layer.attrs.size + 4 if isinstance(layer.attrs, LrnAttrs) else 0),
    Op.ADD: _per_output(lambda layer: len(layer.inputs) - 1),
    Op.CONCAT: _per_output(lambda layer: 0),
    Op.FLATTEN: _per_output(lambda layer: 0),
}


def _paper_dense_conv(layer: Layer, batch: int) -> tuple[int, int]:
    """2*K^2*C_in*C_out*H*W: every conv as if dense, so depthwise is overcounted by C (erratum 1)."""
    assert isinstance(layer.attrs, ConvAttrs)
    kh, kw = layer.attrs.kernel
    ho, wo, co = layer.output_shape
    macs = kh * kw * layer.input_shape[2] * co * ho * wo * batch
    return macs, 2 * macs


PAPER_RULES: dict[Op, Rule] = {
    Op.CONV: _paper_dense_conv,
    Op.DWCONV: _paper_dense_conv,
    Op.DENSE: lambda layer, batch: (m := elements(layer.input_shape) * layer.output_shape[2] * batch, 2 * m),
    Op.BATCHNORM: _per_output(lambda layer: 4),  # with its ReLU: the appendix's 5 per element
    Op.RELU: _per_output(lambda layer: 1),
    Op.MAXPOOL: _per_input(1),
    Op.AVGPOOL: _per_input(1),
    Op.GLOBAL_AVG_POOL: _per_input(1),
    Op.SOFTMAX: _per_output(lambda layer: 3),
}
assert set(EXACT_RULES) == set(Op), "every op needs an exact counting rule"


@dataclass(frozen=True)
class Counting:
    """A counting convention: the ops in ``paper_ops`` follow the appendix, the rest are exact."""

    name: str
    paper_ops: frozenset[Op] = frozenset()

    def rule(self, op: Op) -> Rule:
        return PAPER_RULES[op] if op in self.paper_ops else EXACT_RULES[op]

    def without(self, op: Op, name: str) -> Counting:
        """This convention with ``op`` counted exactly (one erratum corrected)."""
        return Counting(name, self.paper_ops - {op})


EXACT = Counting("exact")
PAPER = Counting("paper", frozenset(PAPER_RULES))
COUNTINGS = {c.name: c for c in (EXACT, PAPER)}


@dataclass(frozen=True)
class LayerCost:
    """What one layer costs for a whole batch. Bytes are per tensor, at the run's precision."""

    layer: Layer
    unit: str
    macs: int
    ops: int
    input_bytes: tuple[int, ...]
    output_bytes: int
    weight_bytes: int
    counting: Counting = EXACT
    batch: int = 1
    precision: Precision = Precision.FP32
    """How the cost was counted, so a transformed layer (BN folded into a conv) can be re-costed alike."""

    @property
    def name(self) -> str:
        return self.layer.name


def weight_elements(layer: Layer, counting: Counting) -> int:
    """Elements of the tensors a layer reads besides its maps.

    Exact: parameters and state (inference batch norm reads gamma, beta, mean and variance).
    The paper's convention loads only the 2 parameters per channel it counts.
    """
    if layer.op is Op.BATCHNORM and Op.BATCHNORM in counting.paper_ops:
        return layer.params
    return layer.params + layer.state


def layer_cost(
    layer: Layer, hardware: HardwareSpec, counting: Counting, batch: int = 1, precision: Precision | None = None
) -> LayerCost:
    element = (precision or hardware.precision).bytes
    macs, ops = counting.rule(layer.op)(layer, batch)
    return LayerCost(
        layer=layer,
        unit=hardware.unit_for(layer.op),
        macs=macs,
        ops=ops,
        input_bytes=tuple(elements(shape) * batch * element for shape in layer.input_shapes),
        output_bytes=elements(layer.output_shape) * batch * element,
        weight_bytes=weight_elements(layer, counting) * element,
        counting=counting,
        batch=batch,
        precision=precision or hardware.precision,
    )


def graph_costs(
    graph: Graph, hardware: HardwareSpec, counting: Counting = EXACT, batch: int = 1, precision: Precision | None = None
) -> tuple[LayerCost, ...]:
    """The cost of every layer of ``graph``, in order."""
    return tuple(layer_cost(layer, hardware, counting, batch, precision) for layer in graph.layers)
