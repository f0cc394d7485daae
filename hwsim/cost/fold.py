"""Algorithm 2 of the paper as a cost transform: inference batch norm folded into the conv before it.

At inference a batch norm is a per-channel affine map, so ``bn(conv(x)) = conv'(x)`` with weights
scaled by gamma / sqrt(var + eps) and a bias beta - mean * gamma / sqrt(var + eps). The folded
conv gains a bias (C_out values) and the batch norm's ops and its 4 x C values disappear. Only a
batch norm that is the sole reader of a conv can fold; the rest stay as they are.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from dataclasses import replace

from hwsim.cost.inference import LayerCost, recost
from hwsim.model.graph import consumers_of
from hwsim.ops import ConvAttrs, ConvTransposeAttrs, Op
from hwsim.spec.hardware import HardwareSpec

FOLDS_KEPT = 8
"""Folds kept for the next calls (:func:`fold_batchnorm`): ``optimized`` folds the same costs twice a run (to
schedule, then for the costs its steps refer to), and a sweep's points fold the same costs again."""

_folds: OrderedDict[object, tuple[tuple[LayerCost, ...], dict[str, str]]] = OrderedDict()


def fold_batchnorm(
    costs: tuple[LayerCost, ...], hardware: HardwareSpec, keep: Collection[str] = ()
) -> tuple[tuple[LayerCost, ...], dict[str, str]]:
    """The costs with every foldable batch norm folded (but those named in ``keep``), and {conv name:
    batch norm folded into it}. A fold depends on the costs, ``keep`` and which unit runs each op, nothing else
    of the hardware: one already made for those is given again (a copy of its dict: the caller's to change)."""
    key = (costs, frozenset(keep), tuple(hardware.unit_for(op) for op in {c.layer.op: None for c in costs}))
    found = _folds.get(key)
    if found is None:
        found = _folds[key] = _fold(costs, hardware, keep)
        if len(_folds) > FOLDS_KEPT:
            _folds.popitem(last=False)
    else:
        _folds.move_to_end(key)
    return found[0], dict(found[1])


def _fold(
    costs: tuple[LayerCost, ...], hardware: HardwareSpec, keep: Collection[str]
) -> tuple[tuple[LayerCost, ...], dict[str, str]]:
    consumers = consumers_of(c.layer for c in costs)
    by_name = {c.name: c for c in costs}
    folded: dict[str, str] = {}
    for c in costs:
        source = by_name.get(c.layer.inputs[0])
        if (
            c.layer.op is Op.BATCHNORM
            and c.name not in keep
            and source
            and source.layer.op in (Op.CONV, Op.DWCONV, Op.CONV_TRANSPOSE)
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
        # a reader of a folded batch norm reads its conv instead (a conv that folds its own batch norm too)
        layer = replace(layer, inputs=tuple(renamed.get(name, name) for name in layer.inputs))
        if layer.name in folded:
            attrs = layer.attrs
            assert isinstance(attrs, (ConvAttrs, ConvTransposeAttrs))
            extra = 0 if attrs.bias else layer.output_shape[2]
            layer = replace(layer, attrs=replace(attrs, bias=True), params=layer.params + extra)
        again = recost(c, hardware, layer)
        # a conv that folds its batch norm writes the batch norm's map, coded as that map is
        bn = by_name.get(folded.get(layer.name, ""))
        result.append(replace(again, output_link=bn.output_link) if bn is not None else again)
    return tuple(result), folded
