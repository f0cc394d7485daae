"""An ONNX model as an hwsim network document: the same document a YAML file gives, checked the same way.

:func:`read_onnx` reads the model without its weights (:mod:`hwsim.spec.onnx_file`), follows the data
from the network's input (a ``Shape`` and what is computed from it are not data; ``Constant`` nodes and
initializers are operands), translates every node on the way to the outputs (:mod:`hwsim.spec.onnx_ops`)
and lays the layers out as a network document, with repeated blocks where the names show them
(:mod:`hwsim.spec.onnx_blocks`). Shapes are the model's own where its value_info gives every tensor one,
else ONNX shape inference's. :mod:`hwsim.model.expand` expands that document as it expands YAML, then
checks each layer's shape and parameter count against what the model itself says.

Layer names are the ONNX node names with the leading ``/`` dropped and every ``.`` made ``_`` (hwsim's
``.`` separates a block from its layers): ``/layer1/layer1.0/conv1/Conv`` is ``layer1/layer1_0/conv1/Conv``.
A node without a name is called ``<OpType>_<index>``, its place among the graph's nodes.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hwsim.errors import InputError
from hwsim.ops import SOFTPLUS_THRESHOLD, Shape
from hwsim.spec.names import MAX_NAME_LENGTH
from hwsim.spec.network import NetworkSpec
from hwsim.spec.onnx_blocks import NETWORK_INPUT, FlatLayer, document_of
from hwsim.spec.onnx_file import LightModel, read_model, require_onnx
from hwsim.spec.onnx_ops import TRANSLATORS, ArraySource, Context, Dims, Node, Translation, Unsupported, float32
from hwsim.spec.onnx_patterns import channels_last, find_patterns
from hwsim.spec.validate import validate
from hwsim.spec.yamlio import Document, Loc

SHAPE_ONLY = frozenset({"Shape", "Size"})
"""Ops that read a tensor's shape, not its values: what follows them is arithmetic on shapes."""
MAX_NODES = 100_000
"""Far beyond any network hwsim expands (10,000 layers); stops a hostile graph before it is walked."""


@dataclass(frozen=True)
class OnnxDocument(Document):
    """A network document read from ONNX: errors name the node a layer came from instead of a line."""

    nodes: dict[Loc, str] = field(default_factory=dict)

    def where(self, loc: Loc) -> str:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.nodes:
                return f"{self.path}: node {self.nodes[loc[:end]]}"
        return self.path


class OnnxLayer(NamedTuple):
    """What the model says of the node a layer came from, to check hwsim's layer against."""

    node: str
    shape: Shape | None
    """Its output (H, W, C) by the model's own shapes; None where they leave a dim unknown."""
    params: int
    state: int
    """Elements of its initializers, by their dims: batch norm's running statistics are state."""
    arrays: tuple[ArraySource, ...]
    tensor: str = ""
    """The ONNX tensor that holds its output."""
    hwc: bool = False
    """A flatten of a map an exporter first transposed to NHWC: its features are in hwsim's (h, w, c) order."""


@dataclass(frozen=True)
class OnnxNetwork:
    spec: NetworkSpec
    document: OnnxDocument
    layers: dict[str, OnnxLayer]
    """By hwsim layer name."""
    nhwc: bool = False
    """The model reads NHWC images (a Keras export, transposed to NCHW after its input)."""


def read_onnx(path: Path | str, input_shape: tuple[int, ...] | None = None) -> OnnxNetwork:
    """The network document of the ONNX model at ``path``; ``input_shape`` gives dims the model leaves open."""
    path = Path(path)
    light = read_model(path)
    graph = light.model.graph
    if len(graph.node) > MAX_NODES:
        raise InputError(f"{len(graph.node):,} nodes, more than the {MAX_NODES:,} hwsim reads", str(path))
    input_name, dims = _fix_input(light, input_shape)
    outputs = _the_outputs(light)
    all_nodes = [Node.of(proto, index) for index, proto in enumerate(graph.node)]
    computed = _data_tensors(all_nodes, input_name)
    all_nodes = _without_constant_aliases(all_nodes, computed)
    nodes = _needed_nodes(all_nodes, light, computed, input_name, outputs)
    opset = _opset(light)
    for node in nodes:
        if node.standard and node.op_type in TRANSLATORS:
            _check_node(node, opset, str(path))
    constant = _constants(light)
    nodes = _decomposed_activations(nodes, constant, outputs)
    unknown = [n for n in nodes if not n.standard or n.op_type not in TRANSLATORS]
    read = {o for n in nodes for o in n.output} & computed
    arithmetic = {name for n in all_nodes if n.op_type != "Constant" for name in n.output} - computed
    operands = {name for n in nodes for name in n.input if name in arithmetic}  # a Pad's amounts, a Reshape's target
    shapes, folded = _model_shapes(light, computed, read, operands, not unknown, constant)
    ctx = Context(
        opset=opset,
        shapes=shapes,
        initializers=light.initializers,
        constant=lambda name: folded[name] if name in folded else constant(name),
        data=computed,
        used={name for node in all_nodes for name in node.input} | outputs,
        element_type=next(v for v in graph.input if v.name == input_name).type.tensor_type.elem_type,
    )
    patterns = find_patterns(nodes, ctx, outputs)
    around, ctx.refused_transposes = channels_last(nodes, ctx, patterns)
    absorbed = _fuse_biases(nodes, ctx, outputs) | _channel_shuffles(nodes, ctx, outputs) | patterns.absorbed
    kept = _split_outputs([n for n in nodes if n.position not in absorbed], ctx)
    to_nchw = _nchw_after_input(nodes, input_name, len(dims))
    reordered = _nhwc_before_flatten(nodes, outputs) | to_nchw | around
    flat, sources, problems = _translate(kept, ctx, input_name, reordered, patterns.translations)
    if problems:
        raise InputError(_unsupported_message(problems), str(path))
    producer = " ".join(p for p in (light.model.producer_name, light.model.producer_version) if p)
    description = f"imported from {path.name} (ONNX opset {ctx.opset}{', ' + producer if producer else ''})"
    if to_nchw:
        dims = tuple(dims[axis] for axis in NCHW)
        description += "; its NHWC input read as NCHW: the Transpose after it moves nothing in hwsim's layout"
    data, locs, renames = document_of(flat, path.stem, description, _hwc(dims))
    document = OnnxDocument(str(path), data, nodes={loc: sources[name].node for loc, name in locs.items()})
    spec = validate(NetworkSpec, data, document)
    layers = {renames[name]: layer for name, layer in sources.items()}
    return OnnxNetwork(spec, document, layers, nhwc=bool(to_nchw))


@functools.lru_cache(maxsize=512)
def _schema(op_type: str, opset: int) -> tuple[frozenset[str], frozenset[str], int, int]:
    """(attributes, required attributes, fewest and most inputs) of ``op_type`` at ``opset``."""
    from onnx import defs

    schema = defs.get_schema(op_type, opset)
    required = frozenset(name for name, attribute in schema.attributes.items() if attribute.required)
    return frozenset(schema.attributes), required, schema.min_input, schema.max_input


def _check_node(node: Node, opset: int, path: str) -> None:
    """What the ONNX checker would refuse in a node hwsim translates: an attribute its op does not have (a typo
    the translation would silently read as the default), a required one missing, too few or many inputs.
    Shapes are checked against hwsim's own inference layer by layer, types by strict shape inference where it
    runs, the graph (one definition per tensor, topological order) by the reader itself."""
    where = f"node {node.name or node.op_type}: {node.op_type} (opset {opset})"
    try:
        attributes, required, fewest, most = _schema(node.op_type, opset)
    except Exception:  # onnx's SchemaError: the op did not exist at this opset
        raise InputError(f"not a valid ONNX model: {where} does not exist at this opset", path) from None
    unknown = sorted(set(node.attrs) - attributes)
    if unknown:
        raise InputError(f"not a valid ONNX model: {where} has no attribute {unknown[0]!r}", path)
    missing = sorted(required - set(node.attrs))
    if missing:
        raise InputError(f"not a valid ONNX model: {where} needs its attribute {missing[0]!r}", path)
    if not fewest <= len(node.input) <= most:
        raise InputError(
            f"not a valid ONNX model: {where} takes {fewest} to {most} inputs, not {len(node.input)}", path
        )


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _opset(light: LightModel) -> int:
    """The model's version of the standard ops: one the installed onnx knows, whose schemas say what each op means
    (ONNX Runtime refuses a newer one too; onnx would read its ops as the latest it knows)."""
    from onnx import defs

    versions = [o.version for o in light.model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise InputError("imports no version of the standard ONNX ops (opset_import)", str(light.path))
    if versions[0] > defs.onnx_opset_version():
        raise InputError(
            f"opset {versions[0]:,} is newer than the {defs.onnx_opset_version()} this onnx knows, which cannot say "
            "what its ops mean; upgrade onnx (pip install -U onnx)",
            str(light.path),
        )
    return versions[0]


def _hwc(dims: tuple[int, ...]) -> Shape:
    """(N, C, H, W) -> (H, W, C); flat (N, F) -> (1, 1, F)."""
    if len(dims) == 4:
        return (dims[2], dims[3], dims[1])
    return (1, 1, dims[1])


def _hwc_or_none(dims: Dims | None) -> Shape | None:
    if dims is None or len(dims) not in (2, 4) or None in dims[1:]:
        return None
    return _hwc(dims)  # type: ignore[arg-type]


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``1x3x224x224`` or ``1,3,224,224``: the model input's dims in its own order (NCHW)."""
    parts = re.split(r"[x,]", text.strip().lower())
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"not a shape like 1x3x224x224: {text!r}", "--input-shape") from None
    if any(d <= 0 for d in dims) or len(dims) > 8:
        raise InputError(f"dims must be positive, at most 8 of them: {text!r}", "--input-shape")
    return dims


def _fix_input(light: LightModel, given: tuple[int, ...] | None) -> tuple[str, tuple[int, ...]]:
    """The one data input and its dims, every one a number (the batch, open or not, is set to 1)."""
    graph = light.model.graph
    path = str(light.path)
    inputs = [value for value in graph.input if value.name not in light.initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(v.name) for v in inputs) or "none"
        raise InputError(f"{len(inputs)} data inputs ({names}); hwsim networks read one image", path)
    value = inputs[0]
    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not tensor.HasField("shape"):
        raise InputError(f"input {value.name!r} has no shape: give it with --input-shape, e.g. 1x3x224x224", path)
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim]
    written = [d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?") for d in tensor.shape.dim]
    if len(dims) not in (2, 4):
        raise InputError(
            f"input {value.name!r} is {len(dims)}-D [{', '.join(written)}]; hwsim reads NCHW images or (N, features)",
            path,
        )
    if given is not None:
        if len(given) != len(dims):
            raise InputError(
                f"--input-shape has {len(given)} dims, input {value.name!r} has {len(dims)} [{', '.join(written)}]",
                path,
            )
        for index, (model_dim, given_dim) in enumerate(zip(dims, given)):
            if index and model_dim is not None and model_dim != given_dim:
                raise InputError(
                    f"--input-shape gives {given_dim} for dim {index} of input {value.name!r}, "
                    f"the model fixes it at {model_dim}",
                    path,
                )
        dims = [dims[0], *given[1:]]
    if None in dims[1:]:
        typical = ["1", "3", "224", "224"] if len(written) == 4 else ["1", "512"]
        example = "x".join(w if w.isdigit() else default for w, default in zip(written, typical))
        raise InputError(
            f"input {value.name!r} has dynamic dims [{', '.join(written)}]: give them with --input-shape, "
            f"e.g. --input-shape {example}",
            path,
        )
    fixed = (dims[0] or 1, *dims[1:])
    for dim, size in zip(tensor.shape.dim, fixed):
        dim.Clear()
        dim.dim_value = size
    return value.name, fixed  # type: ignore[return-value]


def _the_outputs(light: LightModel) -> frozenset[str]:
    """The model's outputs: a detector's heads are several, each the last layer of its branch."""
    outputs = frozenset(value.name for value in light.model.graph.output)
    if not outputs:
        raise InputError("no outputs (truncated?)", str(light.path))
    return outputs


def _data_tensors(nodes: list[Node], input_name: str) -> set[str]:
    """Tensors computed from the input's values (not only from its shape)."""
    data = {input_name}
    for node in nodes:
        if not data.isdisjoint(node.input) and node.op_type not in SHAPE_ONLY:
            data.update(node.output)
    data.discard("")  # an optional output left out
    return data


def _without_constant_aliases(nodes: list[Node], data: set[str]) -> list[Node]:
    """The nodes reading an initializer or a Constant itself where they read an ``Identity`` of it.

    PyTorch's TorchScript exporter keeps one copy of equal initializers (the zero biases of convolutions its
    batch norms were folded into) and hands it to each reader through an Identity; the readers then read the
    original, so that its dims count as their parameters and its data is read as their weights."""
    alias: dict[str, str] = {}
    for node in nodes:
        if node.op_type == "Identity" and node.standard and node.input and node.input[0] not in data:
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])
    if not alias:
        return nodes
    return [node._replace(input=tuple(alias.get(name, name) for name in node.input)) for node in nodes]


def _needed_nodes(
    nodes: list[Node], light: LightModel, data: set[str], input_name: str, outputs: frozenset[str]
) -> list[Node]:
    """The data nodes the outputs depend on, in the graph's order (a topological one, which is checked)."""
    path = str(light.path)
    constant = sorted(outputs - data)
    if constant:
        raise InputError(f"output {constant[0]!r} does not depend on the input", path)
    known = {input_name} | set(light.initializers) | {value.name for value in light.model.graph.input}
    known.add("")  # an optional input left out
    producer: dict[str, Node] = {}
    for node in nodes:
        if not known.issuperset(node.input):
            name = next(name for name in node.input if name not in known)
            raise InputError(
                f"node {node.name or node.op_type!r} reads {name!r}, which no earlier node produces "
                "(the graph is not in topological order, or is truncated)",
                path,
            )
        for name in node.output:
            if not name:
                continue  # an optional output left out
            if name in known:
                raise InputError(f"not a valid ONNX model: tensor {name!r} is defined twice (not in SSA form)", path)
            producer[name] = node
            known.add(name)
    unproduced = sorted(outputs - producer.keys())
    if unproduced:
        raise InputError(f"output {unproduced[0]!r} is not produced by any node", path)
    needed: set[int] = set()
    stack = sorted(outputs)
    while stack:
        found = producer.get(stack.pop())
        if found is None or found.position in needed or data.isdisjoint(found.output):
            continue
        needed.add(found.position)
        stack.extend(name for name in found.input if name in data)
    return [node for node in nodes if node.position in needed]


def _shapes_in(values: Any, wanted: set[str], shapes: dict[str, Dims]) -> None:
    """Add the shapes ``values`` (ValueInfoProtos) give for the tensors in ``wanted``."""
    for value in values:
        if value.name in wanted:
            dims = value.type.tensor_type.shape.dim  # empty where the shape is unknown
            if dims:
                shapes[value.name] = tuple([d.dim_value or None for d in dims])  # 0: no value


def _known(dims: Dims | None) -> bool:
    return dims is not None and None not in dims[1:]


SHAPE_ARITHMETIC = frozenset(
    {
        *("Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Reshape", "Cast", "Identity"),
        *("Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Floor", "Ceil", "Round", "Sign", "Max", "Min", "Clip"),
        *("ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin", "Transpose", "Tile", "Split"),
        *("Range", "ConstantOfShape", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"),
        *("Not", "And", "Or", "Where", "Expand"),
    }
)
"""Ops an exporter writes on shapes (``x.size(1) // 2`` is Shape, Gather, Div; timm's TensorFlow-style padding
is Ceil, Clip for max(..., 0), then Transpose and a reversing Slice to turn F.pad's order into ONNX's): evaluated
when their operands are known, so that what reads their result (a Slice's ends, a Pad's amounts, a Reshape's
shape, a Resize's sizes) has values."""
MAX_FOLDED_ELEMENTS = 4096
"""Far more than any shape arithmetic gives; stops a ConstantOfShape from filling memory."""
MAX_FOLD_ROUNDS = 100
"""Each round of shape inference gives the shapes the next round's Shape nodes read: about a stage a round."""


def _model_shapes(
    light: LightModel, data: set[str], read: set[str], operands: set[str], strict: bool, constant: Any
) -> tuple[dict[str, Dims], dict[str, np.ndarray]]:
    """The shapes of the data tensors: the model's own where it gives every tensor in ``read`` one (as the
    dynamo exporter and onnxsim write them), else ONNX shape inference's (constant values propagated); and
    the values of the shape arithmetic (:data:`SHAPE_ARITHMETIC`), found by inferring again with what it
    gives until every shape and every computed operand the layers read (``operands``: a Pad's amounts, a
    Reshape's target) is known, or nothing more can be evaluated."""
    graph = light.model.graph
    shapes: dict[str, Dims] = {}
    for values in (graph.input, graph.value_info, graph.output):
        _shapes_in(values, data, shapes)
    own = all(_known(shapes.get(name)) for name in read)
    if own and not operands:
        return shapes, {}
    onnx = require_onnx(light.path)
    opset = _opset(light)
    model = light.model
    folded: dict[str, np.ndarray] = {}
    for _ in range(MAX_FOLD_ROUNDS):
        if not own:
            shapes = _inferred_shapes(onnx, model, data, strict, light.path)
        if all(_known(shapes.get(name)) for name in read) and operands.issubset(folded):
            break
        more = _fold_shape_arithmetic(model.graph.node, data, shapes, folded, constant, opset)
        if not more:
            break
        folded.update(more)
        if not own:
            model = _with_constants(onnx, light.model, folded)
    return shapes, folded


def _inferred_shapes(onnx: Any, model: Any, data: set[str], strict: bool, path: Path) -> dict[str, Dims]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=strict, strict_mode=strict, data_prop=True)
    except Exception as err:  # InferenceError, and whatever a malformed model provokes
        raise InputError(f"ONNX shape inference fails: {_first_line(err)}", str(path)) from None
    shapes: dict[str, Dims] = {}
    for values in (inferred.graph.input, inferred.graph.value_info, inferred.graph.output):
        _shapes_in(values, data, shapes)
    return shapes


def _fold_shape_arithmetic(
    nodes: Any, data: set[str], shapes: dict[str, Dims], folded: dict[str, np.ndarray], constant: Any, opset: int
) -> dict[str, np.ndarray]:
    """The values of the shape-arithmetic nodes whose operands are now known (shapes of data tensors included)."""
    from onnx.reference import ReferenceEvaluator

    found: dict[str, np.ndarray] = {}

    def value(name: str) -> np.ndarray | None:
        if name in found:
            return found[name]
        if name in folded:
            return folded[name]
        return constant(name) if name not in data else None

    for node in nodes:
        if node.op_type not in SHAPE_ARITHMETIC or node.domain not in ("", "ai.onnx"):
            continue
        if not data.isdisjoint(node.output) or all(name in folded for name in node.output if name):
            continue
        if node.op_type in SHAPE_ONLY:  # of a map, or of a value this arithmetic found (timm's pads)
            known = value(node.input[0])
            dims = shapes.get(node.input[0]) if known is None else known.shape
            if dims and dims[0] is None:  # a map's open batch in the model's own shapes: the input's, fixed at 1
                dims = (1, *dims[1:])
            if dims is None or None in dims:
                continue
            attrs = {a.name: a.i for a in node.attribute}
            found[node.output[0]] = (
                np.array(dims[attrs.get("start", 0) : attrs.get("end", len(dims))], np.int64)
                if node.op_type == "Shape"
                else np.array(math.prod(dims), np.int64)
            )
            continue
        operands = {name: value(name) for name in node.input if name}
        if any(v is None for v in operands.values()):
            continue
        try:
            results = ReferenceEvaluator(_one_node_model(node, opset)).run(None, operands)
        except Exception:  # operands this op does not take: left to shape inference to report
            continue
        if any(np.size(r) > MAX_FOLDED_ELEMENTS for r in results):
            continue
        found.update((name, np.asarray(r)) for name, r in zip(node.output, results) if name)
    return found


def _one_node_model(node: Any, opset: int) -> Any:
    """``node`` alone as a model of ``opset``: ONNX's reference evaluator runs a bare node at the newest opset,
    which reads an older node's attributes wrongly (Unsqueeze's ``axes`` before opset 13, Slice's before 10)."""
    from onnx import ValueInfoProto, helper

    graph = helper.make_graph(
        [node],
        "fold",
        [ValueInfoProto(name=name) for name in node.input if name],
        [ValueInfoProto(name=name) for name in node.output if name],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _with_constants(onnx: Any, model: Any, folded: dict[str, np.ndarray]) -> Any:
    """``model`` with the nodes whose outputs are all in ``folded`` replaced by initializers of those values."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    kept = [node for node in graph.node if not all(name in folded for name in node.output if name)]
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(onnx.numpy_helper.from_array(v, name) for name, v in folded.items())
    return copy


def _constants(light: LightModel) -> Any:
    """A lookup of constant values: small initializers and Constant nodes' outputs (large ones are weights);
    the context adds the values of the shape arithmetic (:func:`_model_shapes`)."""
    onnx = require_onnx(light.path)
    protos = {t.name: t for t in light.model.graph.initializer}
    nodes = {node.output[0]: node for node in light.model.graph.node if node.op_type == "Constant" and node.output}
    cache: dict[str, np.ndarray | None] = {}

    def constant(name: str) -> np.ndarray | None:
        if name not in cache:
            value = None
            if name in protos:
                value = onnx.numpy_helper.to_array(protos[name])
            elif name in nodes:
                attribute = next((a for a in nodes[name].attribute if a.name == "value"), None)
                if attribute is not None:
                    value = onnx.numpy_helper.to_array(attribute.t)
            cache[name] = value
        return cache[name]

    return constant


def _decomposed_activations(nodes: list[Node], constant: Any, outputs: frozenset[str]) -> list[Node]:
    """Activations an exporter wrote in pieces, as the one node ONNX has for them (from opset 18 for Mish):

    - ``Where(Greater(x, 20), x, Softplus(x))``: PyTorch's softplus with its threshold (the dynamo exporter), hwsim's
      softplus, whose threshold is the same;
    - ``Mul(x, Tanh(Softplus(x)))``: Mish before opset 18 (the TorchScript exporter, and hwsim's own export).

    The last node of each becomes the activation, reading x; the pieces before it, read by nothing else, go."""
    if not any(node.op_type in ("Where", "Mul") for node in nodes):
        return nodes
    producer = {name: node for node in nodes for name in node.output}
    readers: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1

    def piece(tensor: str, op_type: str) -> Node | None:
        """The node of ``op_type`` making ``tensor``, when only one node reads it and it is no output."""
        node = producer.get(tensor)
        if node is None or node.op_type != op_type or not node.standard or readers[tensor] != 1 or tensor in outputs:
            return None
        return node

    def threshold(tensor: str) -> float | None:
        value = constant(tensor)
        return float(value) if value is not None and value.size == 1 else None

    replaced: dict[int, Node] = {}
    gone: set[int] = set()
    for node in nodes:
        if not node.standard:
            continue
        if node.op_type == "Where" and len(node.input) == 3:
            greater, softplus = piece(node.input[0], "Greater"), piece(node.input[2], "Softplus")
            x = node.input[1]
            if (
                greater is not None
                and softplus is not None
                and greater.input[0] == x == softplus.input[0]
                and threshold(greater.input[1]) == float32(SOFTPLUS_THRESHOLD)
            ):
                replaced[node.position] = node._replace(op_type="Softplus", input=(x,), attrs={})
                gone |= {greater.position, softplus.position}
        elif node.op_type == "Mul" and len(node.input) == 2:
            for x, t in (node.input, node.input[::-1]):
                tanh = piece(t, "Tanh")
                softplus = piece(tanh.input[0], "Softplus") if tanh is not None else None
                if softplus is not None and tanh is not None and softplus.input[0] == x:
                    replaced[node.position] = node._replace(op_type="Mish", input=(x,), attrs={})
                    gone |= {tanh.position, softplus.position}
                    break
    if not replaced:
        return nodes
    return [replaced.get(node.position, node) for node in nodes if node.position not in gone]


def _fuse_biases(nodes: list[Node], ctx: Context, outputs: frozenset[str]) -> set[int]:
    """MatMul then Add of a constant vector: one dense layer with a bias. Returns the absorbed Adds' indices."""
    readers: dict[str, list[Node]] = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    absorbed = set()
    for node in nodes:
        if node.op_type != "MatMul" or node.output[0] in outputs or node.input[1] not in ctx.initializers:
            continue
        after = readers.get(node.output[0], [])
        if len(after) != 1 or after[0].op_type != "Add":
            continue
        add = after[0]
        bias = next((name for name in add.input if name != node.output[0]), "")
        units = ctx.initializers[node.input[1]].dims[-1]
        if bias in ctx.initializers and ctx.initializers[bias].size == units and len(add.input) == 2:
            ctx.fused_bias[node.output[0]] = (bias, add.output[0])
            absorbed.add(add.position)
    return absorbed


SWAP_GROUPS = [0, 2, 1, 3, 4]


def _channel_shuffles(nodes: list[Node], ctx: Context, outputs: frozenset[str]) -> set[int]:
    """Reshape (N, C, H, W) to (N, g, C/g, H, W), Transpose its two group axes, Reshape back: one channel
    shuffle (ShuffleNet's), recorded for the last Reshape. Returns the first Reshape's and the Transpose's indices."""
    readers: dict[str, list[Node]] = {}
    producer: dict[str, Node] = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
        producer.update((name, node) for name in node.output)
    absorbed = set()
    for swap in nodes:
        if swap.op_type != "Transpose" or swap.attrs.get("perm") != SWAP_GROUPS or not outputs.isdisjoint(swap.output):
            continue
        first, after = producer.get(swap.input[0]), readers.get(swap.output[0], [])
        if first is None or first.op_type != "Reshape" or len(readers[first.output[0]]) != 1 or len(after) != 1:
            continue
        last = after[0]
        x = first.input[0]
        dims, grouped, back = (ctx.shapes.get(t) for t in (x, first.output[0], last.output[0]))
        if last.op_type != "Reshape" or dims is None or grouped is None or back is None or len(dims) != 4:
            continue
        _, c, h, w = dims
        shuffled = back[1:] == dims[1:] and len(grouped) == 5 and grouped[3:] == (h, w) and c is not None
        if shuffled and grouped[1] * grouped[2] == c:  # type: ignore[operator]
            ctx.shuffles[last.output[0]] = (x, grouped[1])  # type: ignore[assignment]
            absorbed |= {first.position, swap.position}
    return absorbed


def _split_outputs(nodes: list[Node], ctx: Context) -> list[Node]:
    """Each Split along channels as one node per output read, its range of channels an attribute: each is a
    layer (``x.chunk(2, dim=1)`` is two slices). A Split whose outputs' channels are unknown stays whole."""
    result = []
    for node in nodes:
        dims = ctx.shapes.get(node.input[0]) if node.op_type == "Split" and node.standard else None
        outputs = [ctx.shapes.get(name) or () for name in node.output]
        sizes = [shape[1] if len(shape) == 4 else None for shape in outputs]
        if dims is None or len(dims) != 4 or int(node.attrs.get("axis", 0)) % 4 != 1 or None in sizes:
            result.append(node)
            continue
        start = 0
        for index, (name, size) in enumerate(zip(node.output, sizes)):
            if name in ctx.used:
                piece = node.name and f"{node.name}_{index}"
                channels = (start, start + size)  # type: ignore[operator]
                result.append(
                    node._replace(name=piece, input=node.input[:1], output=(name,), attrs={"channels": channels})
                )
            start += size  # type: ignore[operator]
    return result


FLATTENING = frozenset({"Flatten", "Reshape"})
NHWC = [0, 2, 3, 1]
NCHW = [0, 3, 1, 2]


def _nhwc_before_flatten(nodes: list[Node], outputs: frozenset[str]) -> set[int]:
    """Transposes NCHW -> NHWC read only by flattens (hwsim's flatten in (h, w, c) order, as hwsim exports it),
    or giving the network's output (a Keras model's NHWC output): in hwsim's NHWC layout they move nothing."""
    readers: dict[str, list[Node]] = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return {
        node.position
        for node in nodes
        if node.op_type == "Transpose"
        and node.attrs.get("perm") == NHWC
        and (
            node.output[0] in outputs
            or (readers.get(node.output[0]) and all(r.op_type in FLATTENING for r in readers[node.output[0]]))
        )
    }


def _nchw_after_input(nodes: list[Node], input_name: str, rank: int) -> set[int]:
    """The Transposes NHWC -> NCHW of an NHWC input, when they are all that reads it (tf2onnx and keras2onnx
    export a Keras model so): the network reads NCHW from there on, and hwsim's maps are NHWC already."""
    readers = [node for node in nodes if input_name in node.input]
    if rank != 4 or not readers or any(n.op_type != "Transpose" or n.attrs.get("perm") != NCHW for n in readers):
        return set()
    return {node.position for node in readers}


def layer_name(node_name: str, op_type: str, index: int, taken: set[str]) -> str:
    """hwsim's name for a node (module docstring), within hwsim's rule for names (:mod:`hwsim.spec.names`):
    characters that cannot be printed become ``_``, a name too long is cut; made unique with ``_2``, ``_3``."""
    name = (re.sub("/+", "/", node_name) if "//" in node_name else node_name).strip("/").replace(".", "_")
    if not name.isprintable():
        name = "".join(c if c.isprintable() else "_" for c in name)
    if name.startswith("$"):  # a leading $ would read as a block argument
        name = "_" + name[1:]
    if not name.strip():
        name = f"{op_type}_{index}"
    if name == NETWORK_INPUT:
        name += "_"
    name = name[: MAX_NAME_LENGTH - 10]  # room for the suffix that makes it unique
    unique, count = name, 2
    while unique in taken:
        unique, count = f"{name}_{count}", count + 1
    return unique


def _translate(
    nodes: list[Node], ctx: Context, input_name: str, nhwc: set[int], patterns: dict[str, Translation]
) -> tuple[list[FlatLayer], dict[str, OnnxLayer], list[tuple[str, str, str]]]:
    """Flat layers in order, what the model says of each, and the (op type, node, reason) of every node refused.

    The transposes in ``nhwc`` are no layers (they only reorder in hwsim's layout): a flatten after one, or of a
    channels-last map, reads its input in hwsim's order. A node that ends a pattern (``patterns``, by its output)
    is the pattern's layer."""
    producer: dict[str, str] = {input_name: NETWORK_INPUT}
    transposed: set[str] = set()
    flat: list[FlatLayer] = []
    sources: dict[str, OnnxLayer] = {}
    problems: list[tuple[str, str, str]] = []
    taken: set[str] = set()
    for node in nodes:
        if node.position in nhwc:
            if node.input[0] in producer:
                producer[node.output[0]] = producer[node.input[0]]
                if node.attrs.get("perm") == NHWC:
                    transposed.add(node.output[0])
            continue
        shown = node.name or f"{node.op_type}_{node.position}"
        translator = TRANSLATORS.get(node.op_type) if node.standard else None
        found = patterns.get(node.output[0]) if node.output else None
        if translator is None and found is None:
            problems.append((node.label, shown, _why_not(node, ctx)))
            continue
        try:
            translation = found or translator(node, ctx)  # type: ignore[misc]
        except Unsupported as err:
            problems.append((node.label, shown, str(err)))
            continue
        try:
            inputs = tuple(producer[t] for t in translation.inputs)
        except KeyError:
            continue  # it reads a node that was refused: that one is reported
        output = translation.output or node.output[0]
        if translation.passes_on:
            producer[output] = inputs[0]
            continue
        shape = _hwc_or_none(ctx.shapes.get(output))
        if translation.before is not None:  # a layer the inputs go through first, of the node's output shape
            suffix, entry = translation.before
            first = layer_name(
                f"{node.name}_{suffix}" if node.name else "", f"{node.op_type}_{suffix}", node.position, taken
            )
            taken.add(first)
            flat.append(FlatLayer(first, entry, inputs))
            sources[first] = OnnxLayer(shown, shape, 0, 0, ())
            inputs = (first,)
        name = layer_name(node.name, node.op_type, node.position, taken)
        taken.add(name)
        producer[output] = name
        flat.append(FlatLayer(name, translation.entry, inputs))
        params = state = 0
        for array in translation.arrays:
            size = ctx.initializers[array.initializer].size
            state, params = (state + size, params) if array.state else (state, params + size)
        hwc = translation.entry["op"] == "flatten" and (
            translation.inputs[0] in transposed or translation.inputs[0] in ctx.channels_last
        )
        sources[name] = OnnxLayer(shown, shape, params, state, translation.arrays, output, hwc)
    return flat, sources, problems


def _why_not(node: Node, ctx: Context) -> str:
    """Why a node of an op hwsim has no translator for is refused, where there is more to say than its op type."""
    if node.op_type == "Transpose" and node.standard:
        return ctx.refused_transposes.get(
            node.position, f"perm {node.attrs.get('perm')}, not to channels-last and back around ops hwsim reads so"
        )
    return ""


def _unsupported_message(problems: list[tuple[str, str, str]]) -> str:
    """``3 unsupported node types: LSTM (2, first: /rnn/LSTM), Conv (1, first: /c/Conv: dilations [2, 2] ...)``."""
    by_type: dict[str, list[tuple[str, str]]] = {}
    for label, node, reason in problems:
        by_type.setdefault(label, []).append((node, reason))
    parts = []
    for label, found in by_type.items():
        node, reason = found[0]
        parts.append(f"{label} ({len(found)}, first: {node}{': ' + reason if reason else ''})")
    kinds = len(by_type)
    return f"{kinds} unsupported node type{'s' if kinds > 1 else ''}: " + ", ".join(parts)
