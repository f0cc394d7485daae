"""ONNX nodes as hwsim layer entries: one translator per ONNX op type, each converting the conventions exactly.

ONNX is NCHW and hwsim NHWC; a translator reads NCHW shapes and writes the entry hwsim's YAML would
(``{op: conv, filters: 64, kernel: 3, stride: 2, padding: 1}``). Pads become hwsim's per-side padding
(ONNX lists begins then ends: top, left, bottom, right); a flatten stays a flatten (ONNX flattens (c, h, w),
hwsim (h, w, c): the same counts, and :mod:`hwsim.interchange.weights` permutes the next dense layer's rows
when it adopts the model's weights). A translator raises :class:`Unsupported` with the reason when a node
uses its op in a way hwsim cannot express; the reader lists every such node in one error.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from hwsim.ops import SELU, resolve_padding
from hwsim.ops.convtranspose import check_output_padding
from hwsim.spec.onnx_file import Initializer

if TYPE_CHECKING:
    import onnx

Dims = tuple[int | None, ...]
"""An ONNX tensor's shape as inferred: None where a dim has no value."""


class Node(NamedTuple):
    """One ONNX node as plain values (protobuf's fields are slow to read again and again)."""

    name: str
    op_type: str
    domain: str
    input: tuple[str, ...]
    output: tuple[str, ...]
    attrs: dict[str, Any]
    position: int
    """Its place among the graph's nodes."""

    @classmethod
    def of(cls, proto: onnx.NodeProto, position: int) -> Node:
        attrs = {a.name: _attribute_value(a) for a in proto.attribute}
        return cls(proto.name, proto.op_type, proto.domain, tuple(proto.input), tuple(proto.output), attrs, position)

    @property
    def standard(self) -> bool:
        """In the default (``ai.onnx``) domain."""
        return self.domain in ("", "ai.onnx")

    @property
    def label(self) -> str:
        """Its op type, with its domain when that is not the default one."""
        return self.op_type if self.standard else f"{self.domain}.{self.op_type}"


_ATTRIBUTE_FIELDS = {1: "f", 2: "i", 3: "s", 4: "t", 6: "floats", 7: "ints", 8: "strings"}
"""AttributeProto.type -> the field holding its value (onnx.helper.get_attribute_value, faster)."""


def _attribute_value(attribute: onnx.AttributeProto) -> Any:
    kind = attribute.type
    name = _ATTRIBUTE_FIELDS.get(kind)
    if name is None:
        from onnx import helper

        return helper.get_attribute_value(attribute)
    return list(getattr(attribute, name)) if kind >= 6 else getattr(attribute, name)


class Unsupported(Exception):
    """This node cannot become an hwsim layer; the message says why (empty: the op type is unknown to hwsim)."""


class ArraySource(NamedTuple):
    """One array of a layer in the reference's layout, and the initializer it comes from.

    ``layout`` names the initializer's own layout: ``oihw`` (a Conv weight), ``io`` or ``oi`` (a Gemm or
    MatMul weight, ``oi`` when transposed), ``io1x1`` (a MatMul weight over a channels-last map: a 1x1 conv's)
    or ``vector`` (biases, batch norm's four per-channel arrays).
    """

    key: str
    initializer: str
    layout: str
    state: bool = False
    """Batch norm's running statistics: state, not parameters."""
    factor: float = 1.0
    """What the node multiplies the array by before using it (Gemm's ``alpha`` and ``beta``)."""


class Translation(NamedTuple):
    """The entry (op and attributes, without name and inputs), the data tensors it reads, its arrays."""

    entry: dict[str, Any]
    inputs: tuple[str, ...]
    arrays: tuple[ArraySource, ...] = ()
    output: str | None = None
    """The tensor the layer's output stands for when it is not the node's first output (MatMul + Add)."""
    passes_on: bool = False
    """No layer: the node hands its input on unchanged in hwsim's layout (a 1x1 map made flat, or back; a
    Concat or Sum of one map)."""
    before: tuple[str, dict[str, Any]] | None = None
    """(name suffix, entry) of a layer the inputs go through first, its output read by this one (Mean of several
    maps: their sum, then a scale by 1 / k)."""


@dataclass
class Context:
    """What a translator may ask about the model beyond its node."""

    opset: int
    shapes: dict[str, Dims]
    initializers: dict[str, Initializer]
    constant: Callable[[str], np.ndarray | None]
    """The value of a tensor that does not depend on the input (an initializer, a Constant), else None."""
    data: set[str]
    """Tensors computed from the network's input."""
    used: set[str]
    """Tensors some node or the graph output reads."""
    element_type: int = 1
    """The network input's element type (``TensorProto.DataType``; 1 is float32): the type of every map."""
    fused_bias: dict[str, tuple[str, str]] = field(default_factory=dict)
    """MatMul output -> (bias initializer, the Add's output) for a MatMul whose only reader adds a constant."""
    shuffles: dict[str, tuple[str, int]] = field(default_factory=dict)
    """The last Reshape's output of a channel shuffle -> (the map shuffled, its groups)."""
    channels_last: set[str] = field(default_factory=set)
    """Maps a Transpose made channels-last (NHWC, hwsim's own layout), their shapes given as NCHW like every map's."""
    refused_transposes: dict[int, str] = field(default_factory=dict)
    """A Transpose to NHWC that cannot be absorbed (by its position) -> why."""

    def shape(self, tensor: str) -> Dims:
        dims = self.shapes.get(tensor)
        if dims is None:
            raise Unsupported(f"the shape of {tensor!r} is unknown")
        return dims

    def rank(self, tensor: str) -> int:
        return len(self.shape(tensor))

    def weight(self, tensor: str, what: str) -> Initializer:
        found = self.initializers.get(tensor)
        if found is None:
            raise Unsupported(f"its {what} is computed, not an initializer")
        return found


# ---- attribute helpers ------------------------------------------------------------------------------


def text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


_FLOAT32 = struct.Struct("<f")


def float32(value: float) -> float:
    """``value`` rounded to the float32 the model stores."""
    return float(_FLOAT32.unpack(_FLOAT32.pack(value))[0])


def real(value: float) -> float:
    """A float the model stored as float32, written back as the shortest decimal that is that float32."""
    return float(str(np.float32(value)))


def same_real(value: float, default: float) -> bool:
    return float32(value) == float32(default)


def one_or_pair(values: tuple[int, int]) -> int | list[int]:
    return values[0] if values[0] == values[1] else list(values)


def optional_input(node: Node, index: int) -> str:
    return node.input[index] if len(node.input) > index else ""


def data_inputs(node: Node, ctx: Context) -> tuple[str, ...]:
    return tuple(name for name in node.input if name in ctx.data)


def the_data_input(node: Node, ctx: Context) -> str:
    """The node's first input, which must be the one data tensor it reads."""
    first = node.input[0]
    if first not in ctx.data or not ctx.data.isdisjoint(node.input[1:]):
        raise Unsupported("reads a computed tensor where hwsim expects a weight or a constant")
    return first


def constant_value(node: Node, index: int, ctx: Context, what: str) -> np.ndarray | None:
    """The constant at input ``index`` (None when the input is absent); a computed one is unsupported."""
    name = optional_input(node, index)
    if not name:
        return None
    value = ctx.constant(name)
    if value is None:
        raise Unsupported(f"its {what} is computed, not a constant")
    return value


def unused_extra_outputs(node: Node, ctx: Context, what: str) -> None:
    if any(name and name in ctx.used for name in node.output[1:]):
        raise Unsupported(f"its {what} output is used")


def map4(node: Node, ctx: Context) -> tuple[int, int, int]:
    """(C, H, W) of a 4-D NCHW input; anything else is unsupported."""
    dims = ctx.shape(node.input[0])
    if len(dims) != 4:
        raise Unsupported(f"on {len(dims)}-D tensors (hwsim's maps are 4-D NCHW in ONNX)")
    _, c, h, w = dims
    if c is None or h is None or w is None:
        raise Unsupported("its input's shape is unknown")
    return c, h, w


# ---- windows: kernel, stride, pads ----------------------------------------------------------------------


def window_pads(
    attrs: dict[str, Any],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    hw: tuple[int, int],
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from ``pads`` (begins then ends) or ``auto_pad``."""
    auto = text(attrs.get("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        sides = []
        for k, s, d, n in zip(kernel, stride, dilation, hw):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small, large = total // 2, total - total // 2
            sides.append((small, large) if auto == "SAME_UPPER" else (large, small))
        (top, bottom), (left, right) = sides
        return top, bottom, left, right
    if auto == "VALID":
        return 0, 0, 0, 0
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        raise Unsupported(f"pads {pads} are not 2-D")
    if min(pads) < 0:
        raise Unsupported(f"negative pads {pads}")
    top, left, bottom, right = pads
    return top, bottom, left, right


def padding_value(
    pads: tuple[int, int, int, int], extent: tuple[int, int], stride: tuple[int, int], hw: tuple[int, int]
) -> int | str | list[int]:
    """hwsim's spelling: an int when every side is equal, ``same`` for TensorFlow's rule (over the rows and
    columns a window spans, ``extent``), else the four sides."""
    if len(set(pads)) == 1:
        return pads[0]
    same = resolve_padding("same", extent, stride, hw)
    if (same.top, same.bottom, same.left, same.right) == pads:
        return "same"
    return list(pads)


def _pair(attrs: dict[str, Any], name: str, default: tuple[int, int]) -> tuple[int, int]:
    values = tuple(attrs.get(name, default))
    if len(values) != 2:
        raise Unsupported(f"{name} {list(values)} are not 2-D")
    return int(values[0]), int(values[1])


# ---- translators ----------------------------------------------------------------------------------------


def conv(node: Node, ctx: Context) -> Translation:
    x = the_data_input(node, ctx)
    c, h, w = map4(node, ctx)
    weight = ctx.weight(node.input[1], "weight")
    if len(weight.dims) != 4:
        raise Unsupported(f"a {len(weight.dims) - 2}-D convolution")
    out_channels = weight.dims[0]
    attrs = node.attrs
    groups = int(attrs.get("group", 1))
    kernel = _pair(attrs, "kernel_shape", (weight.dims[2], weight.dims[3]))
    stride = _pair(attrs, "strides", (1, 1))
    dilation = _pair(attrs, "dilations", (1, 1))
    pads = window_pads(attrs, kernel, stride, dilation, (h, w))
    bias = optional_input(node, 2)
    depthwise = groups == c and groups > 1 and out_channels % c == 0
    op = "dwconv" if depthwise else "conv"
    entry: dict[str, Any] = {"op": op}
    if not depthwise:
        entry["filters"] = out_channels
    entry["kernel"] = one_or_pair(kernel)
    if stride != (1, 1):
        entry["stride"] = one_or_pair(stride)
    extent = ((kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1)
    entry["padding"] = padding_value(pads, extent, stride, (h, w))
    if depthwise and out_channels != c:
        entry["multiplier"] = out_channels // c
    if not depthwise and groups != 1:
        entry["groups"] = groups
    if dilation != (1, 1):
        entry["dilation"] = one_or_pair(dilation)
    if not bias:
        entry["bias"] = False
    arrays = [ArraySource("weight", node.input[1], "oihw")]
    if bias:
        ctx.weight(bias, "bias")
        arrays.append(ArraySource("bias", bias, "vector"))
    return Translation(entry, (x,), tuple(arrays))


def _transposed_pads(
    attrs: dict[str, Any], full: tuple[int, int], hw: tuple[int, int], stride: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a ConvTranspose: its ``pads``, or the crop its ``output_shape`` or
    ``auto_pad`` SAME implies (``full``: the rows and columns before the crop, output padding included).
    Runtimes split an odd crop differently (ONNX's text and ONNX Runtime disagree on which side takes the
    extra row): only even ones are read."""
    auto = text(attrs.get("auto_pad", "NOTSET"))
    if "output_shape" in attrs:
        wanted = list(attrs["output_shape"])[-2:]
        if len(wanted) != 2:
            raise Unsupported(f"output_shape {list(attrs['output_shape'])} is not 2-D")
        why = "output_shape"
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        if any(attrs.get("output_padding", ())):
            raise Unsupported(f"auto_pad {auto} with output_padding (ONNX's shape inference and ONNX Runtime disagree)")
        wanted, why = [n * s for n, s in zip(hw, stride)], f"auto_pad {auto}"
    else:  # NOTSET or VALID: the pads as written (a window's kernel, stride and dilation matter to SAME alone)
        return window_pads(attrs, (1, 1), (1, 1), (1, 1), hw)
    sides = []
    for n, out in zip(full, wanted):
        crop = n - int(out)
        if crop < 0 or crop % 2:
            raise Unsupported(f"{why} {list(wanted)} implies a crop of {crop} from {n} (only even, non-negative crops)")
        sides += [crop // 2, crop // 2]
    top, bottom, left, right = sides
    return top, bottom, left, right


def conv_transpose(node: Node, ctx: Context) -> Translation:
    x = the_data_input(node, ctx)
    c, h, w = map4(node, ctx)
    weight = ctx.weight(node.input[1], "weight")
    if len(weight.dims) != 4:
        raise Unsupported(f"a {len(weight.dims) - 2}-D transposed convolution")
    attrs = node.attrs
    groups = int(attrs.get("group", 1))
    out_channels = weight.dims[1] * groups
    kernel = _pair(attrs, "kernel_shape", (weight.dims[2], weight.dims[3]))
    stride = _pair(attrs, "strides", (1, 1))
    dilation = _pair(attrs, "dilations", (1, 1))
    extra = _pair(attrs, "output_padding", (0, 0))
    try:
        check_output_padding(extra, stride, dilation)
    except ValueError as err:
        raise Unsupported(str(err)) from None
    full = tuple((n - 1) * s + (k - 1) * d + 1 + e for n, s, k, d, e in zip((h, w), stride, kernel, dilation, extra))
    pads = _transposed_pads(attrs, (full[0], full[1]), (h, w), stride)
    entry: dict[str, Any] = {"op": "conv_transpose", "filters": out_channels, "kernel": one_or_pair(kernel)}
    if stride != (1, 1):
        entry["stride"] = one_or_pair(stride)
    if any(pads):
        entry["padding"] = pads[0] if len(set(pads)) == 1 else list(pads)
    if extra != (0, 0):
        entry["output_padding"] = one_or_pair(extra)
    if groups != 1:
        entry["groups"] = groups
    if dilation != (1, 1):
        entry["dilation"] = one_or_pair(dilation)
    bias = optional_input(node, 2)
    if not bias:
        entry["bias"] = False
    # (C_in, C_out/groups, Kh, Kw) takes a conv weight's transpose to (Kh, Kw, C_out/groups, C_in)
    arrays = [ArraySource("weight", node.input[1], "oihw")]
    if bias:
        ctx.weight(bias, "bias")
        arrays.append(ArraySource("bias", bias, "vector"))
    return Translation(entry, (x,), tuple(arrays))


def _ceil_changes_output(n: int, k: int, s: int, before: int, after: int) -> bool:
    """Whether ``ceil_mode`` adds a window: one more output, its window starting inside the input or its
    leading padding (the rule of PyTorch and ONNX Runtime)."""
    floor_out = (n + before + after - k) // s + 1
    ceil_out = -(-(n + before + after - k) // s) + 1
    if (ceil_out - 1) * s >= n + before:
        ceil_out -= 1
    return ceil_out != floor_out


def pool(node: Node, ctx: Context) -> Translation:
    x = the_data_input(node, ctx)
    _, h, w = map4(node, ctx)
    op = "maxpool" if node.op_type == "MaxPool" else "avgpool"
    unused_extra_outputs(node, ctx, "indices")
    attrs = node.attrs
    size = _pair(attrs, "kernel_shape", (0, 0))
    stride = _pair(attrs, "strides", (1, 1))
    if _pair(attrs, "dilations", (1, 1)) != (1, 1):
        raise Unsupported(f"dilations {attrs['dilations']}")
    pads = window_pads(attrs, size, stride, (1, 1), (h, w))
    entry: dict[str, Any] = {"op": op, "size": one_or_pair(size)}
    if stride != size:
        entry["stride"] = one_or_pair(stride)
    if any(pads):
        entry["padding"] = padding_value(pads, size, stride, (h, w))
    top, bottom, left, right = pads
    ceil = bool(attrs.get("ceil_mode", 0)) and (
        _ceil_changes_output(h, size[0], stride[0], top, bottom)
        or _ceil_changes_output(w, size[1], stride[1], left, right)
    )
    if ceil:
        entry["ceil_mode"] = True
    excludes_padding = op == "avgpool" and not attrs.get("count_include_pad", 0) and (any(pads) or ceil)
    if excludes_padding:
        entry["count_include_pad"] = False
    return Translation(entry, (x,))


def global_pool(op: str) -> Callable[[Node, Context], Translation]:
    """GlobalAveragePool or GlobalMaxPool: hwsim's ``op`` on the NCHW map."""

    def translate(node: Node, ctx: Context) -> Translation:
        x = the_data_input(node, ctx)
        map4(node, ctx)
        return Translation({"op": op}, (x,))

    return translate


def over_height_and_width(op: str, what: str) -> Callable[[Node, Context], Translation]:
    """A reduction over height and width is a global pool: ReduceMean a global average (TensorFlow exports them
    so), ReduceMax a global max (the dynamo exporter writes adaptive_max_pool2d(1) and amax over (2, 3) so).
    ``what``: the reduction, named in the refusal of other axes."""

    def translate(node: Node, ctx: Context) -> Translation:
        x = the_data_input(node, ctx)
        map4(node, ctx)
        axes = node.attrs.get("axes")
        if axes is None:
            value = constant_value(node, 1, ctx, "axes")
            axes = None if value is None else value.tolist()
        if axes is None or sorted(a % 4 for a in axes) != [2, 3]:
            raise Unsupported(f"{what} over axes {axes}, not height and width")
        return Translation({"op": op}, (x,))

    return translate


def prelu(node: Node, ctx: Context) -> Translation:
    """PRelu's slope is a parameter: one per channel ((C, 1, 1) or (1, C, 1, 1) on an NCHW map, (C,) on flat
    features) or one for every channel (all its dims 1). ONNX broadcasts a slope from the last axis: a (C,) on a
    map would vary along its width, which hwsim's prelu cannot say."""
    x = the_data_input(node, ctx)
    dims = ctx.shape(x)
    slope = ctx.weight(node.input[1], "slope")
    aligned = (1,) * (len(dims) - len(slope.dims)) + tuple(slope.dims)
    entry: dict[str, Any] = {"op": "prelu"}
    if all(d == 1 for d in aligned):
        entry["shared"] = True
    elif len(aligned) != len(dims) or aligned[1] != dims[1] or slope.size != dims[1]:  # other dims 1, by the size
        raise Unsupported(
            f"a slope of shape {list(slope.dims)} on a {list(dims)} input: not one per channel nor one for all"
        )
    return Translation(entry, (x,), (ArraySource("slope", node.input[1], "vector"),))


def _dense_input(node: Node, ctx: Context) -> str:
    x = the_data_input(node, ctx)
    if ctx.rank(x) != 2:
        raise Unsupported(f"on a {ctx.rank(x)}-D input (hwsim's dense reads flat (N, features) inputs)")
    return x


def gemm(node: Node, ctx: Context) -> Translation:
    x = _dense_input(node, ctx)
    attrs = node.attrs
    if attrs.get("transA", 0):
        raise Unsupported("transA")
    weight = ctx.weight(node.input[1], "weight")
    if len(weight.dims) != 2:
        raise Unsupported(f"a weight of {len(weight.dims)} dims")
    transposed = bool(attrs.get("transB", 0))
    units = weight.dims[0] if transposed else weight.dims[1]
    bias = optional_input(node, 2)
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    arrays = [ArraySource("weight", node.input[1], "oi" if transposed else "io", factor=alpha)]
    if bias:  # alpha and beta scale the weights the layer holds: the same counts, the products adopted as weights
        if ctx.weight(bias, "bias").size != units:
            raise Unsupported(f"a bias of shape {list(ctx.initializers[bias].dims)}, not one value per unit")
        arrays.append(ArraySource("bias", bias, "vector", factor=beta))
    entry: dict[str, Any] = {"op": "dense", "units": units}
    if not bias:
        entry["bias"] = False
    return Translation(entry, (x,), tuple(arrays))


def matmul(node: Node, ctx: Context) -> Translation:
    """A MatMul by a weight is a dense layer, or on a channels-last map a 1x1 convolution (PyTorch's Linear on a
    permuted map: ConvNeXt); an Add of a constant vector after it is that layer's bias."""
    channels_last = node.input[0] in ctx.channels_last
    x = the_data_input(node, ctx) if channels_last else _dense_input(node, ctx)
    weight = ctx.weight(node.input[1], "weight")
    if len(weight.dims) != 2:
        raise Unsupported(f"a weight of {len(weight.dims)} dims")
    if channels_last:
        arrays = [ArraySource("weight", node.input[1], "io1x1")]
        entry: dict[str, Any] = {"op": "conv", "filters": weight.dims[1], "kernel": 1}
    else:
        arrays = [ArraySource("weight", node.input[1], "io")]
        entry = {"op": "dense", "units": weight.dims[1]}
    fused = ctx.fused_bias.get(node.output[0])
    if fused is None:
        entry["bias"] = False
        return Translation(entry, (x,), tuple(arrays))
    bias, output = fused
    return Translation(entry, (x,), (*arrays, ArraySource("bias", bias, "vector")), output=output)


def flatten(node: Node, ctx: Context) -> Translation:
    """Flatten, Reshape, Squeeze and Unsqueeze that make a map flat: (N, C, H, W) -> (N, C*H*W). A Flatten at
    axis 2 or 3 is one where the dims before the axis are 1 (its output shape says so).

    hwsim's maps are (H, W, C), so a 1x1 map is already flat: making it (N, C), or (N, C) a 1x1 map, is
    no layer at all (torchvision's Flatten after its global average pool, an exporter's reshape before Gemm)."""
    x = the_data_input(node, ctx)
    before, after = ctx.shape(x), ctx.shape(node.output[0])
    if node.op_type == "Flatten" and int(node.attrs.get("axis", 1)) % len(before) == 0:
        raise Unsupported("at axis 0: it merges the batch into the features")
    flat = len(after) == 2 or (len(after) == 4 and after[2:] == (1, 1))
    if None in before[1:] or not flat or after[1] != math.prod(d for d in before[1:] if d is not None):
        raise Unsupported(f"{list(before)} -> {list(after)} is not a flatten to (N, features)")
    return Translation({"op": "flatten"}, (x,), passes_on=len(before) == 2 or before[2:] == (1, 1))


def reshape(node: Node, ctx: Context) -> Translation:
    """The last Reshape of a channel shuffle (the reader found the Reshape and Transpose before it); else a flatten."""
    shuffle = ctx.shuffles.get(node.output[0])
    if shuffle is None:
        return flatten(node, ctx)
    x, groups = shuffle
    return Translation({"op": "channel_shuffle", "groups": groups}, (x,))


def _channel_range(channels: int, start: int, end: int) -> Translation | None:
    """A slice of channels [start, end) as an entry; None when it keeps them all."""
    if (start, end) == (0, channels):
        return None
    return Translation({"op": "slice", "start": start, "end": end}, ())


def split(node: Node, ctx: Context) -> Translation:
    """One output of a Split along channels (the reader gives each output read its own node and range)."""
    x = the_data_input(node, ctx)
    if "channels" not in node.attrs:
        map4(node, ctx)
        dims = ctx.shape(x)
        axis = int(node.attrs.get("axis", 0)) % len(dims)
        if axis == 1:
            raise Unsupported("the shapes of its outputs are unknown")
        raise Unsupported(f"along axis {axis} of {list(dims)}, not channels")
    start, end = node.attrs["channels"]
    entry = _channel_range(map4(node, ctx)[0], start, end)
    return Translation(entry.entry if entry else {"op": "slice"}, (x,), passes_on=entry is None)


def _ints(node: Node, index: int, ctx: Context, what: str) -> list[int] | None:
    value = constant_value(node, index, ctx, what)
    return None if value is None else [int(v) for v in value.reshape(-1)]


def slice_(node: Node, ctx: Context) -> Translation:
    """A Slice of channels, at step 1, leaving height and width whole (``x[:, a:b]``)."""
    x = the_data_input(node, ctx)
    c, h, w = map4(node, ctx)
    if ctx.opset < 10:
        starts, ends, axes, steps = (node.attrs.get(name) for name in ("starts", "ends", "axes", "steps"))
    else:
        starts, ends, axes, steps = (
            _ints(node, i + 1, ctx, n) for i, n in enumerate(("starts", "ends", "axes", "steps"))
        )
    starts, ends = starts or [], ends or []
    axes, steps = axes or list(range(len(starts))), steps or [1] * len(starts)
    channels = range(c)
    for axis, first, last, step in zip(axes, starts, ends, steps):
        size = (1, c, h, w)[axis % 4]
        kept = range(size)[first:last:step]
        if axis % 4 == 1 and step == 1 and len(kept):
            channels = kept
        elif kept != range(size):
            raise Unsupported(f"starts {starts}, ends {ends}, axes {axes}, steps {steps}: not a range of channels")
    entry = _channel_range(c, channels.start, channels.stop)
    return Translation(entry.entry if entry else {"op": "slice"}, (x,), passes_on=entry is None)


def cast(node: Node, ctx: Context) -> Translation:
    """A Cast to the type the maps already have is no layer (exporters write one around shape arithmetic and
    after ops whose type they do not track); to another type it changes the numbers and is refused."""
    x = the_data_input(node, ctx)
    to = int(node.attrs["to"])
    if to != ctx.element_type:
        from onnx import TensorProto

        raise Unsupported(
            f"a cast to {TensorProto.DataType.Name(to)} (the maps are {TensorProto.DataType.Name(ctx.element_type)})"
        )
    return Translation({"op": "identity"}, (x,), passes_on=True)


def plain(op: str) -> Callable[[Node, Context], Translation]:
    """An op without attributes that reads one map: relu, sigmoid, hard_swish, identity."""

    def translate(node: Node, ctx: Context) -> Translation:
        return Translation({"op": op}, (the_data_input(node, ctx),))

    return translate


def clip(node: Node, ctx: Context) -> Translation:
    """Clip(0, 6) is ReLU6 (``{op: clip}``); Clip(0, none) is a ReLU."""
    x = the_data_input(node, ctx)
    attrs = node.attrs
    if ctx.opset < 11:
        low, high = attrs.get("min"), attrs.get("max")
    else:
        low_value, high_value = constant_value(node, 1, ctx, "min"), constant_value(node, 2, ctx, "max")
        low = None if low_value is None else float(low_value)
        high = None if high_value is None else float(high_value)
    if low is not None and same_real(low, 0.0) and (high is None or math.isinf(high)):
        return Translation({"op": "relu"}, (x,))
    if low is None or high is None or math.isinf(low) or math.isinf(high):
        raise Unsupported(f"bounds [{low}, {high}]: hwsim's clip has two finite bounds")
    entry: dict[str, Any] = {"op": "clip"}
    if not same_real(low, 0.0):
        entry["min"] = real(low)
    if not same_real(high, 6.0):
        entry["max"] = real(high)
    return Translation(entry, (x,))


def scalar_attributes(op: str, defaults: dict[str, tuple[str, float, float]]) -> Callable[..., Translation]:
    """An op with float attributes: ONNX name -> (hwsim name, ONNX default, hwsim default)."""

    def translate(node: Node, ctx: Context) -> Translation:
        x = the_data_input(node, ctx)
        attrs = node.attrs
        entry: dict[str, Any] = {"op": op}
        for onnx_name, (name, onnx_default, default) in defaults.items():
            value = attrs.get(onnx_name, onnx_default)
            if not same_real(value, default):
                entry[name] = real(value)
        return Translation(entry, (x,))

    return translate


def two_maps(op: str) -> Callable[[Node, Context], Translation]:
    """Add, Mul, Sum: maps combined element by element (a constant operand is not a map)."""

    def translate(node: Node, ctx: Context) -> Translation:
        inputs = data_inputs(node, ctx)
        if len(inputs) != len(node.input):
            raise Unsupported("one operand is a constant, not a map")
        return Translation({"op": op}, inputs, passes_on=len(inputs) == 1)  # Sum of one map: that map

    return translate


def _per_channel(value: np.ndarray, dims: Dims) -> float | list[float]:
    """A constant operand as hwsim's scale attribute: one value, or one per channel of a 4-D map (shaped (C, 1, 1)
    or (1, C, 1, 1) as a broadcast over NCHW needs); anything else varies along height, width or a flat
    feature's (c, h, w) order, which the attribute cannot say."""
    flat = value.astype(np.float64).reshape(-1)
    if flat.size == 1:
        return real(float(flat[0]))
    shape = (1,) * (4 - value.ndim) + tuple(value.shape) if value.ndim <= 4 else value.shape
    if len(dims) == 4 and shape[0] == 1 and shape[2:] == (1, 1) and shape[1] == dims[1]:
        return [real(float(v)) for v in flat]
    raise Unsupported(
        f"a constant of shape {list(value.shape)} on a {list(dims)} input: not one value or one per channel"
    )


def _negated(values: float | list[float]) -> float | list[float]:
    return [-v for v in values] if isinstance(values, list) else -values


def _reciprocal(values: float | list[float]) -> float | list[float]:
    """1 / values as float32 (x / c becomes x * (1 / c): within one rounding of ONNX's quotient)."""
    if 0.0 in (values if isinstance(values, list) else [values]):
        raise Unsupported("a division by zero")
    return [real(1.0 / v) for v in values] if isinstance(values, list) else real(1.0 / values)


def arithmetic(node: Node, ctx: Context) -> Translation:
    """Add, Sub, Mul, Div. Of two maps: Add and Mul combine them (``add``, ``mul``); of a map and a constant: an
    affine map ``{op: scale}`` (x + c, x - c, c - x, x * c, x / c; c / x is refused)."""
    inputs = data_inputs(node, ctx)
    if len(inputs) == len(node.input):
        if node.op_type == "Sub":  # an add of the second scaled by -1 would count a multiply more an element
            raise Unsupported("a Sub of two maps (no hwsim op subtracts maps)")
        if node.op_type == "Div":
            raise Unsupported("a Div of two maps (no hwsim op divides maps)")
        return two_maps("add" if node.op_type == "Add" else "mul")(node, ctx)
    if len(inputs) != 1 or len(node.input) != 2:
        raise Unsupported("no operand is a map")
    x = inputs[0]
    first = node.input[0] == x
    value = ctx.constant(node.input[1] if first else node.input[0])
    if value is None:
        raise Unsupported("one operand is neither a map nor a constant")
    dims = ctx.shape(x)
    if value.size > 1 and tuple(ctx.shape(node.output[0])) != tuple(dims):
        raise Unsupported(f"the constant broadcasts {list(dims)} to {list(ctx.shape(node.output[0]))}")
    if x in ctx.channels_last and value.ndim:  # broadcast over (N, H, W, C): its last axis is the channels
        value = value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(0, 3, 1, 2)
    c = _per_channel(value, dims)
    entry: dict[str, Any] = {"op": "scale"}
    if node.op_type == "Add":
        entry["shift"] = c
    elif node.op_type == "Sub":
        entry.update({"shift": _negated(c)} if first else {"scale": -1.0, "shift": c})
    elif node.op_type == "Mul":
        entry["scale"] = c
    elif first:  # Div
        entry["scale"] = _reciprocal(c)
    else:
        raise Unsupported("a constant divided by a map (a reciprocal)")
    return Translation(entry, (x,))


def mean(node: Node, ctx: Context) -> Translation:
    """Mean of one map is that map; of k maps, their sum (an ``add``, k - 1 adds an element) scaled by 1 / k (a
    ``scale``, one multiply): ONNX's k - 1 adds and a divide, in two layers (the sum named ``<node>_sum``)."""
    inputs = data_inputs(node, ctx)
    if len(inputs) != len(node.input):
        raise Unsupported("one operand is a constant, not a map")
    if len(inputs) == 1:
        return Translation({"op": "identity"}, inputs, passes_on=True)
    return Translation({"op": "scale", "scale": real(1.0 / len(inputs))}, inputs, before=("sum", {"op": "add"}))


def concat(node: Node, ctx: Context) -> Translation:
    inputs = data_inputs(node, ctx)
    if len(inputs) != len(node.input):
        raise Unsupported("one operand is a constant, not a map")
    if len(inputs) == 1:  # torch.cat([x]): DenseNet's first layer of a block
        return Translation({"op": "concat"}, inputs, passes_on=True)
    rank = ctx.rank(node.input[0])
    if int(node.attrs["axis"]) % rank != 1:
        raise Unsupported(f"along axis {node.attrs['axis']}, not channels")
    return Translation({"op": "concat"}, inputs)


def softmax(node: Node, ctx: Context) -> Translation:
    """Over channels: the last axis of (N, classes), axis 1 of NCHW (before opset 13, only over 1x1 maps)."""
    x = the_data_input(node, ctx)
    dims = ctx.shape(x)
    axis = int(node.attrs.get("axis", -1 if ctx.opset >= 13 else 1)) % len(dims)
    over_channels = axis == 1 and (ctx.opset >= 13 or len(dims) == 2 or tuple(dims[2:]) == (1, 1))
    if not over_channels:
        raise Unsupported(f"along axis {axis} of {list(dims)}, not channels")
    return Translation({"op": "softmax"}, (x,))


def dropout(node: Node, ctx: Context) -> Translation:
    """Dropout is the identity at inference; its rate is kept for training."""
    x = the_data_input(node, ctx)
    unused_extra_outputs(node, ctx, "mask")
    rate = node.attrs.get("ratio") if ctx.opset < 12 else None
    if ctx.opset >= 12:
        value = constant_value(node, 1, ctx, "ratio")
        rate = None if value is None else float(value)
    entry: dict[str, Any] = {"op": "dropout"}
    if rate is not None and not same_real(rate, 0.5):
        entry["rate"] = real(rate)
    return Translation(entry, (x,))


def lrn(node: Node, ctx: Context) -> Translation:
    """ONNX's LRN divides alpha by size, as hwsim's does: the attributes carry over unchanged."""
    x = the_data_input(node, ctx)
    attrs = node.attrs
    size = int(attrs["size"])
    if size % 2 == 0:
        raise Unsupported(f"an even size {size} (hwsim's window is centred)")
    entry: dict[str, Any] = {"op": "lrn", "size": size}
    for name, onnx_name, onnx_default, default in (
        ("alpha", "alpha", 1e-4, 1e-4),
        ("beta", "beta", 0.75, 0.75),
        ("k", "bias", 1.0, 2.0),
    ):
        value = attrs.get(onnx_name, onnx_default)
        if not same_real(value, default):
            entry[name] = real(value)
    return Translation(entry, (x,))


_BATCHNORM_ARRAYS = (("gamma", False), ("beta", False), ("running_mean", True), ("running_var", True))


def batchnorm(node: Node, ctx: Context) -> Translation:
    """Inference batch norm; ONNX's momentum weighs the running value, hwsim's the batch's: m = 1 - momentum.
    Before opset 9, ``spatial`` 0 keeps statistics per activation, not per channel (only a flat input or a 1x1
    map reads so); ``consumed_inputs`` and ``is_test`` (opsets 1 to 6) change nothing at inference."""
    x = the_data_input(node, ctx)
    unused_extra_outputs(node, ctx, "running statistics")
    attrs = node.attrs
    dims = ctx.shape(x)
    if not attrs.get("spatial", 1) and len(dims) == 4 and tuple(dims[2:]) != (1, 1):
        raise Unsupported(f"spatial 0 on {list(dims)}: statistics per activation, not per channel")
    arrays = []
    for (key, state), name in zip(_BATCHNORM_ARRAYS, node.input[1:5]):
        ctx.weight(name, key)
        arrays.append(ArraySource(key, name, "vector", state))
    entry: dict[str, Any] = {"op": "batchnorm"}
    eps = attrs.get("epsilon", 1e-5)
    if not same_real(eps, 1e-5):
        entry["eps"] = real(eps)
    momentum = attrs.get("momentum", 0.9)
    if not same_real(momentum, 0.9):
        entry["momentum"] = real(1.0 - real(momentum))
    return Translation(entry, (x,), tuple(arrays))


def layer_norm_entry(eps: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"op": "layer_norm"}
    if not same_real(eps, 1e-5):
        entry["eps"] = real(eps)
    return entry


def layer_norm(node: Node, ctx: Context) -> Translation:
    """LayerNormalization over one pixel's channels: the last axis of a channels-last map (PyTorch's LayerNorm
    after ``permute(0, 2, 3, 1)``: ConvNeXt's LayerNorm2d) or of flat (N, features)."""
    x = the_data_input(node, ctx)
    rank = ctx.rank(x)
    axis = int(node.attrs.get("axis", -1)) % rank
    if not ((rank == 4 and x in ctx.channels_last and axis == 3) or (rank == 2 and axis == 1)):
        raise Unsupported(f"over axes {axis} to {rank - 1} of a {rank}-D map, not each pixel's channels")
    unused_extra_outputs(node, ctx, "mean or inverse deviation")
    if not optional_input(node, 2):
        raise Unsupported("no bias B (hwsim's layer norm has one)")
    channels = ctx.shape(x)[1]
    arrays = []
    for key, name in (("gamma", node.input[1]), ("beta", node.input[2])):
        if ctx.weight(name, key).size != channels:
            raise Unsupported(f"a {key} of shape {list(ctx.initializers[name].dims)}, not one per channel")
        arrays.append(ArraySource(key, name, "vector"))
    return Translation(layer_norm_entry(float(node.attrs.get("epsilon", 1e-5))), (x,), tuple(arrays))


def gelu(node: Node, ctx: Context) -> Translation:
    """Gelu (opset 20): ``approximate`` none or tanh, as hwsim's (and PyTorch's)."""
    x = the_data_input(node, ctx)
    approximate = text(node.attrs.get("approximate", "none"))
    if approximate not in ("none", "tanh"):
        raise Unsupported(f"approximate {approximate!r}")
    return Translation({"op": "gelu", **({"approximate": "tanh"} if approximate == "tanh" else {})}, (x,))


_NEAREST_AS_FLOOR = {
    ("asymmetric", "floor"),
    ("half_pixel", "round_prefer_floor"),
    ("half_pixel", "round_prefer_ceil"),
    ("pytorch_half_pixel", "round_prefer_floor"),
    ("pytorch_half_pixel", "round_prefer_ceil"),
}
"""Coordinate rules under which nearest resizing by an integer factor f reads pixel h // f, hwsim's rule."""


def resize(node: Node, ctx: Context) -> Translation:
    """Resize (and the older Upsample) by integer factors: nearest, or bilinear with half-pixel or aligned corners."""
    x = the_data_input(node, ctx)
    c, h, w = map4(node, ctx)
    dims = ctx.shape(node.output[0])
    out = [d for d in dims[1:] if d is not None]
    if len(dims) != 4 or len(out) != 3 or out[0] != c or out[1] % h or out[2] % w:
        raise Unsupported(f"{[c, h, w]} -> {list(dims[1:])} is not an upsampling by integer factors")
    factors = (out[1] // h, out[2] // w)
    attrs = node.attrs
    mode = text(attrs.get("mode", "nearest"))
    transform = text(
        attrs.get("coordinate_transformation_mode", "half_pixel" if node.op_type == "Resize" else "asymmetric")
    )
    entry: dict[str, Any] = {"op": "upsample", "factor": one_or_pair(factors)}
    if mode == "nearest":
        rounding = text(attrs.get("nearest_mode", "round_prefer_floor" if node.op_type == "Resize" else "floor"))
        if (transform, rounding) not in _NEAREST_AS_FLOOR and factors != (1, 1):
            raise Unsupported(f"nearest with {transform} coordinates rounded {rounding}")
    elif mode in ("linear", "bilinear"):
        aligned = transform == "align_corners"
        if not aligned and not (transform == "half_pixel" or (transform == "pytorch_half_pixel" and min(out[1:]) > 1)):
            raise Unsupported(f"bilinear with {transform} coordinates")
        entry["mode"] = "bilinear"
        if aligned:
            entry["align_corners"] = True
    else:
        raise Unsupported(f"{mode} interpolation")
    return Translation(entry, (x,))


def pad(node: Node, ctx: Context) -> Translation:
    x = the_data_input(node, ctx)
    map4(node, ctx)
    attrs = node.attrs
    if ctx.opset < 11:
        pads, value = list(attrs.get("pads", [])), float(attrs.get("value", 0.0))
    else:
        given = constant_value(node, 1, ctx, "pads")
        pads = [] if given is None else [int(p) for p in given.reshape(-1)]
        fill = constant_value(node, 2, ctx, "value")
        value = 0.0 if fill is None or fill.size == 0 else float(fill.reshape(-1)[0])
        axes = constant_value(node, 3, ctx, "axes")
        if axes is not None:  # pads for these axes only (opset 18)
            full = [0] * 8
            for i, axis in enumerate(int(a) % 4 for a in axes.reshape(-1)):
                full[axis], full[axis + 4] = pads[i], pads[i + len(axes.reshape(-1))]
            pads = full
    if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5]:
        raise Unsupported(f"pads {pads} reach beyond height and width")
    if min(pads) < 0:
        raise Unsupported(f"negative pads {pads} (a crop)")
    mode = text(attrs.get("mode", "constant"))
    if mode not in ("constant", "reflect", "edge"):
        raise Unsupported(f"mode {mode}")
    sides = [pads[2], pads[6], pads[3], pads[7]]
    if not any(sides):  # padding computed at run time that came to nothing (timm's 'same' padding of a 1x1 conv)
        return Translation({"op": "identity"}, (x,), passes_on=True)
    entry: dict[str, Any] = {"op": "pad", "pads": sides[0] if len(set(sides)) == 1 else sides}
    if mode != "constant":
        entry["mode"] = mode
    if mode == "constant" and value != 0.0:
        entry["value"] = real(value)
    return Translation(entry, (x,))


TRANSLATORS: dict[str, Callable[[Node, Context], Translation]] = {
    "Conv": conv,
    "MaxPool": pool,
    "AveragePool": pool,
    "GlobalAveragePool": global_pool("global_avg_pool"),
    "ReduceMean": over_height_and_width("global_avg_pool", "a mean"),
    "Gemm": gemm,
    "MatMul": matmul,
    "Flatten": flatten,
    "Reshape": reshape,
    "Squeeze": flatten,
    "Unsqueeze": flatten,
    "Relu": plain("relu"),
    "Sigmoid": plain("sigmoid"),
    "HardSwish": plain("hard_swish"),
    "Identity": plain("identity"),
    "Clip": clip,
    "LeakyRelu": scalar_attributes("leaky_relu", {"alpha": ("alpha", 0.01, 0.01)}),
    "HardSigmoid": scalar_attributes("hard_sigmoid", {"alpha": ("alpha", 0.2, 1 / 6), "beta": ("beta", 0.5, 0.5)}),
    "Add": arithmetic,
    "Sub": arithmetic,
    "Mul": arithmetic,
    "Div": arithmetic,
    "Sum": two_maps("add"),
    "Mean": mean,
    "Concat": concat,
    "Softmax": softmax,
    "Dropout": dropout,
    "LRN": lrn,
    "BatchNormalization": batchnorm,
    "Resize": resize,
    "Upsample": resize,
    "Pad": pad,
    "Split": split,
    "Cast": cast,
    "Slice": slice_,
    "LayerNormalization": layer_norm,
    "Gelu": gelu,
    "ConvTranspose": conv_transpose,
    "Tanh": plain("tanh"),
    "Elu": scalar_attributes("elu", {"alpha": ("alpha", 1.0, 1.0)}),
    "Selu": scalar_attributes(
        "selu", {"alpha": ("alpha", SELU.alpha, SELU.alpha), "gamma": ("gamma", SELU.gamma, SELU.gamma)}
    ),
    "Softplus": plain("softplus"),
    "Mish": plain("mish"),
    "PRelu": prelu,
    "GlobalMaxPool": global_pool("global_max_pool"),
    "ReduceMax": over_height_and_width("global_max_pool", "a maximum"),
}
"""ONNX op type (default domain) -> its translator. docs/onnx.md has the table."""
