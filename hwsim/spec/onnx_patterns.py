"""Several ONNX nodes that are one hwsim layer, and the channels-last stretches of a graph.

Exporters write some ops as the arithmetic that computes them: PyTorch's TorchScript exporter writes GELU as
``x * (1 + erf(x / √2)) * 0.5`` (Div, Erf, Add, Mul, Mul) or its tanh approximation as Mul, Mul, Mul, Add, Mul,
Tanh, Add, Mul, Mul, and before opset 17 a layer norm over the last axis as ReduceMean, Sub, Pow, ReduceMean, Add,
Sqrt, Div, Mul, Add. Each pattern is found here by its wiring and its constants, every node but the last absorbed,
the last translated as the one layer (named after it). The patterns are found on the model's own shapes, before
:func:`channels_last` rewrites those of channels-last maps (a layer norm's last axis is its channels then).

ConvNeXt moves a map to channels-last and back (``permute(0, 2, 3, 1)``, ``permute(0, 3, 1, 2)``): a Transpose to
NHWC, then ops that read the last axis as the channels (LayerNormalization over axis -1, a MatMul by a
(C_in, C_out) weight: a 1x1 convolution) or that do not care (element-wise ops), then a Transpose back to NCHW.
hwsim's maps are NHWC already, so both Transposes are no layers and the ops between them read the map as it is;
:func:`channels_last` finds such stretches. A channels-last tensor read by anything else leaves its Transpose
refused, with the reader named.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from hwsim.spec.onnx_ops import ArraySource, Context, Node, Translation, layer_norm_entry

NHWC = [0, 2, 3, 1]
NCHW = [0, 3, 1, 2]


@dataclass
class Wiring:
    """Who produces and who reads each tensor, among the nodes kept."""

    nodes: list[Node]
    outputs: frozenset[str]
    producer: dict[str, Node] = field(default_factory=dict)
    readers: dict[str, list[Node]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in self.nodes:
            self.producer.update((name, node) for name in node.output)
            for name in node.input:
                self.readers.setdefault(name, []).append(node)

    def only_reader(self, tensor: str, op_type: str) -> Node | None:
        """The one node reading ``tensor`` if it is an ``op_type`` and ``tensor`` is no graph output."""
        found = self.readers.get(tensor, [])
        if len(found) != 1 or tensor in self.outputs or found[0].op_type != op_type or not found[0].standard:
            return None
        return found[0]

    def made_by(self, tensor: str, op_type: str) -> Node | None:
        node = self.producer.get(tensor)
        return node if node is not None and node.op_type == op_type and node.standard else None


@dataclass
class Found:
    """Patterns found: the nodes they absorb, and the translation of each pattern's last node, by its output."""

    absorbed: set[int] = field(default_factory=set)
    translations: dict[str, Translation] = field(default_factory=dict)

    def add(self, absorbed: Iterable[Node], last: Node, translation: Translation) -> None:
        self.absorbed.update(node.position for node in absorbed)
        self.translations[last.output[0]] = translation


def _scalar(ctx: Context, tensor: str) -> float | None:
    if tensor in ctx.data:
        return None
    value = ctx.constant(tensor)
    return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None


def _near(value: float | None, expected: float) -> bool:
    """A float32 constant that stands for ``expected`` (written to float32 precision)."""
    return value is not None and math.isclose(value, expected, rel_tol=1e-6)


def _other(node: Node, tensor: str) -> str | None:
    """The other operand of a two-input node that reads ``tensor``."""
    if len(node.input) != 2 or tensor not in node.input:
        return None
    return node.input[1] if node.input[0] == tensor else node.input[0]


def _times_x_half(w: Wiring, ctx: Context, tensor: str, x: str) -> tuple[Node, Node] | None:
    """The two Muls that finish a GELU: ``tensor`` (1 + erf or 1 + tanh) times x, then times 0.5, either way round."""
    first = w.only_reader(tensor, "Mul")
    second = None if first is None else w.only_reader(first.output[0], "Mul")
    if first is None or second is None:
        return None
    a, b = _other(first, tensor), _other(second, first.output[0])
    if (a == x and _near(_scalar(ctx, b or ""), 0.5)) or (b == x and _near(_scalar(ctx, a or ""), 0.5)):
        return first, second
    return None


def _data_and_constant(node: Node, ctx: Context) -> tuple[str, float | None] | None:
    """(the data operand, the scalar constant) of a two-input node with one of each."""
    if len(node.input) != 2:
        return None
    a, b = node.input
    if a in ctx.data and b not in ctx.data:
        return a, _scalar(ctx, b)
    if b in ctx.data and a not in ctx.data:
        return b, _scalar(ctx, a)
    return None


def _gelu_erf(w: Wiring, ctx: Context, erf: Node, found: Found) -> None:
    """Div(x, √2) or Mul(x, 1/√2), Erf, Add 1, Mul x, Mul 0.5."""
    scaled = w.made_by(erf.input[0], "Div") or w.made_by(erf.input[0], "Mul")
    operands = None if scaled is None else _data_and_constant(scaled, ctx)
    if scaled is None or operands is None or w.only_reader(scaled.output[0], "Erf") is None:
        return
    x, c = operands
    divided = scaled.op_type == "Div" and scaled.input[0] == x and _near(c, math.sqrt(2))
    if not (divided or (scaled.op_type == "Mul" and _near(c, 1 / math.sqrt(2)))):
        return
    plus = w.only_reader(erf.output[0], "Add")
    if plus is None or not _near(_scalar(ctx, _other(plus, erf.output[0]) or ""), 1.0):
        return
    end = _times_x_half(w, ctx, plus.output[0], x)
    if end is not None:
        found.add((scaled, erf, plus, end[0]), end[1], Translation({"op": "gelu"}, (x,)))


def _gelu_tanh(w: Wiring, ctx: Context, tanh: Node, found: Found) -> None:
    """PyTorch's tanh approximation as TorchScript writes it: x·x, ·x, ·0.044715, + x, ·√(2/π), Tanh, + 1, ·x, ·0.5."""
    slope = w.made_by(tanh.input[0], "Mul")
    operands = None if slope is None else _data_and_constant(slope, ctx)
    if slope is None or operands is None or not _near(operands[1], math.sqrt(2 / math.pi)):
        return
    inner = w.made_by(operands[0], "Add")
    if inner is None or w.only_reader(inner.output[0], "Mul") is None or len(inner.input) != 2:
        return
    for x, cubic in (inner.input, inner.input[::-1]):
        scaled = w.made_by(cubic, "Mul")
        third = None if scaled is None else _data_and_constant(scaled, ctx)
        if scaled is None or third is None or not _near(third[1], 0.044715):
            continue
        cube = w.made_by(third[0], "Mul")
        square = None if cube is None else w.made_by(_other(cube, x) or "", "Mul")
        if cube is None or square is None or tuple(square.input) != (x, x):
            continue
        chain = (square, cube, scaled)
        if any(w.readers.get(node.output[0], []) != [after] for node, after in zip(chain, (cube, scaled, inner))):
            continue
        plus = w.only_reader(tanh.output[0], "Add")
        if plus is None or not _near(_scalar(ctx, _other(plus, tanh.output[0]) or ""), 1.0):
            return
        end = _times_x_half(w, ctx, plus.output[0], x)
        if end is not None:
            absorbed = (*chain, inner, slope, tanh, plus, end[0])
            found.add(absorbed, end[1], Translation({"op": "gelu", "approximate": "tanh"}, (x,)))
        return


def _last_axis_mean(node: Node, ctx: Context) -> bool:
    """A ReduceMean over the last axis alone, keeping it (axes an attribute before opset 18, an input from it)."""
    axes = node.attrs.get("axes")
    if axes is None and len(node.input) > 1:
        value = ctx.constant(node.input[1])
        axes = None if value is None else value.reshape(-1).tolist()
    rank = len(ctx.shapes.get(node.input[0]) or ())
    return bool(rank) and axes is not None and [a % rank for a in axes] == [rank - 1] and node.attrs.get("keepdims", 1)


def _layer_norm_pieces(w: Wiring, ctx: Context, mean: Node, found: Found) -> None:
    """LayerNorm before opset 17: ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul γ, Add β."""
    x = mean.input[0]
    sub = w.only_reader(mean.output[0], "Sub")
    if not _last_axis_mean(mean, ctx) or sub is None or tuple(sub.input) != (x, mean.output[0]):
        return
    readers = w.readers.get(sub.output[0], [])
    power = next((r for r in readers if r.op_type == "Pow"), None)
    divide = next((r for r in readers if r.op_type == "Div"), None)
    if len(readers) != 2 or power is None or divide is None or not _near(_scalar(ctx, power.input[1]), 2.0):
        return
    variance = w.only_reader(power.output[0], "ReduceMean")
    plus = None if variance is None else w.only_reader(variance.output[0], "Add")
    root = None if plus is None else w.only_reader(plus.output[0], "Sqrt")
    if variance is None or plus is None or root is None or not _last_axis_mean(variance, ctx):
        return
    eps = _scalar(ctx, _other(plus, variance.output[0]) or "")
    if eps is None or tuple(divide.input) != (sub.output[0], root.output[0]) or w.readers[root.output[0]] != [divide]:
        return
    scale = w.only_reader(divide.output[0], "Mul")
    shift = None if scale is None else w.only_reader(scale.output[0], "Add")
    gamma = None if scale is None else _other(scale, divide.output[0])
    beta = None if shift is None or scale is None else _other(shift, scale.output[0])
    channels = (ctx.shapes.get(x) or (None,))[-1]
    if shift is None or not _vector(ctx, gamma, channels) or not _vector(ctx, beta, channels):
        return
    arrays = (ArraySource("gamma", gamma, "vector"), ArraySource("beta", beta, "vector"))  # type: ignore[arg-type]
    translation = Translation(layer_norm_entry(eps), (x,), arrays)
    found.add((mean, sub, power, variance, plus, root, divide, scale), shift, translation)  # type: ignore[arg-type]


def _vector(ctx: Context, name: str | None, size: int | None) -> bool:
    return name is not None and name in ctx.initializers and ctx.initializers[name].size == size


def _strided_view(w: Wiring, ctx: Context, gather: Node, found: Found) -> None:
    """Reshape to 1-D, then Gather at a constant index of the map's own shape that reads every element in order:
    the map unchanged (the dynamo exporter writes an ``as_strided`` view so: ConvNeXt's flatten before its head)."""
    flat = w.made_by(gather.input[0], "Reshape")
    if flat is None or w.only_reader(flat.output[0], "Gather") is None or int(gather.attrs.get("axis", 0)) != 0:
        return
    x, index = flat.input[0], ctx.constant(gather.input[1]) if gather.input[1] not in ctx.data else None
    flat_dims = ctx.shapes.get(flat.output[0]) or ()
    if index is None or tuple(index.shape) != ctx.shapes.get(x) or len(flat_dims) != 1:
        return
    if np.array_equal(index.reshape(-1), np.arange(index.size)):
        found.add((flat,), gather, Translation({"op": "identity"}, (x,), passes_on=True))


PATTERNS: dict[str, Callable[[Wiring, Context, Node, Found], None]] = {
    "Erf": _gelu_erf,
    "Tanh": _gelu_tanh,
    "ReduceMean": _layer_norm_pieces,
    "Gather": _strided_view,
}
"""The op type a pattern is looked for from -> what looks for it."""


def find_patterns(nodes: list[Node], ctx: Context, outputs: frozenset[str]) -> Found:
    """Every pattern among ``nodes`` (module docstring)."""
    w = Wiring(nodes, outputs)
    found = Found()
    for node in nodes:
        look = PATTERNS.get(node.op_type) if node.standard else None
        if look is not None and node.position not in found.absorbed:
            look(w, ctx, node, found)
    return found


LAYOUT_FREE = frozenset(
    {
        *("Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Erf", "Gelu", "Clip", "LeakyRelu", "HardSigmoid"),
        *("HardSwish", "Identity", "Dropout", "Cast"),
    }
)
"""Ops that compute element by element: a channels-last map in, the same channels-last map out (a constant
operand is one value or one per channel, the last axis)."""
LAST_AXIS = frozenset({"LayerNormalization", "MatMul"})
"""Ops that read the last axis as the channels: channels-last is the layout they need."""
FLATTENING = frozenset({"Flatten", "Reshape"})


def channels_last(nodes: list[Node], ctx: Context, patterns: Found) -> tuple[set[int], dict[int, str]]:
    """The Transposes to NHWC and back around channels-last stretches (no layers), and the Transposes to NHWC that
    cannot be absorbed, with why. The channels-last tensors are recorded in ``ctx.channels_last`` and their shapes
    rewritten as NCHW, so every translator reads them as the maps they are."""
    start_of: dict[str, Node] = {}  # a channels-last tensor -> the Transpose that began its stretch
    transposes: dict[int, Node] = {}  # a Transpose absorbed -> the start of its stretch
    refused: dict[int, str] = {}
    for node in nodes:
        if node.position in patterns.absorbed or not node.standard:
            continue
        kind = patterns.translations.get(node.output[0]) if node.output else None
        inputs = kind.inputs if kind is not None else node.input
        read = [name for name in inputs if name in start_of]
        if not read:
            if node.op_type == "Transpose" and node.attrs.get("perm") == NHWC and node.input[0] in ctx.data:
                if len(ctx.shapes.get(node.input[0]) or ()) == 4:
                    start_of[node.output[0]] = transposes[node.position] = node
            continue
        start = start_of[read[0]]
        if node.op_type == "Transpose" and node.attrs.get("perm") == NCHW:
            transposes[node.position] = start
        elif node.op_type in FLATTENING:
            continue  # a flatten of a channels-last map reads it in hwsim's (h, w, c) order
        elif kind is not None or node.op_type in LAYOUT_FREE | LAST_AXIS:
            if any(name in ctx.data and name not in start_of for name in inputs):
                refused[start.position] = f"its channels-last map meets an NCHW one at {node.op_type} {node.name}"
            start_of.update((name, start) for name in node.output if name)
        else:
            refused[start.position] = f"its channels-last map is read by {node.op_type} {node.name or node.position}"
    stretch = {name for name, start in start_of.items() if start.position not in refused}
    for name in stretch:
        dims = ctx.shapes.get(name)
        if dims is not None and len(dims) == 4:
            ctx.shapes[name] = (dims[0], dims[3], dims[1], dims[2])
    ctx.channels_last = stretch
    return {p for p, start in transposes.items() if start.position not in refused}, refused
