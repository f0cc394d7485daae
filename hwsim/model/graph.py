"""The layer graph: a network expanded into named layers with shapes, in topological order.

Built from a validated network spec by :func:`hwsim.model.expand.build_graph`; consumed by the cost table,
the schedulers and the NumPy reference alike, so all three see the same layers under the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.ops import Attrs, Op, Shape

INPUT = "input"
"""The name by which a layer refers to the network's input image."""


@dataclass(frozen=True)
class Layer:
    """One layer. ``inputs`` names its producers (or :data:`INPUT`), in order.

    Parameter layout (shared by the reference): conv weight (Kh, Kw, C_in/groups, C_out) plus
    bias (C_out,); dense weight (C_in, units) plus bias (units,); batchnorm gamma and beta (C,)
    as parameters, running mean and variance (C,) as ``state``.
    """

    name: str
    op: Op
    inputs: tuple[str, ...]
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    attrs: Attrs
    params: int
    state: int = 0
    where: str = ""
    """Where the layer was written (``file:line``), for error messages."""

    @property
    def input_shape(self) -> Shape:
        """The first (for most ops, the only) input's shape."""
        return self.input_shapes[0]


@dataclass(frozen=True)
class Graph:
    name: str
    input_shape: Shape
    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {layer.name: layer for layer in self.layers})

    def layer(self, name: str) -> Layer:
        return self._by_name[name]  # type: ignore[attr-defined]

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def consumers(self, name: str) -> tuple[Layer, ...]:
        """Layers that read the output of ``name``, in order."""
        return tuple(layer for layer in self.layers if name in layer.inputs)
