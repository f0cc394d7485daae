"""Graph transforms for the training experiments of Section 4.2: the same network without batch
norm, and the same network with one dense layer between global average pooling and the softmax.

Transforms take a :class:`Graph` and return a new one with the same layer names wherever a layer
survives, so curves and checkpoints of the variants stay comparable with the original's.
"""

from __future__ import annotations

from dataclasses import replace

from hwsim.errors import InputError
from hwsim.model.graph import Graph, Layer
from hwsim.ops import ConvAttrs, ConvTransposeAttrs, DenseAttrs, Op, count_params, infer_output_shape

DENSE_HEAD = "head"
"""Name of the dense layer :func:`with_dense_head` inserts."""


def without_batchnorm(graph: Graph) -> Graph:
    """``graph`` with every batch norm removed; its consumers read the batch norm's input instead.

    A convolution that fed a batch norm gets a bias, since the batch norm's shift (beta) was its
    bias; a network without batch norm and without biases would be a weaker straw man.
    """
    bypass = {layer.name: layer.inputs[0] for layer in graph.layers if layer.op is Op.BATCHNORM}
    if not bypass:
        raise InputError(f"{graph.name} has no batch norm to remove")
    layers = []
    for layer in graph.layers:
        if layer.op is Op.BATCHNORM:
            continue
        if any(consumer.op is Op.BATCHNORM for consumer in graph.consumers(layer.name)) and isinstance(
            layer.attrs, (ConvAttrs, ConvTransposeAttrs)
        ):
            layer = _with_attrs(layer, replace(layer.attrs, bias=True))
        layers.append(replace(layer, inputs=tuple(bypass.get(name, name) for name in layer.inputs)))
    return Graph(f"{graph.name}-no-bn", graph.input_shape, tuple(layers))


def with_dense_head(graph: Graph) -> Graph:
    """``graph`` with a dense layer (units = classes, with bias) between its last global average pool and softmax."""
    *body, softmax = graph.layers
    gap = body[-1] if body else None
    if softmax.op is not Op.SOFTMAX or gap is None or gap.op is not Op.GLOBAL_AVG_POOL or softmax.inputs != (gap.name,):
        raise InputError(
            f"{graph.name}: a dense head goes between global_avg_pool and softmax, and the network does not end in them"
        )
    classes = softmax.output_shape[2]
    attrs = DenseAttrs(units=classes, bias=True)
    inputs = (gap.output_shape,)
    params, state = count_params(Op.DENSE, attrs, inputs)
    shape = infer_output_shape(Op.DENSE, attrs, inputs)
    head = Layer(DENSE_HEAD, Op.DENSE, (gap.name,), inputs, shape, attrs, params, state, gap.where)
    return Graph(f"{graph.name}-dense-head", graph.input_shape, (*body, head, replace(softmax, inputs=(DENSE_HEAD,))))


def _with_attrs(layer: Layer, attrs: ConvAttrs | ConvTransposeAttrs) -> Layer:
    params, state = count_params(layer.op, attrs, layer.input_shapes)
    return replace(layer, attrs=attrs, params=params, state=state)
