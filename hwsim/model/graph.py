"""The layer graph: a network expanded into named layers with shapes, in topological order.

Built from a validated network spec by :func:`hwsim.model.expand.build_graph`; consumed by the cost table,
the schedulers and the NumPy reference alike, so all three see the same layers under the same names.
"""

from __future__ import annotations

from collections.abc import Iterable
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
        object.__setattr__(self, "_consumers", consumers_of(self.layers))

    def layer(self, name: str) -> Layer:
        return self._by_name[name]  # type: ignore[attr-defined]

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def map_names(self) -> list[str]:
        """The maps' names, as a zeros file gives them (``--map-zeros``): the layers that write them, and the input."""
        return [INPUT, *(layer.name for layer in self.layers)]

    def consumers(self, name: str) -> tuple[Layer, ...]:
        """Layers that read the output of ``name`` (or the :data:`INPUT`), in order; found once per graph."""
        return self._consumers.get(name, ())  # type: ignore[attr-defined]

    def up_to(self, name: str) -> Graph:
        """The network as far as layer ``name``: it and the layers it reads, directly or not, in order (a chip
        measured on a network's conv layers alone ran neither its classifier nor what only that reads).
        Raises KeyError for a name the graph does not have."""
        needed = {self.layer(name).name}
        for layer in reversed(self.layers):
            if layer.name in needed:
                needed.update(layer.inputs)
        return Graph(self.name, self.input_shape, tuple(layer for layer in self.layers if layer.name in needed))


def consumers_of(layers: Iterable[Layer]) -> dict[str, tuple[Layer, ...]]:
    """Per map, the layers that read it, in order (a layer that reads it twice, once): what
    :meth:`Graph.consumers` answers, for layers that are not a graph (costs after folding)."""
    found: dict[str, list[Layer]] = {}
    for layer in layers:
        for name in dict.fromkeys(layer.inputs):
            found.setdefault(name, []).append(layer)
    return {name: tuple(readers) for name, readers in found.items()}
