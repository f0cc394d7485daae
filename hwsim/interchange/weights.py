"""An imported ONNX model's weights in the reference's layout, so the reference runs the model as it is.

The reader (:mod:`hwsim.spec.onnx_reader`) records, for every layer, which initializer holds which of its
arrays and in what layout; this module reads their data (external data too) and converts it:

- a Conv weight (C_out, C_in/groups, Kh, Kw) becomes (Kh, Kw, C_in/groups, C_out);
- a Gemm weight is (C_in, units), transposed first if the node had ``transB``, and multiplied by its ``alpha``
  (its bias by ``beta``);
- per-feature arrays that follow a flatten of a map (the next dense layer's rows, a batch norm over the
  flat features) are in ONNX's (c, h, w) order; hwsim flattens (h, w, c), so they are permuted. An
  exporter's Transpose to NHWC before the flatten (hwsim's own export) already gives hwsim's order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwsim.errors import InputError
from hwsim.model.graph import INPUT, Graph, Layer
from hwsim.ops import Op, Shape
from hwsim.reference.base import Arrays, param_key
from hwsim.spec.onnx_ops import ArraySource
from hwsim.spec.onnx_reader import OnnxNetwork

PER_FEATURE = frozenset(
    {"relu", "dropout", "batchnorm", "identity", "clip", "leaky_relu", "sigmoid", "hard_sigmoid", "hard_swish", "scale"}
    | {"gelu", "tanh", "elu", "selu", "softplus", "mish", "prelu"}
)
"""Ops that keep flat features feature by feature, so the order a flatten gave passes through them."""


def _flattened_map(graph: Graph, layer: Layer, network: OnnxNetwork) -> Shape | None:
    """The (H, W, C) map whose (c, h, w) flatten reaches ``layer``'s input, if the order needs permuting."""
    name = layer.inputs[0]
    while name != INPUT:
        source = graph.layer(name)
        if source.op is Op.FLATTEN:
            h, w, c = source.input_shape
            needs = h * w > 1 and c > 1 and not network.layers[source.name].hwc
            return source.input_shape if needs else None
        if source.op.value not in PER_FEATURE:
            return None
        name = source.inputs[0]
    return None


def _convert(value: np.ndarray, source: ArraySource, flattened: Shape | None) -> np.ndarray:
    """``value`` in the reference's layout; ``flattened``: the map whose features it is indexed by, if any."""
    if source.layout == "oihw":
        return value.transpose(2, 3, 1, 0)
    if source.layout == "io1x1":  # a MatMul's (C_in, C_out) over channels-last pixels: a 1x1 convolution
        return value.reshape(1, 1, *value.shape)
    if source.layout in ("io", "oi"):
        weight = value.T if source.layout == "oi" else value
        if flattened is not None:  # rows are the input features
            h, w, c = flattened
            weight = weight.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
        return weight
    vector = value.reshape(-1)
    if flattened is not None:
        h, w, c = flattened
        vector = vector.reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
    return vector


def onnx_weights(network: OnnxNetwork, graph: Graph, model: Any) -> tuple[Arrays, Arrays]:
    """(params, state) for :class:`hwsim.reference.Model` from ``model``'s initializers (the full model)."""
    from onnx import numpy_helper

    protos = {tensor.name: tensor for tensor in model.graph.initializer}
    params: Arrays = {}
    state: Arrays = {}
    for layer in graph.layers:
        source = network.layers[layer.name]
        flattened = _flattened_map(graph, layer, network) if source.arrays else None
        for array in source.arrays:
            if array.initializer not in protos:
                raise InputError(f"initializer {array.initializer!r} of node {source.node} is missing")
            value = numpy_helper.to_array(protos[array.initializer]).astype(np.float32)
            if array.factor != 1.0:  # Gemm's alpha and beta: the layer holds the scaled weights
                value = (value * np.float32(array.factor)).astype(np.float32)
            # not a dense layer's bias, nor one slope shared by every feature
            per_input_feature = (
                array.layout != "vector" or layer.op is Op.BATCHNORM or (layer.op is Op.PRELU and value.size > 1)
            )
            converted = _convert(value, array, flattened if per_input_feature else None)
            (state if array.state else params)[param_key(layer.name, array.key)] = converted
    return params, state
