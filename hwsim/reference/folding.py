"""Inference batch norm folded into the affine layer before it (Algorithm 2 of the paper, step 10).

With s = gamma / sqrt(running_var + eps) per channel, BN(conv(x)) = conv'(x) where
W' = W * s (scaling each output channel, the last weight axis; a transposed conv's output channel
g * C_out/groups + o is its axis 2 within group g of its last) and b' = (b - running_mean) * s + beta.
A one-off transform of the weights, done before inference: it is not counted as any pass's work.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.model.graph import INPUT, Graph, Layer
from hwsim.ops import BatchNormAttrs, ConvAttrs, ConvTransposeAttrs, DenseAttrs, Op
from hwsim.reference.base import param_key
from hwsim.reference.model import Model

FOLDABLE = frozenset({Op.CONV, Op.DWCONV, Op.DENSE, Op.CONV_TRANSPOSE})


def _foldable(graph: Graph, bn: Layer) -> Layer | None:
    """The conv or dense layer ``bn`` can fold into: its only input, read by ``bn`` alone."""
    (source,) = bn.inputs
    if source == INPUT or graph.consumers(source) != (bn,):
        return None
    producer = graph.layer(source)
    return producer if producer.op in FOLDABLE else None


def _per_weight(scale: np.ndarray, layer: Layer) -> np.ndarray:
    """The output channels' scales laid out as the layer's weight's trailing axes: the last for a conv or dense
    layer, (C_out/groups, C_in) for a transposed conv."""
    if not isinstance(layer.attrs, ConvTransposeAttrs):
        return scale
    c_in, groups = layer.input_shape[2], layer.attrs.groups
    per_out = layer.attrs.out_channels // groups
    return scale[(np.arange(c_in) // (c_in // groups))[None, :] * per_out + np.arange(per_out)[:, None]]


def fold_batchnorm(model: Model) -> Model:
    """A model without the batch norms that follow a conv, dwconv, conv_transpose or dense layer, computing the
    same inference.

    The affine layer keeps its name and gains a bias; layers that read the batch norm read it instead.
    Batch norms elsewhere stay as they are.
    """
    graph, params, state = model.graph, dict(model.params), dict(model.state)
    renamed: dict[str, str] = {}
    replaced: dict[str, Layer] = {}
    for bn in graph.layers:
        target = _foldable(graph, bn) if bn.op is Op.BATCHNORM else None
        if target is None:
            continue
        assert isinstance(bn.attrs, BatchNormAttrs)
        gamma, beta = params.pop(param_key(bn.name, "gamma")), params.pop(param_key(bn.name, "beta"))
        mean, var = state.pop(param_key(bn.name, "running_mean")), state.pop(param_key(bn.name, "running_var"))
        scale = gamma / np.sqrt(var + bn.attrs.eps)
        weight, bias = param_key(target.name, "weight"), param_key(target.name, "bias")
        params[weight] = params[weight] * _per_weight(scale, target)
        params[bias] = (params.get(bias, 0.0) - mean) * scale + beta
        channels, conv = target.output_shape[2], target.attrs
        assert isinstance(conv, (ConvAttrs, ConvTransposeAttrs, DenseAttrs))
        replaced[target.name] = dataclasses.replace(
            target,
            attrs=dataclasses.replace(conv, bias=True),
            params=target.params + (0 if conv.bias else channels),
        )
        renamed[bn.name] = target.name
    layers = tuple(
        dataclasses.replace(
            replaced.get(layer.name, layer), inputs=tuple(renamed.get(name, name) for name in layer.inputs)
        )
        for layer in graph.layers
        if layer.name not in renamed
    )
    folded = Graph(graph.name, graph.input_shape, layers)
    return Model(folded, dtype=model.dtype, params=params, state=state)
