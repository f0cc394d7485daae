"""A layer graph and the reference's arrays as an ONNX model (opset 17) that ONNX Runtime and Netron open.

hwsim is NHWC, ONNX NCHW: the model reads (N, C, H, W) and every map stays 4-D NCHW; flat features are
(N, F). Each convention is converted where it differs:

- conv weights (Kh, Kw, C_in/groups, C_out) become (C_out, C_in/groups, Kh, Kw); dense weights (C_in, units)
  are Gemm's B as they are; conv_transpose weights (Kh, Kw, C_out/groups, C_in) become (C_in, C_out/groups,
  Kh, Kw) by the same transpose, its crop ONNX's pads and its output_padding as it is;
- hwsim flattens (h, w, c), ONNX (c, h, w): a ``flatten`` of a map with more than one pixel and channel is
  a Transpose to NHWC then a Flatten, so the next dense layer's rows need no permutation;
- padding is hwsim's normalised per-side padding written as ONNX pads (top, left, bottom, right), so
  ``same`` (TensorFlow's rule, extra pixel bottom/right) is exact;
- average pooling counts the padding (``count_include_pad``), max pooling ignores it (ONNX's rule);
- batch norm is inference batch norm with the running statistics; ONNX's momentum is 1 - hwsim's;
- dropout is a Dropout node, the identity at inference; softmax runs over channels (axis 1);
- LRN's alpha is divided by size in both; nearest upsampling reads pixel h // f (asymmetric, floor);
- gelu is written as PyTorch's TorchScript exporter writes it at opset 17 (Div, Erf, Add, Mul, Mul; or its tanh
  approximation's Mul, Mul, Mul, Add, Mul, Tanh, Add, Mul, Mul), since Gelu is an op from opset 20 only;
- a layer norm over a map's channels is LayerNormalization over the last axis between Transposes to NHWC and
  back, as ConvNeXt's LayerNorm2d exports.
- mish is Softplus, Tanh and Mul (opset 17 has no Mish); prelu's slopes are (C, 1, 1), as PyTorch writes them.

Node and tensor names are hwsim's layer names (``stage1.block1.dw``); parameters are ``<layer>.<name>``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from hwsim.errors import InputError
from hwsim.model.graph import INPUT, Graph, Layer
from hwsim.ops import (
    BatchNormAttrs,
    ConvAttrs,
    ConvTransposeAttrs,
    DropoutAttrs,
    GeluAttrs,
    LayerNormAttrs,
    LrnAttrs,
    Op,
    PoolAttrs,
    UpsampleAttrs,
)
from hwsim.reference.base import Arrays
from hwsim.spec.onnx_file import MAX_MODEL_BYTES, require_onnx

OPSET = 17


def _hwsim_version() -> str:
    try:
        return version("hwsim")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


@dataclass
class _Writer:
    """The nodes and initializers written so far, and the rank (2 or 4) of every tensor."""

    onnx: Any
    params: Arrays
    state: Arrays
    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    rank: dict[str, int] = field(default_factory=dict)

    def array(self, name: str, value: np.ndarray) -> str:
        contiguous = value if value.flags.c_contiguous else value.copy()  # ascontiguousarray makes scalars 1-D
        self.initializers.append(self.onnx.numpy_helper.from_array(contiguous, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, rank: int, name: str | None = None, **attrs: Any) -> str:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=name or output, **attrs))
        self.rank[output] = rank
        return output

    def nchw(self, tensor: str) -> str:
        """``tensor`` as a 4-D map: flat (N, F) features become (N, F, 1, 1)."""
        if self.rank[tensor] == 4:
            return tensor
        axes = self.array(f"{tensor}/unsqueeze_axes", np.array([2, 3], np.int64))
        return self.node("Unsqueeze", [tensor, axes], f"{tensor}/as_map", 4)

    def flat(self, tensor: str) -> str:
        """``tensor`` as (N, F): a 1x1 map loses its two unit dims."""
        if self.rank[tensor] == 2:
            return tensor
        return self.node("Flatten", [tensor], f"{tensor}/as_features", 2, axis=1)


def _window(attrs: ConvAttrs | PoolAttrs) -> dict[str, Any]:
    """kernel_shape, strides and pads: the padding as written, without the rows and columns that a pool's
    ceil mode lets its last window reach beyond it (``overhang``, which ONNX's ceil_mode adds itself)."""
    pad = attrs.padding
    down, right = getattr(attrs, "overhang", (0, 0))
    return {
        "kernel_shape": list(attrs.kernel),
        "strides": list(attrs.stride),
        "pads": [pad.top, pad.left, pad.bottom - down, pad.right - right],
    }


def _conv(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    attrs = layer.attrs
    assert isinstance(attrs, ConvAttrs)
    weight = w.array(f"{layer.name}.weight", w.params[f"{layer.name}.weight"].transpose(3, 2, 0, 1))
    operands = [w.nchw(inputs[0]), weight]
    if attrs.bias:
        operands.append(w.array(f"{layer.name}.bias", w.params[f"{layer.name}.bias"]))
    dilation = list(getattr(attrs, "dilation", (1, 1)))
    return w.node("Conv", operands, layer.name, 4, group=attrs.groups, dilations=dilation, **_window(attrs))


def _conv_transpose(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    attrs = layer.attrs
    assert isinstance(attrs, ConvTransposeAttrs)
    weight = w.array(f"{layer.name}.weight", w.params[f"{layer.name}.weight"].transpose(3, 2, 0, 1))
    operands = [w.nchw(inputs[0]), weight]
    if attrs.bias:
        operands.append(w.array(f"{layer.name}.bias", w.params[f"{layer.name}.bias"]))
    pad = attrs.padding
    return w.node(
        "ConvTranspose",
        operands,
        layer.name,
        4,
        group=attrs.groups,
        dilations=list(attrs.dilation),
        kernel_shape=list(attrs.kernel),
        strides=list(attrs.stride),
        pads=[pad.top, pad.left, pad.bottom, pad.right],
        output_padding=list(attrs.output_padding),
    )


def _pool(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    attrs = layer.attrs
    assert isinstance(attrs, PoolAttrs)
    extra: dict[str, Any] = {"ceil_mode": int(getattr(attrs, "ceil_mode", False))}
    if layer.op is Op.AVGPOOL:
        extra["count_include_pad"] = int(getattr(attrs, "count_include_pad", True))
        return w.node("AveragePool", [w.nchw(inputs[0])], layer.name, 4, **_window(attrs), **extra)
    return w.node("MaxPool", [w.nchw(inputs[0])], layer.name, 4, **_window(attrs), **extra)


def _dense(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    operands = [w.flat(inputs[0]), w.array(f"{layer.name}.weight", w.params[f"{layer.name}.weight"])]
    if f"{layer.name}.bias" in w.params:
        operands.append(w.array(f"{layer.name}.bias", w.params[f"{layer.name}.bias"]))
    return w.node("Gemm", operands, layer.name, 2)


def _flatten(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    """hwsim flattens (h, w, c): NHWC first, unless one pixel or one channel makes the orders equal."""
    h, wd, c = layer.input_shape
    source = inputs[0]
    if w.rank[source] == 4 and h * wd > 1 and c > 1:
        source = w.node("Transpose", [source], f"{layer.name}/to_nhwc", 4, perm=[0, 2, 3, 1])
    if w.rank[source] == 2:
        return w.node("Identity", [source], layer.name, 2)
    return w.node("Flatten", [source], layer.name, 2, axis=1)


def _batchnorm(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    attrs = layer.attrs
    assert isinstance(attrs, BatchNormAttrs)
    arrays = [
        w.array(f"{layer.name}.{key}", (w.state if key.startswith("running") else w.params)[f"{layer.name}.{key}"])
        for key in ("gamma", "beta", "running_mean", "running_var")
    ]
    x = inputs[0]
    return w.node(
        "BatchNormalization", [x, *arrays], layer.name, w.rank[x], epsilon=attrs.eps, momentum=1.0 - attrs.momentum
    )


def _lrn(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    a = layer.attrs
    assert isinstance(a, LrnAttrs)
    return w.node("LRN", [w.nchw(inputs[0])], layer.name, 4, size=a.size, alpha=a.alpha, beta=a.beta, bias=a.k)


def _dropout(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    assert isinstance(layer.attrs, DropoutAttrs)
    ratio = w.array(f"{layer.name}.ratio", np.array(layer.attrs.rate, np.float32))
    return w.node("Dropout", [inputs[0], ratio], layer.name, w.rank[inputs[0]])


def _upsample(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    attrs = layer.attrs
    assert isinstance(attrs, UpsampleAttrs)
    (h, wd, _), (ho, wo, _) = layer.input_shape, layer.output_shape
    scales = w.array(f"{layer.name}.scales", np.array([1, 1, ho / h, wo / wd], np.float32))
    mode = getattr(attrs, "mode", "nearest")
    if mode == "bilinear":
        transform = "align_corners" if getattr(attrs, "align_corners", False) else "half_pixel"
        extra: dict[str, Any] = {"mode": "linear", "coordinate_transformation_mode": transform}
    else:
        extra = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    return w.node("Resize", [w.nchw(inputs[0]), "", scales], layer.name, 4, **extra)


def _same_rank(op: str, **attrs: Any) -> Callable[[_Writer, Layer, list[str]], str]:
    """An element-wise op on every input, all of one rank (4 when any input is a map)."""

    def write(w: _Writer, layer: Layer, inputs: list[str]) -> str:
        if any(w.rank[x] == 4 for x in inputs):
            inputs = [w.nchw(x) for x in inputs]
        written = "Sum" if op == "Add" and len(inputs) > 2 else op
        return w.node(written, inputs, layer.name, w.rank[inputs[0]], **attrs)

    return write


def _clip(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    low = w.array(f"{layer.name}.min", np.array(layer.attrs.min, np.float32))  # type: ignore[attr-defined]
    high = w.array(f"{layer.name}.max", np.array(layer.attrs.max, np.float32))  # type: ignore[attr-defined]
    return w.node("Clip", [inputs[0], low, high], layer.name, w.rank[inputs[0]])


def _scalars(op: str, *names: str) -> Callable[[_Writer, Layer, list[str]], str]:
    """An element-wise op whose float attributes have the same names in hwsim and ONNX."""

    def write(w: _Writer, layer: Layer, inputs: list[str]) -> str:
        attrs: dict[str, Any] = {name: float(getattr(layer.attrs, name)) for name in names}
        return w.node(op, [inputs[0]], layer.name, w.rank[inputs[0]], **attrs)

    return write


def _scale(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    """Mul by the factor, then Add the shift (each left out when it changes nothing), broadcast over channels."""
    a: Any = layer.attrs  # ScaleAttrs: scale, shift
    x, rank = inputs[0], w.rank[inputs[0]]

    def constant(name: str, values: tuple[float, ...]) -> str:
        shape = (1, len(values), 1, 1)[:rank] if len(values) > 1 else ()
        return w.array(f"{layer.name}.{name}", np.array(values, np.float32).reshape(shape))

    steps = [("Mul", "scale", a.scale)] if a.multiplies else []
    steps += [("Add", "shift", a.shift)] if a.adds or not a.multiplies else []
    for i, (op, name, values) in enumerate(steps):
        output = layer.name if i == len(steps) - 1 else f"{layer.name}/{op.lower()}"
        x = w.node(op, [x, constant(name, values)], output, rank)
    return x


def _gelu(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    """x·(1 + erf(x/√2))·0.5, or x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))·0.5, node for node as TorchScript writes
    them."""
    assert isinstance(layer.attrs, GeluAttrs)
    x, rank, name = inputs[0], w.rank[inputs[0]], layer.name

    def constant(suffix: str, value: float) -> str:
        return w.array(f"{name}.{suffix}", np.array(value, np.float32))

    if layer.attrs.approximate == "tanh":
        square = w.node("Mul", [x, x], f"{name}/square", rank)
        cube = w.node("Mul", [x, square], f"{name}/cube", rank)
        cubic = w.node("Mul", [constant("cubic", 0.044715), cube], f"{name}/cubic", rank)
        inner = w.node("Add", [x, cubic], f"{name}/inner", rank)
        scaled = w.node("Mul", [constant("slope", math.sqrt(2 / math.pi)), inner], f"{name}/scaled", rank)
        curve = w.node("Tanh", [scaled], f"{name}/tanh", rank)
    else:
        scaled = w.node("Div", [x, constant("sqrt2", math.sqrt(2))], f"{name}/scaled", rank)
        curve = w.node("Erf", [scaled], f"{name}/erf", rank)
    plus = w.node("Add", [curve, constant("one", 1.0)], f"{name}/plus_one", rank)
    times = w.node("Mul", [x, plus], f"{name}/times_x", rank)
    return w.node("Mul", [times, constant("half", 0.5)], name, rank)


def _layer_norm(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    """Over the last axis: of flat features as they are, of a map between Transposes to NHWC and back."""
    assert isinstance(layer.attrs, LayerNormAttrs)
    x, name = inputs[0], layer.name
    arrays = [w.array(f"{name}.{key}", w.params[f"{name}.{key}"]) for key in ("gamma", "beta")]
    if w.rank[x] == 2:
        return w.node("LayerNormalization", [x, *arrays], name, 2, axis=-1, epsilon=layer.attrs.eps)
    nhwc = w.node("Transpose", [x], f"{name}/to_nhwc", 4, perm=[0, 2, 3, 1])
    normed = w.node(
        "LayerNormalization", [nhwc, *arrays], f"{name}/nhwc", 4, name=name, axis=-1, epsilon=layer.attrs.eps
    )
    return w.node("Transpose", [normed], name, 4, name=f"{name}/to_nchw", perm=[0, 3, 1, 2])


def _pad(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    a: Any = layer.attrs  # PadAttrs: top, bottom, left, right, mode, value
    sides = np.array([0, 0, a.top, a.left, 0, 0, a.bottom, a.right], np.int64)
    pads = w.array(f"{layer.name}.pads", sides)
    value = w.array(f"{layer.name}.value", np.array(a.value, np.float32))
    return w.node("Pad", [w.nchw(inputs[0]), pads, value], layer.name, 4, mode=a.mode)


def _slice(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    a: Any = layer.attrs  # SliceAttrs: start, end
    starts = w.array(f"{layer.name}.starts", np.array([a.start], np.int64))
    ends = w.array(f"{layer.name}.ends", np.array([a.end], np.int64))
    axes = w.array(f"{layer.name}.axes", np.array([1], np.int64))
    return w.node("Slice", [w.nchw(inputs[0]), starts, ends, axes], layer.name, 4)


def _channel_shuffle(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    """PyTorch's spelling: (N, C, H, W) viewed as (N, g, C/g, H, W), its two group axes swapped, viewed back."""
    h, wd, c = layer.input_shape
    groups = layer.attrs.groups  # type: ignore[attr-defined]
    grouped = w.array(f"{layer.name}.grouped", np.array([-1, groups, c // groups, h, wd], np.int64))
    back = w.array(f"{layer.name}.shape", np.array([-1, c, h, wd], np.int64))
    x = w.node("Reshape", [w.nchw(inputs[0]), grouped], f"{layer.name}/grouped", 5)
    x = w.node("Transpose", [x], f"{layer.name}/swapped", 5, perm=[0, 2, 1, 3, 4])
    return w.node("Reshape", [x, back], layer.name, 4)


def _mish(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    """x * tanh(softplus(x)): opset 17 has no Mish (18 has); hwsim reads the three back as one mish."""
    x, rank = inputs[0], w.rank[inputs[0]]
    softplus = w.node("Softplus", [x], f"{layer.name}/softplus", rank)
    return w.node("Mul", [x, w.node("Tanh", [softplus], f"{layer.name}/tanh", rank)], layer.name, rank)


def _prelu(w: _Writer, layer: Layer, inputs: list[str]) -> str:
    """The slopes (C, 1, 1) on a map, as PyTorch writes them ((C,) on flat features); one shared slope (1,)."""
    x, rank = inputs[0], w.rank[inputs[0]]
    slope = w.params[f"{layer.name}.slope"]
    shape = (slope.size, 1, 1)[: rank - 1] if slope.size > 1 else (1,)
    return w.node("PRelu", [x, w.array(f"{layer.name}.slope", slope.reshape(shape))], layer.name, rank)


WRITERS: dict[str, Callable[[_Writer, Layer, list[str]], str]] = {
    "conv": _conv,
    "dwconv": _conv,
    "batchnorm": _batchnorm,
    "relu": _same_rank("Relu"),
    "maxpool": _pool,
    "avgpool": _pool,
    "global_avg_pool": lambda w, layer, inputs: w.node("GlobalAveragePool", [w.nchw(inputs[0])], layer.name, 4),
    "dense": _dense,
    "flatten": _flatten,
    "softmax": _same_rank("Softmax", axis=1),
    "dropout": _dropout,
    "lrn": _lrn,
    "add": _same_rank("Add"),
    "concat": _same_rank("Concat", axis=1),
    "upsample": _upsample,
    "clip": _clip,
    "leaky_relu": _scalars("LeakyRelu", "alpha"),
    "sigmoid": _same_rank("Sigmoid"),
    "hard_sigmoid": _scalars("HardSigmoid", "alpha", "beta"),
    "hard_swish": _same_rank("HardSwish"),
    "mul": _same_rank("Mul"),
    "pad": _pad,
    "identity": _same_rank("Identity"),
    "slice": _slice,
    "channel_shuffle": _channel_shuffle,
    "scale": _scale,
    "gelu": _gelu,
    "layer_norm": _layer_norm,
    "conv_transpose": _conv_transpose,
    "tanh": _same_rank("Tanh"),
    "elu": _scalars("Elu", "alpha"),
    "selu": _scalars("Selu", "alpha", "gamma"),
    "softplus": _same_rank("Softplus"),
    "mish": _mish,
    "prelu": _prelu,
    "global_max_pool": lambda w, layer, inputs: w.node("GlobalMaxPool", [w.nchw(inputs[0])], layer.name, 4),
}
"""hwsim op -> what writes it: its node(s), from the layer, its inputs' tensors and the arrays."""


def _check_size(graph: Graph, params: Arrays, state: Arrays) -> None:
    total = sum(a.nbytes for a in params.values()) + sum(a.nbytes for a in state.values())
    if total >= MAX_MODEL_BYTES:
        raise InputError(
            f"{graph.name}: {total:,} bytes of weights, more than the {MAX_MODEL_BYTES:,} one ONNX file holds"
        )


def _output_info(onnx: Any, w: _Writer, tensor: str, layer: Layer) -> Any:
    """A graph output: every layer no other reads is one (a detector's heads), else ONNX would drop it as dead."""
    ho, wo, co = layer.output_shape
    dims: list[int | str] = ["N", co, ho, wo] if w.rank[tensor] == 4 else ["N", co]
    return onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, dims)


def export_onnx(graph: Graph, params: Arrays, state: Arrays, metadata: dict[str, str] | None = None) -> Any:
    """``graph`` with the reference's ``params`` and ``state`` (float32) as an ``onnx.ModelProto``."""
    onnx = require_onnx("export")
    missing = [layer.op.value for layer in graph.layers if layer.op.value not in WRITERS]
    if missing:
        raise InputError(f"{graph.name}: no ONNX export for op(s) {', '.join(sorted(set(missing)))}")
    _check_size(graph, params, state)
    as32 = {k: v.astype(np.float32) for k, v in params.items()}
    w = _Writer(onnx, as32, {k: v.astype(np.float32) for k, v in state.items()})
    h, wd, c = graph.input_shape
    w.rank[INPUT] = 4
    tensors = {INPUT: INPUT}
    for layer in graph.layers:
        tensors[layer.name] = WRITERS[layer.op.value](w, layer, [tensors[name] for name in layer.inputs])
    float_type = onnx.TensorProto.FLOAT
    model_graph = onnx.helper.make_graph(
        w.nodes,
        graph.name,
        [onnx.helper.make_tensor_value_info(INPUT, float_type, ["N", c, h, wd])],
        [
            _output_info(onnx, w, tensors[layer.name], layer)
            for layer in graph.layers
            if not graph.consumers(layer.name)
        ],
        w.initializers,
    )
    model = onnx.helper.make_model(
        model_graph,
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="hwsim",
        producer_version=_hwsim_version(),
        doc_string=f"hwsim network {graph.name}: input NCHW (N, {c}, {h}, {wd})",
    )
    model.ir_version = onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", OPSET)])
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model
