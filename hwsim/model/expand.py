"""Expand a network spec (blocks, arguments, repeats) into a :class:`Graph` of named, shaped layers.

Two passes. :func:`_flatten` substitutes block arguments and names every layer
(``stage2.block1.dw``: use name, repeat index, layer name). :func:`build_graph` then resolves
``inputs``, validates each layer against its op's model and infers shapes in order. Every error
names the file line where the offending entry was written and the layer it became.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwsim import bundled
from hwsim.errors import InputError
from hwsim.model.graph import INPUT, Graph, Layer
from hwsim.ops import TRAITS, Op, Shape, ShapeError
from hwsim.spec.names import name_problem
from hwsim.spec.network import MAX_SIZE, NetworkSpec, UseEntry, dump_network, load_network_document
from hwsim.spec.onnx_file import is_onnx
from hwsim.spec.validate import format_loc, validate
from hwsim.spec.yamlio import Document, Loc

if TYPE_CHECKING:
    from hwsim.spec.onnx_reader import OnnxNetwork


@dataclass(frozen=True)
class _Ref:
    """A layer reference as written (``conv2``, ``input``), to resolve from within ``scope``."""

    name: str
    scope: str


@dataclass(frozen=True)
class _Entry:
    """One layer entry after argument substitution, with its full name and where it was written."""

    name: str
    raw: dict[str, Any]
    loc: Loc
    scope: str
    previous: str


MAX_LAYERS = 10_000
"""Far beyond any real network; stops a mistyped ``repeat`` from expanding for minutes."""
MAX_NESTING = 32
"""Blocks using blocks, this deep at most: real networks nest two or three levels; expansion recurses once per level."""


def _listed(names: tuple[str, ...] | list[str], most: int = 12) -> str:
    """``a, b, c``; a long list cut short, so that an error stays one readable line."""
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown}, ... ({len(names):,} in all)"


def _qualify(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


class _Flattener:
    def __init__(self, spec: NetworkSpec, doc: Document) -> None:
        self.spec = spec
        self.doc = doc
        self.entries: list[_Entry] = []
        self.names: set[str] = set()
        self.scope_inputs: dict[str, _Ref | str] = {}
        """Block instance (``stage1.block2``) -> what its ``input`` means; every instance name is distinct."""

    def error(self, message: str, loc: Loc) -> InputError:
        return InputError(message, self.doc.where(loc), format_loc(loc))

    @property
    def previous(self) -> str:
        return self.entries[-1].name if self.entries else INPUT

    def flatten(
        self, items: list[dict[str, Any]], at: Loc, scope: str, args: dict[str, Any], stack: tuple[str, ...]
    ) -> None:
        counters: dict[str, int] = {}
        for index, item in enumerate(items):
            loc = (*at, index)
            item = self.substitute(item, args, loc, stack)
            if "use" in item:
                self.expand_use(item, loc, scope, counters, stack)
                continue
            self.check_values(item, loc)
            op = item.get("op")
            if op is None:
                raise self.error("missing field 'op' (or 'use' for a block)", loc)
            if not isinstance(op, str) or op not in Op._value2member_map_:
                known = ", ".join(o.value for o in Op)
                raise self.error(f"unknown op {op!r}; known ops: {known}", (*loc, "op"))
            base = item.get("name") if isinstance(item.get("name"), str) else None
            if base is None:
                counters[op] = counters.get(op, 0) + 1
                base = op if counters[op] == 1 else f"{op}{counters[op]}"
            self.add(_Entry(_qualify(scope, base), item, loc, scope, self.previous))

    def check_values(self, item: dict[str, Any], loc: Loc) -> None:
        """A layer's name by the rule every name follows, and its every integer (each is a size or a count)
        at most :data:`~hwsim.spec.network.MAX_SIZE`, before anything multiplies them."""
        name = item.get("name")
        if isinstance(name, str) and (problem := name_problem(name)):
            raise self.error(problem, (*loc, "name"))
        for key, value in item.items():
            for index, number in enumerate(value if isinstance(value, list) else [value]):
                if isinstance(number, int) and not isinstance(number, bool) and number > MAX_SIZE:
                    at = (*loc, key, index) if isinstance(value, list) else (*loc, key)
                    shown = f"{number:,}" if number < 10**15 else f"{float(number):.3g}"
                    raise self.error(f"{shown} is larger than any size a network takes ({MAX_SIZE:,})", at)

    def add(self, entry: _Entry) -> None:
        if entry.name in self.names:
            raise self.error(f"duplicate layer name {entry.name!r}", entry.loc)
        if entry.name in self.scope_inputs:
            raise self.error(f"the name {entry.name!r} is already taken by an earlier block", entry.loc)
        if len(self.entries) == MAX_LAYERS:
            raise self.error(f"the network expands to more than {MAX_LAYERS:,} layers", entry.loc)
        self.names.add(entry.name)
        self.entries.append(entry)

    def substitute(self, item: Any, args: dict[str, Any], loc: Loc, stack: tuple[str, ...]) -> Any:
        """Replace ``$arg`` values (also inside lists) with the block's argument values."""
        if not isinstance(item, dict):
            raise self.error(f"expected a mapping like {{op: conv, ...}}, got {item!r}", loc)

        def value(v: Any, at: Loc) -> Any:
            if isinstance(v, list):
                return [value(x, (*at, i)) for i, x in enumerate(v)]
            if isinstance(v, str) and v.startswith("$"):
                if v[1:] not in args:
                    where = f"block {stack[-1]!r} takes {sorted(args)}" if stack else "only block layers take arguments"
                    raise self.error(f"unknown argument {v}; {where}", at)
                return args[v[1:]]
            return v

        return {k: value(v, (*loc, k)) for k, v in item.items()}

    def expand_use(
        self, item: dict[str, Any], loc: Loc, scope: str, counters: dict[str, int], stack: tuple[str, ...]
    ) -> None:
        use = validate(UseEntry, item, self.doc, loc)
        block = self.spec.blocks.get(use.use)
        if block is None:
            known = _listed(sorted(self.spec.blocks)) or "none defined"
            raise self.error(f"unknown block {use.use!r}; known blocks: {known}", (*loc, "use"))
        if use.use in stack:
            raise self.error(f"block {use.use!r} uses itself ({' -> '.join((*stack, use.use))})", (*loc, "use"))
        if len(stack) == MAX_NESTING:
            chain = " -> ".join((*stack[:3], "...", *stack[-2:], use.use))
            raise self.error(f"blocks nested more than {MAX_NESTING} deep ({chain})", (*loc, "use"))
        missing = [a for a in block.args if a not in use.args]
        unknown = [a for a in use.args if a not in block.args]
        if missing:
            raise self.error(f"block {use.use!r} needs argument(s) {', '.join(missing)}", loc)
        if unknown:
            raise self.error(
                f"block {use.use!r} has no argument {unknown[0]!r}; it takes {_listed(block.args) or 'none'}",
                (*loc, unknown[0]),
            )
        if len(self.entries) + use.repeat * len(block.layers) > MAX_LAYERS:
            raise self.error(
                f"repeat {use.repeat:,} expands the network to more than {MAX_LAYERS:,} layers", (*loc, "repeat")
            )
        counters[use.use] = counters.get(use.use, 0) + 1
        prefix = use.name or (use.use if counters[use.use] == 1 else f"{use.use}{counters[use.use]}")
        for repeat in range(1, use.repeat + 1):
            instance = _qualify(scope, prefix if use.repeat == 1 else f"{prefix}.block{repeat}")
            if instance in self.scope_inputs or instance in self.names:
                raise self.error(f"the name {instance!r} is already taken by an earlier block or layer", loc)
            explicit = use.inputs is not None and repeat == 1
            self.scope_inputs[instance] = _Ref(use.inputs[0], scope) if explicit and use.inputs else self.previous
            start = len(self.entries)
            self.flatten(block.layers, ("blocks", use.use, "layers"), instance, use.args, (*stack, use.use))
            if explicit:  # the block's first layer reads the use's input, not the layer before the use
                first = self.entries[start]
                self.entries[start] = _Entry(first.name, first.raw, first.loc, first.scope, "")


def build_graph(spec: NetworkSpec, doc: Document) -> Graph:
    """Expand ``spec`` into layers with shapes and parameter counts; errors are :class:`InputError`."""
    flat = _Flattener(spec, doc)
    flat.flatten(spec.layers, ("layers",), "", {}, ())
    order = {entry.name: i for i, entry in enumerate(flat.entries)}
    shapes: dict[str, Shape] = {INPUT: tuple(spec.input)}  # type: ignore[dict-item]

    def resolve(ref: _Ref | str, index: int, loc: Loc) -> str:
        if isinstance(ref, str):
            return ref
        if ref.name == INPUT:
            return resolve(flat.scope_inputs.get(ref.scope, INPUT), index, loc)
        parts = ref.scope.split(".") if ref.scope else []
        candidates = [_qualify(".".join(parts[:n]), ref.name) for n in range(len(parts), -1, -1)]
        for candidate in candidates:
            if candidate in shapes:
                return candidate
        for candidate in candidates:
            if candidate in order and order[candidate] == index:
                raise flat.error(f"layer {candidate!r} cannot read its own output", loc)
            if candidate in order and order[candidate] > index:
                raise flat.error(f"layer {candidate!r} comes later; a layer can only read earlier ones", loc)
        raise flat.error(f"no layer named {ref.name!r} before this one", loc)

    layers = []
    for index, entry in enumerate(flat.entries):
        op = Op(entry.raw["op"])
        traits = TRAITS[op]
        spec_layer = validate(traits.layer, entry.raw, doc, entry.loc, context=entry.name)
        if spec_layer.inputs is not None:
            if not traits.many_inputs and len(spec_layer.inputs) != 1:
                raise flat.error(
                    f"{op.value} takes exactly one input, got {len(spec_layer.inputs)}", (*entry.loc, "inputs")
                )
            inputs = tuple(
                resolve(_Ref(name, entry.scope), index, (*entry.loc, "inputs")) for name in spec_layer.inputs
            )
        elif entry.previous:
            inputs = (entry.previous,)
        else:
            inputs = (resolve(flat.scope_inputs[entry.scope], index, entry.loc),)
        input_shapes = tuple(shapes[name] for name in inputs)
        attrs = spec_layer.attrs(input_shapes[0])
        try:
            output = traits.shape(attrs, input_shapes)
        except ShapeError as err:
            raise flat.error(f"{entry.name}: {err}", entry.loc) from None
        params, state = traits.params(attrs, input_shapes)
        shapes[entry.name] = output
        layers.append(Layer(entry.name, op, inputs, input_shapes, output, attrs, params, state, doc.where(entry.loc)))
    return Graph(spec.name, tuple(spec.input), tuple(layers))  # type: ignore[arg-type]


def load_network(name_or_path: str | Path, input_shape: tuple[int, ...] | None = None) -> Graph:
    """A network file (YAML, or ONNX by its ``.onnx`` suffix), or a bundled network by name (``hairnet``),
    expanded into its layer graph. ``input_shape`` fixes the dims an ONNX model's input leaves open."""
    path = bundled.resolve("networks", name_or_path)
    if is_onnx(path):
        from hwsim.spec.onnx_reader import read_onnx  # only ONNX models pay for the reader's imports

        return onnx_graph(read_onnx(path, input_shape))
    if input_shape is not None:
        raise InputError("--input-shape is for ONNX models; a network file states its input", str(path))
    spec, doc = load_network_document(path)
    return build_graph(spec, doc)


def _hwc(shape: Shape) -> str:
    return "x".join(map(str, shape))


def onnx_graph(network: OnnxNetwork) -> Graph:
    """The layer graph of an imported model, each layer checked against the model: its output shape against
    the model's shapes, its parameters and state against the elements of its initializers."""
    graph = build_graph(network.spec, network.document)
    for layer in graph.layers:
        source = network.layers[layer.name]
        where = f"{network.document.path}: node {source.node}"
        if source.shape is not None and source.shape != layer.output_shape:
            raise InputError(
                f"hwsim infers an output of {_hwc(layer.output_shape)} (HxWxC), the model's shapes say "
                f"{_hwc(source.shape)}",
                where,
            )
        if (layer.params, layer.state) != (source.params, source.state):
            raise InputError(
                f"hwsim counts {layer.params:,} parameters and {layer.state:,} of state, the model's initializers "
                f"hold {source.params:,} and {source.state:,}",
                where,
            )
    return graph


def bundled_network(name: str) -> Graph:
    """A bundled network by name, never a file of that name in the current folder."""
    spec, doc = load_network_document(bundled.path("networks", name))
    return build_graph(spec, doc)


def onnx_to_yaml(path: str | Path, input_shape: tuple[int, ...] | None = None) -> str:
    """The hwsim YAML of the ONNX model at ``path``: the document hwsim reads from the model, so estimating
    either gives the same numbers. Checked layer by layer against the model first (:func:`onnx_graph`)."""
    from hwsim.spec.onnx_reader import read_onnx

    network = read_onnx(path, input_shape)
    graph = onnx_graph(network)
    comment = (
        f"{graph.name}: written by `hwsim import {Path(path).name}`; {len(graph.layers)} layers, "
        f"{graph.params:,} parameters.\n"
        "Layer names are the ONNX node names without the leading '/' and with '.' written '_' (docs/onnx.md)."
    )
    return dump_network(network.document.data, comment)
