"""Algorithm 2 of the paper as a cost transform: inference batch norm folded into the conv before it.

At inference a batch norm is a per-channel affine map, so ``bn(conv(x)) = conv'(x)`` with weights
scaled by gamma / sqrt(var + eps) and a bias beta - mean * gamma / sqrt(var + eps). The folded
conv gains a bias (C_out values) and the batch norm's ops and its 4 x C values disappear. Only a
batch norm that is the sole reader of a conv can fold; the rest stay as they are.
"""

from __future__ import annotations

from dataclasses import replace

from hwsim.cost.inference import LayerCost, layer_cost
from hwsim.model.graph import consumers_of
from hwsim.ops import ConvAttrs, Op
from hwsim.spec.hardware import HardwareSpec


def fold_batchnorm(
    costs: tuple[LayerCost, ...], hardware: HardwareSpec
) -> tuple[tuple[LayerCost, ...], dict[str, str]]:
    """The costs with every foldable batch norm folded, and {conv name: batch norm folded into it}."""
    consumers = consumers_of(c.layer for c in costs)
    by_name = {c.name: c for c in costs}
    folded: dict[str, str] = {}
    for c in costs:
        source = by_name.get(c.layer.inputs[0])
        if (
            c.layer.op is Op.BATCHNORM
            and source
            and source.layer.op in (Op.CONV, Op.DWCONV)
            and consumers[source.name] == (c.layer,)
        ):
            folded[source.name] = c.name
    renamed = {bn: conv for conv, bn in folded.items()}
    result = []
    for c in costs:
        layer = c.layer
        if layer.name in renamed:
            continue
        if layer.name not in folded and not any(name in renamed for name in layer.inputs):
            result.append(c)
            continue
        # a conv that gains a bias may itself read a folded batch norm (conv, bn, conv, bn): both changes apply
        layer = replace(layer, inputs=tuple(renamed.get(name, name) for name in layer.inputs))
        if layer.name in folded:
            attrs = layer.attrs
            assert isinstance(attrs, ConvAttrs)
            extra = 0 if attrs.bias else layer.output_shape[2]
            layer = replace(layer, attrs=replace(attrs, bias=True), params=layer.params + extra)
        result.append(layer_cost(layer, hardware, c.counting, c.batch, c.precision, c.weights_resident))
    return tuple(result), folded
