"""Activations (relu, clip, leaky_relu, sigmoid, hard_sigmoid, hard_swish, gelu, tanh, elu, selu, softplus,
mish, prelu), dropout, identity and scale (an affine map by constants): each output element reads the input
element at its place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, FiniteFloat, StrictBool, model_validator

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    GradientFlow,
    LayerEntry,
    Op,
    OpTraits,
    PlainEntry,
    Rows,
    Shape,
    ShapeError,
    Unit,
    backward_per_output,
    no_params,
    outputs,
    per_output,
    same_shape,
)

if TYPE_CHECKING:
    from hwsim.model.graph import Layer


@dataclass(frozen=True)
class DropoutAttrs(Attrs):
    rate: float


class DropoutLayer(LayerEntry):
    op: Literal["dropout"]
    rate: FiniteFloat = Field(0.5, ge=0, lt=1)

    def attrs(self, input_shape: Shape) -> DropoutAttrs:
        return DropoutAttrs(self.rate)


@dataclass(frozen=True)
class ClipAttrs(Attrs):
    """y = min(max(x, min), max); ReLU6 is the default."""

    min: float
    max: float


class ClipLayer(LayerEntry):
    op: Literal["clip"]
    min: float = Field(0.0, description="lower bound; -.inf for none")
    max: float = Field(6.0, description="upper bound; .inf for none")

    @model_validator(mode="after")
    def _ordered(self) -> ClipLayer:
        if not self.min <= self.max:  # also refuses NaN
            raise ValueError(f"clip needs min <= max, got min {self.min} and max {self.max}")
        return self

    def attrs(self, input_shape: Shape) -> ClipAttrs:
        return ClipAttrs(self.min, self.max)


@dataclass(frozen=True)
class LeakyReluAttrs(Attrs):
    """y = x where x > 0, else alpha * x."""

    alpha: float


class LeakyReluLayer(LayerEntry):
    op: Literal["leaky_relu"]
    alpha: FiniteFloat = 0.01

    def attrs(self, input_shape: Shape) -> LeakyReluAttrs:
        return LeakyReluAttrs(self.alpha)


@dataclass(frozen=True)
class HardSigmoidAttrs(Attrs):
    """y = max(0, min(1, alpha * x + beta)); PyTorch's hardsigmoid is the default (ONNX's default alpha is 0.2)."""

    alpha: float
    beta: float


HARD_SWISH = HardSigmoidAttrs(1 / 6, 0.5)
"""hard_swish is x * hard_sigmoid(x) with these, as ONNX HardSwish and PyTorch's hardswish define it."""


class HardSigmoidLayer(LayerEntry):
    op: Literal["hard_sigmoid"]
    alpha: FiniteFloat = HARD_SWISH.alpha
    beta: FiniteFloat = HARD_SWISH.beta

    def attrs(self, input_shape: Shape) -> HardSigmoidAttrs:
        return HardSigmoidAttrs(self.alpha, self.beta)


@dataclass(frozen=True)
class ScaleAttrs(Attrs):
    """y = x * scale + shift, each one value for every element or one per channel (a tuple of C)."""

    scale: tuple[float, ...]
    shift: tuple[float, ...]

    @property
    def multiplies(self) -> bool:
        return any(v != 1.0 for v in self.scale)

    @property
    def adds(self) -> bool:
        return any(v != 0.0 for v in self.shift)


Constants = FiniteFloat | tuple[FiniteFloat, ...]


class ScaleLayer(LayerEntry):
    """An element-wise affine map by constants: an input normalisation ``(x - mean) / std``, ``x * 0.5``, a
    layer scale. The constants are attributes, like clip's bounds: not trained, and counted neither as
    parameters nor as state (docs/onnx.md says why)."""

    op: Literal["scale"]
    scale: Constants = Field(1.0, description="the factor: one value, or one per channel")
    shift: Constants = Field(0.0, description="added after the factor: one value, or one per channel")

    def attrs(self, input_shape: Shape) -> ScaleAttrs:
        scale, shift = (tuple(map(float, v)) if isinstance(v, tuple) else (float(v),) for v in (self.scale, self.shift))
        return ScaleAttrs(scale, shift)


@dataclass(frozen=True)
class GeluAttrs(Attrs):
    """y = x * Φ(x), Φ the standard normal CDF (``none``: through erf), or PyTorch's ``tanh`` approximation of it."""

    approximate: str


class GeluLayer(LayerEntry):
    op: Literal["gelu"]
    approximate: Literal["none", "tanh"] = Field("none", description="as PyTorch: none (erf) or tanh")

    def attrs(self, input_shape: Shape) -> GeluAttrs:
        return GeluAttrs(self.approximate)


def _gelu_tanh(layer: Layer) -> bool:
    assert isinstance(layer.attrs, GeluAttrs)
    return layer.attrs.approximate == "tanh"


def _gelu_forward(layer: Layer) -> int:
    """erf: x / √2, erf, + 1, / 2, times x (5). tanh: u = (k + k·c·x²)·x (x², times, plus, times), tanh, + 1, / 2,
    times x (8)."""
    return 8 if _gelu_tanh(layer) else 5


def _gelu_backward(layer: Layer) -> int:
    """erf: dy·(Φ + x·φ), φ = exp(−x²/2)/√(2π): x², times, exp, times, times x, plus Φ, times dy (7).
    tanh: dy·(s + x·s·(1 − t)·u'), u' = k + 3k·c·x² from the x² kept: times, plus, 1 − t, times s, times x,
    times u', plus s, times dy (8)."""
    return 8 if _gelu_tanh(layer) else 7


@dataclass(frozen=True)
class EluAttrs(Attrs):
    """y = x where x > 0, else alpha * (exp(x) - 1)."""

    alpha: float


class EluLayer(LayerEntry):
    op: Literal["elu"]
    alpha: FiniteFloat = Field(1.0, ge=0, description="the value -alpha that negative inputs saturate to")

    def attrs(self, input_shape: Shape) -> EluAttrs:
        return EluAttrs(self.alpha)


@dataclass(frozen=True)
class SeluAttrs(Attrs):
    """y = gamma * (x where x > 0, else alpha * (exp(x) - 1)); the defaults are the self-normalising constants."""

    alpha: float
    gamma: float


SELU = SeluAttrs(1.6732632423543772, 1.0507009873554805)
"""Klambauer et al.'s constants, as PyTorch's selu fixes them and ONNX's Selu defaults to them (in float32)."""


class SeluLayer(LayerEntry):
    op: Literal["selu"]
    alpha: FiniteFloat = Field(SELU.alpha, gt=0)
    gamma: FiniteFloat = Field(SELU.gamma, gt=0)

    def attrs(self, input_shape: Shape) -> SeluAttrs:
        return SeluAttrs(self.alpha, self.gamma)


SOFTPLUS_THRESHOLD = 20.0
"""softplus(x) is x above this (PyTorch's threshold): exp(x) would overflow, and in float32 log(1 + exp(x)) is x
there already."""


@dataclass(frozen=True)
class PReluAttrs(Attrs):
    """y = x where x > 0, else slope * x, the slopes trained: one per channel, or one shared by every channel."""

    shared: bool


class PReluLayer(LayerEntry):
    op: Literal["prelu"]
    shared: StrictBool = Field(False, description="one slope for every channel (nn.PReLU()); else one per channel")

    def attrs(self, input_shape: Shape) -> PReluAttrs:
        return PReluAttrs(self.shared)


def _slopes(attrs: Attrs, inputs: tuple[Shape, ...]) -> int:
    assert isinstance(attrs, PReluAttrs)
    return 1 if attrs.shared else inputs[0][2]


def _prelu_params(attrs: Attrs, inputs: tuple[Shape, ...]) -> tuple[int, int]:
    return _slopes(attrs, inputs), 0


def _prelu_backward(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dslope = sum of dy * x where x <= 0, per slope: N products and N - slopes adds; dx = dy * slope: N."""
    n = outputs(layer, batch)
    return 2 * n - _slopes(layer.attrs, layer.input_shapes) + (n if flow.input_grads[0] else 0)


def _scale_shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    assert isinstance(attrs, ScaleAttrs)
    channels = inputs[0][2]
    for name, values in (("scale", attrs.scale), ("shift", attrs.shift)):
        if len(values) not in (1, channels):
            raise ShapeError(f"scale: {name} has {len(values)} values for a map of {channels} channels")
    return inputs[0]


def _scale_ops(layer: Layer) -> int:
    """A multiply where some factor is not 1, an add where some shift is not 0."""
    attrs = layer.attrs
    assert isinstance(attrs, ScaleAttrs)
    return int(attrs.multiplies) + int(attrs.adds)


def _scale_backward(layer: Layer) -> int:
    """dx = dy * scale (the constants get no gradient)."""
    assert isinstance(layer.attrs, ScaleAttrs)
    return int(layer.attrs.multiplies)


def _forward_train_dropout(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    """keep = u >= rate, mask = keep / (1 - rate), y = x * mask: 3N (drawing u is not counted)."""
    return 3 * outputs(layer, batch)


def _pointwise(
    op: Op, layer: type[LayerEntry], forward: int | Callable[[Layer], int], backward: int | Callable[[Layer], int]
) -> OpTraits:
    """An op that maps each element on its own, ``forward`` and ``backward`` ops per element (or functions of the
    layer giving them, where its attributes choose the arithmetic), counted exactly under either convention."""
    return OpTraits(
        op=op,
        layer=layer,
        shape=same_shape,
        params=no_params,
        exact=per_output(forward if callable(forward) else lambda layer: forward),
        backward=backward_per_output(backward if callable(backward) else lambda layer: backward),
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    )


TRAITS = (
    OpTraits(
        op=Op.RELU,
        layer=PlainEntry,
        shape=same_shape,
        params=no_params,
        exact=per_output(lambda layer: 1),
        paper=per_output(lambda layer: 1),
        backward=backward_per_output(lambda layer: 2),  # y > 0, times dy
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    ),
    # max, min; backward: y == x (inside the bounds, edges included), times dy
    _pointwise(Op.CLIP, ClipLayer, forward=2, backward=2),
    # x > 0, the slope it selects (1 or alpha) times x; backward: that slope times dy
    _pointwise(Op.LEAKY_RELU, LeakyReluLayer, forward=2, backward=1),
    # 1 / (1 + exp(-x)): negate, exp, add, divide; backward: dy * y * (1 - y)
    _pointwise(Op.SIGMOID, PlainEntry, forward=4, backward=3),
    # alpha * x + beta, min, max; backward: y == alpha * x + beta (not saturated), times alpha, times dy
    _pointwise(Op.HARD_SIGMOID, HardSigmoidLayer, forward=4, backward=3),
    # the hard sigmoid s (4), x * s; backward: dy * (s + alpha * x where s is not saturated): ==, *, +, *
    _pointwise(Op.HARD_SWISH, PlainEntry, forward=5, backward=4),
    _pointwise(Op.IDENTITY, PlainEntry, forward=0, backward=0),
    # tanh, one transcendental like exp; backward: dy * (1 - y * y)
    _pointwise(Op.TANH, PlainEntry, forward=1, backward=3),
    # x > 0, exp, - 1, * alpha (x selected where positive); backward: dy * (1, or y + alpha where x <= 0)
    _pointwise(Op.ELU, EluLayer, forward=4, backward=2),
    # elu's 4 with gamma * alpha as one factor, gamma * x; backward: dy * (gamma, or y + gamma * alpha)
    _pointwise(Op.SELU, SeluLayer, forward=5, backward=2),
    # x > threshold, exp, + 1, log (x selected above the threshold); backward: dy * sigmoid, e / (1 + e) kept
    _pointwise(Op.SOFTPLUS, PlainEntry, forward=4, backward=2),
    # x * tanh(softplus(x)): softplus (4), tanh, * x; backward: dy * (t + x * (1 - t * t) * sigmoid): 7
    _pointwise(Op.MISH, PlainEntry, forward=6, backward=7),
    OpTraits(
        op=Op.PRELU,
        layer=PReluLayer,
        shape=same_shape,
        params=_prelu_params,
        exact=per_output(lambda layer: 2),  # x > 0, x times the slope it selects (1 or the channel's)
        backward=_prelu_backward,
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    ),
    _pointwise(Op.GELU, GeluLayer, forward=_gelu_forward, backward=_gelu_backward),
    OpTraits(
        op=Op.SCALE,
        layer=ScaleLayer,
        shape=_scale_shape,
        params=no_params,
        exact=per_output(_scale_ops),
        backward=backward_per_output(_scale_backward),
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    ),
    OpTraits(
        op=Op.DROPOUT,
        layer=DropoutLayer,
        shape=same_shape,
        params=no_params,
        exact=per_output(lambda layer: 0),  # identity at inference
        forward_train=_forward_train_dropout,
        backward=backward_per_output(lambda layer: 1),  # dy * mask
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=True,
    ),
)
