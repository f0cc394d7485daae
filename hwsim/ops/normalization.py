"""batchnorm, lrn and layer_norm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, FiniteFloat, field_validator

from hwsim.ops.base import (
    Attrs,
    Channels,
    Chunks,
    GradientFlow,
    LayerEntry,
    Op,
    OpTraits,
    PositiveInt,
    Rows,
    Shape,
    Unit,
    backward_per_output,
    elements,
    no_params,
    outputs,
    per_output,
    same_shape,
)

if TYPE_CHECKING:
    from hwsim.model.graph import Layer


@dataclass(frozen=True)
class BatchNormAttrs(Attrs):
    eps: float
    momentum: float


class BatchNormLayer(LayerEntry):
    op: Literal["batchnorm"]
    eps: FiniteFloat = Field(1e-5, gt=0)
    momentum: FiniteFloat = Field(0.1, gt=0, le=1, description="running = (1-m)*running + m*batch")

    def attrs(self, input_shape: Shape) -> BatchNormAttrs:
        return BatchNormAttrs(self.eps, self.momentum)


@dataclass(frozen=True)
class LrnAttrs(Attrs):
    """Across-channel local response normalisation (AlexNet): x / (k + alpha/size * sum x^2)^beta.

    The sum runs over ``size`` neighbouring channels centred on c, truncated at the edges.
    """

    size: int
    alpha: float
    beta: float
    k: float


class LrnLayer(LayerEntry):
    op: Literal["lrn"]
    size: PositiveInt = Field(5, description="channels in the window, centred: odd")
    alpha: FiniteFloat = Field(1e-4, gt=0)
    beta: FiniteFloat = Field(0.75, gt=0)
    k: FiniteFloat = Field(2.0, gt=0)

    @field_validator("size")
    @classmethod
    def _odd(cls, size: int) -> int:
        if size % 2 == 0:
            raise ValueError(f"size must be odd (a window centred on its channel), got {size}")
        return size

    def attrs(self, input_shape: Shape) -> LrnAttrs:
        return LrnAttrs(self.size, self.alpha, self.beta, self.k)


@dataclass(frozen=True)
class LayerNormAttrs(Attrs):
    """Layer norm over the C channels of each pixel (ConvNeXt's LayerNorm2d, PyTorch's LayerNorm on channels-last
    maps): (x - mean) / sqrt(var + eps) * gamma + beta, mean and var of that pixel's channels."""

    eps: float


class LayerNormLayer(LayerEntry):
    op: Literal["layer_norm"]
    eps: FiniteFloat = Field(1e-5, gt=0, description="added to the variance (PyTorch's default; ConvNeXt uses 1e-6)")

    def attrs(self, input_shape: Shape) -> LayerNormAttrs:
        return LayerNormAttrs(self.eps)


def _batchnorm_params(attrs: Attrs, inputs: tuple[Shape, ...]) -> tuple[int, int]:
    """2 parameters per channel (gamma, beta), as the paper counts, and 2 of state (running mean and variance)."""
    c = inputs[0][2]
    return 2 * c, 2 * c


def _layer_norm_params(attrs: Attrs, inputs: tuple[Shape, ...]) -> tuple[int, int]:
    """gamma and beta per channel; no state (the statistics are each pixel's own, at inference too)."""
    return 2 * inputs[0][2], 0


def _per_channel_values(layer: Layer, batch: int) -> tuple[int, int]:
    """(m, C) of a batch norm: values averaged per channel, and channels."""
    h, w, c = layer.output_shape
    return batch * h * w, c


def _exact_batchnorm(layer: Layer, batch: int) -> tuple[int, int]:
    """(x - mean) / sqrt(var + eps) * gamma + beta: 4 per element; var + eps and sqrt once per channel."""
    return 0, 4 * elements(layer.output_shape) * batch + 2 * layer.output_shape[2]


def _forward_train_batchnorm(layer: Layer, batch: int, flow: GradientFlow | None) -> int:
    """Batch mean and variance, normalise, scale and shift, update the running averages.

    sum x, /m, x - mu, (x - mu)^2, sum, /m, + eps, sqrt, divide, *gamma, +beta: 5N + 2(m-1)C + 4C;
    running mean and variance, (1 - momentum) r + momentum s: 3C each.
    """
    m, c = _per_channel_values(layer, batch)
    return 5 * outputs(layer, batch) + 2 * (m - 1) * c + 10 * c


def _backward_batchnorm(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dbeta = sum dy, dgamma = sum dy*x̂: N + 2(m-1)C; dx = gamma/std * (dy - dbeta/m - x̂ dgamma/m): 4N + 3C."""
    m, c = _per_channel_values(layer, batch)
    n = outputs(layer, batch)
    return n + 2 * (m - 1) * c + (4 * n + 3 * c if flow.input_grads[0] else 0)


def _pixels(layer: Layer, batch: int) -> int:
    """Pixels of the whole batch: each is normalised over its own channels."""
    h, w, _ = layer.output_shape
    return batch * h * w


def _exact_layer_norm(layer: Layer, batch: int) -> tuple[int, int]:
    """Per pixel: sum over C and / C for the mean, x - mean, its square, sum and / C for the variance ((C - 1) + 1
    twice), + eps and sqrt once; per element the subtract, square, divide, times gamma, plus beta: 7N + 2P."""
    return 0, 7 * outputs(layer, batch) + 2 * _pixels(layer, batch)


def _backward_layer_norm(layer: Layer, batch: int, flow: GradientFlow) -> int:
    """dbeta = sum dy, dgamma = sum dy·x̂ over the P pixels: N + 2(P - 1)C. dx = (g - mean g - x̂·mean(g·x̂)) / std,
    g = dy·gamma, means over each pixel's channels: g, mean g (C - 1 adds, / C), g·x̂, its mean, x̂ times it, two
    subtracts, the divide: 8N."""
    n, c = outputs(layer, batch), layer.output_shape[2]
    return n + 2 * (_pixels(layer, batch) - 1) * c + (8 * n if flow.input_grads[0] else 0)


def _lrn_size(layer: Layer) -> int:
    assert isinstance(layer.attrs, LrnAttrs)
    return layer.attrs.size


TRAITS = (
    OpTraits(
        op=Op.BATCHNORM,
        layer=BatchNormLayer,
        shape=same_shape,
        params=_batchnorm_params,
        exact=_exact_batchnorm,
        paper=per_output(lambda layer: 4),  # with its ReLU: the appendix's 5 per element
        forward_train=_forward_train_batchnorm,
        backward=_backward_batchnorm,
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.SAME,
        chunks=Chunks.ANY,
        streams=True,
        fuses=False,
    ),
    OpTraits(
        op=Op.LRN,
        layer=LrnLayer,
        shape=same_shape,
        params=no_params,
        # square, (size-1) adds of shifted squares, then k + alpha/size*s, pow, divide
        exact=per_output(lambda layer: _lrn_size(layer) + 4),
        # dy*y/d (2), the reflected window sum (size - 1), dy/d^beta, x*sum, *2*alpha*beta/size, subtract (4)
        backward=backward_per_output(lambda layer: _lrn_size(layer) + 5),
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.NEIGHBOURS,
        chunks=Chunks.NO,
        streams=True,
        fuses=False,
    ),
    OpTraits(
        op=Op.LAYER_NORM,
        layer=LayerNormLayer,
        shape=same_shape,
        params=_layer_norm_params,
        exact=_exact_layer_norm,
        backward=_backward_layer_norm,
        unit=Unit.VECTOR,
        rows=Rows.SAME,
        channels=Channels.ALL,
        chunks=Chunks.NO,
        streams=True,
        fuses=False,
    ),
)
