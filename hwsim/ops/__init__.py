"""Op kinds and their traits: the vocabulary every stage reads, one table for every op.

:data:`TRAITS` holds one :class:`OpTraits` per :class:`Op`, declared in the module of its family
(``conv``, ``pool``, ``dense``, ``elementwise``, ``normalization``, ``merge``, ``resize``, ``channels``). An
import-time check
refuses a table that misses an op; a missing trait is a missing constructor argument. Adding an op:
docs/adding-an-op.md.
"""

from __future__ import annotations

from typing import Literal, get_args, get_origin

from hwsim.ops import channels, conv, convtranspose, dense, elementwise, merge, normalization, pool, resize
from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    CostRule,
    GradientFlow,
    LayerEntry,
    NoAttrs,
    NonNegativeInt,
    Op,
    OpTraits,
    PositiveInt,
    Rows,
    Shape,
    ShapeError,
    Unit,
    elements,
)
from hwsim.ops.channels import ChannelShuffleAttrs, SliceAttrs
from hwsim.ops.conv import ConvAttrs, depthwise_transposed_gradient
from hwsim.ops.convtranspose import ConvTransposeAttrs
from hwsim.ops.dense import DenseAttrs
from hwsim.ops.elementwise import (
    HARD_SWISH,
    SELU,
    SOFTPLUS_THRESHOLD,
    ClipAttrs,
    DropoutAttrs,
    EluAttrs,
    GeluAttrs,
    HardSigmoidAttrs,
    LeakyReluAttrs,
    PReluAttrs,
    ScaleAttrs,
    SeluAttrs,
)
from hwsim.ops.normalization import BatchNormAttrs, LayerNormAttrs, LrnAttrs
from hwsim.ops.pool import PoolAttrs
from hwsim.ops.resize import PadAttrs, Taps, UpsampleAttrs, bilinear_taps, padded_source
from hwsim.ops.window import Padding, Window, overlapping, resolve_padding

FAMILIES = (conv, pool, dense, elementwise, normalization, merge, resize, channels, convtranspose)
"""The modules that declare ops, each in a tuple ``TRAITS``."""


def problems(traits: tuple[OpTraits, ...]) -> list[str]:
    """What is wrong with a table of traits: an op missing or declared twice, or a layer model that
    cannot build its attributes or does not accept its op. Empty: the table is complete."""
    found = []
    declared = [t.op for t in traits]
    found += [f"op {op.value!r} has no traits" for op in Op if op not in declared]
    found += [f"op {op.value!r} is declared {declared.count(op)} times" for op in Op if declared.count(op) > 1]
    for t in traits:
        if t.layer.__abstractmethods__:
            found.append(f"op {t.op.value!r}: {t.layer.__name__} does not build its attrs")
        annotation = t.layer.model_fields["op"].annotation
        if get_origin(annotation) is Literal and t.op.value not in get_args(annotation):
            found.append(f"op {t.op.value!r}: {t.layer.__name__} accepts op {get_args(annotation)}")
    return found


def _table() -> dict[Op, OpTraits]:
    traits = tuple(t for family in FAMILIES for t in family.TRAITS)
    found = problems(traits)
    if found:
        raise TypeError("incomplete op traits: " + "; ".join(found))
    return {t.op: t for t in traits}


TRAITS: dict[Op, OpTraits] = _table()


def infer_output_shape(op: Op, attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    """Output shape of ``op`` applied to ``inputs``; raises :class:`ShapeError` if it cannot apply."""
    return TRAITS[op].shape(attrs, inputs)


def count_params(op: Op, attrs: Attrs, inputs: tuple[Shape, ...]) -> tuple[int, int]:
    """(trainable parameters, non-trainable state) of one layer."""
    return TRAITS[op].params(attrs, inputs)


__all__ = [
    "FAMILIES",
    "HARD_SWISH",
    "TRAITS",
    "Attrs",
    "BatchNormAttrs",
    "ChannelShuffleAttrs",
    "Channels",
    "Chunks",
    "ClipAttrs",
    "ConvAttrs",
    "ConvTransposeAttrs",
    "CostRule",
    "DenseAttrs",
    "DropoutAttrs",
    "GeluAttrs",
    "GradientFlow",
    "HardSigmoidAttrs",
    "LayerEntry",
    "LayerNormAttrs",
    "LeakyReluAttrs",
    "ScaleAttrs",
    "LrnAttrs",
    "NoAttrs",
    "NonNegativeInt",
    "Op",
    "OpTraits",
    "PadAttrs",
    "Padding",
    "PoolAttrs",
    "PositiveInt",
    "Rows",
    "Shape",
    "ShapeError",
    "SliceAttrs",
    "Taps",
    "Unit",
    "UpsampleAttrs",
    "SELU",
    "SOFTPLUS_THRESHOLD",
    "EluAttrs",
    "PReluAttrs",
    "SeluAttrs",
    "Window",
    "bilinear_taps",
    "count_params",
    "depthwise_transposed_gradient",
    "elements",
    "infer_output_shape",
    "overlapping",
    "padded_source",
    "problems",
    "resolve_padding",
]
