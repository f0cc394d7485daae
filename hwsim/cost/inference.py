"""The cost table: what each layer computes (MACs, ops) and which tensors it touches (bytes).

Two counting conventions, each op's rules declared with its traits (:mod:`hwsim.ops`). ``exact``
counts the arithmetic the NumPy reference really performs (docs/ops.md has the table; ``hwsim
verify`` checks it by execution). ``paper`` uses the conventions read back from the paper's
appendix, its depthwise overcount included. A convention is a set of ops counted by the paper's
rule, so the errata can be corrected one op at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hwsim.model.graph import Graph, Layer
from hwsim.ops import TRAITS, CostRule, Op, PReluAttrs, elements
from hwsim.spec.hardware import HardwareSpec, Precision


@dataclass(frozen=True)
class Counting:
    """A counting convention: the ops in ``paper_ops`` follow the appendix, the rest are exact."""

    name: str
    paper_ops: frozenset[Op] = frozenset()

    def rule(self, op: Op) -> CostRule:
        """(layer, batch) -> (MACs, ops) for the whole batch, as this convention counts ``op``."""
        traits = TRAITS[op]
        paper = traits.paper if op in self.paper_ops else None
        return paper or traits.exact

    def without(self, op: Op, name: str) -> Counting:
        """This convention with ``op`` counted exactly (one erratum corrected)."""
        return Counting(name, self.paper_ops - {op})


EXACT = Counting("exact")
PAPER = Counting("paper", frozenset(op for op, traits in TRAITS.items() if traits.paper is not None))
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
    weights_resident: bool = False
    """Its weights stay on chip across images (steady state, :mod:`hwsim.cost.steady`): never loaded."""
    output_link: float = 1.0
    """Bytes over the external link per byte of its output map: below 1 when the link codes maps
    (:mod:`hwsim.cost.coding`)."""
    input_link: float = 1.0
    """The same for the network's input, when this layer reads it."""

    @property
    def name(self) -> str:
        return self.layer.name


def weight_elements(layer: Layer, counting: Counting) -> int:
    """Elements of the tensors a layer reads besides its maps.

    Exact: parameters and state (inference batch norm reads gamma, beta, mean and variance).
    The paper's convention loads only the 2 parameters per channel it counts. A prelu's one shared slope is a
    scalar the vector unit holds as it holds leaky_relu's alpha: a parameter (trained), but no tensor of weights
    laid out by channel for the schedules to move.
    """
    if layer.op is Op.BATCHNORM and Op.BATCHNORM in counting.paper_ops:
        return layer.params
    if isinstance(layer.attrs, PReluAttrs) and layer.attrs.shared:
        return 0
    return layer.params + layer.state


def layer_cost(
    layer: Layer,
    hardware: HardwareSpec,
    counting: Counting,
    batch: int = 1,
    precision: Precision | None = None,
    weights_resident: bool = False,
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
        weights_resident=weights_resident,
    )


def recost(c: LayerCost, hardware: HardwareSpec, layer: Layer | None = None, batch: int | None = None) -> LayerCost:
    """``c`` costed again for another layer (a batch norm folded in) or batch, keeping what the run marked on it
    (weights kept on chip, maps coded on the link)."""
    again = layer_cost(layer or c.layer, hardware, c.counting, batch or c.batch, c.precision, c.weights_resident)
    return replace(again, output_link=c.output_link, input_link=c.input_link)


def graph_costs(
    graph: Graph, hardware: HardwareSpec, counting: Counting = EXACT, batch: int = 1, precision: Precision | None = None
) -> tuple[LayerCost, ...]:
    """The cost of every layer of ``graph``, in order."""
    return tuple(layer_cost(layer, hardware, counting, batch, precision) for layer in graph.layers)
