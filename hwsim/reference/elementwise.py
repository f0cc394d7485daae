"""Ops that act per element or only move data: the activations (relu, clip, leaky_relu, sigmoid, hard_sigmoid,
hard_swish, gelu, tanh, elu, selu, softplus, mish, and prelu, whose slopes are parameters), dropout, identity,
scale, add, mul, concat, flatten, softmax."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from hwsim.ops import (
    HARD_SWISH,
    SOFTPLUS_THRESHOLD,
    ChannelShuffleAttrs,
    ClipAttrs,
    DropoutAttrs,
    EluAttrs,
    GeluAttrs,
    HardSigmoidAttrs,
    LeakyReluAttrs,
    PReluAttrs,
    ScaleAttrs,
    SeluAttrs,
    SliceAttrs,
)
from hwsim.reference import primitives as P
from hwsim.reference.base import Arrays, Kernel
from hwsim.reference.sweeps import rows_of


class Relu(Kernel):
    """y = max(x, 0); dx = dy * (y > 0).

    The forward runs block by block over wide rows (:mod:`hwsim.reference.sweeps`) against a block
    of zeros: two same-shaped operands take NumPy's SIMD maximum, a scalar 0 does not (2x slower).
    """

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        rows = rows_of(x.shape)
        x2, zeros = rows.view(x), rows.tile(np.zeros(x.shape[-1], x.dtype))
        y = np.empty_like(x2)
        for block in rows.blocks():
            P.maximum(x2[block], zeros[: len(y[block])], out=y[block])
        self.y = y.reshape(x.shape)
        return self.y

    def backward(self, dy, params, needs):
        # Memory-bound (dy and y in, dx out), so blocks gain nothing; np.where is 10x slower than the multiply.
        return [P.mul(dy, P.greater(self.y, 0))], {}


class Clip(Kernel):
    """y = min(max(x, min), max); dx = dy where y == x (inside the bounds, edges included), else 0."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        a = self.layer.attrs
        assert isinstance(a, ClipAttrs)
        y = P.minimum(P.maximum(x, np.asarray(a.min, x.dtype)), np.asarray(a.max, x.dtype))
        self.x, self.y = x, y
        return y

    def backward(self, dy, params, needs):
        return [P.mul(dy, P.equal(self.y, self.x))], {}


class LeakyRelu(Kernel):
    """y = x * slope, the slope 1 where x > 0 and alpha elsewhere (chosen, not computed); dx = dy * slope."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        a = self.layer.attrs
        assert isinstance(a, LeakyReluAttrs)
        self.slope = np.where(P.greater(x, 0), np.asarray(1, x.dtype), np.asarray(a.alpha, x.dtype))
        return P.mul(x, self.slope)

    def backward(self, dy, params, needs):
        return [P.mul(dy, self.slope)], {}


class Sigmoid(Kernel):
    """y = 1 / (1 + exp(-x)); dx = dy * y * (1 - y). Very negative x: exp(-x) is inf and y is 0, as it should be."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        with np.errstate(over="ignore"):
            e = P.exp(P.negative(x))
        self.y = P.div(np.asarray(1, x.dtype), P.add(e, np.asarray(1, x.dtype), out=e), out=e)
        return self.y

    def backward(self, dy, params, needs):
        return [P.mul(dy, P.mul(self.y, P.sub(np.asarray(1, dy.dtype), self.y)))], {}


def _hard_sigmoid(x: np.ndarray, attrs: HardSigmoidAttrs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha * x, alpha * x + beta, its clip to [0, 1]): 4 ops per element."""
    scaled = P.mul(x, np.asarray(attrs.alpha, x.dtype))
    line = P.add(scaled, np.asarray(attrs.beta, x.dtype))
    return scaled, line, P.maximum(P.minimum(line, np.asarray(1, x.dtype)), np.asarray(0, x.dtype))


class HardSigmoid(Kernel):
    """y = max(0, min(1, alpha * x + beta)); dx = dy * alpha where y is not saturated (y equals the line)."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        assert isinstance(self.layer.attrs, HardSigmoidAttrs)
        _, self.line, self.y = _hard_sigmoid(x, self.layer.attrs)
        return self.y

    def backward(self, dy, params, needs):
        assert isinstance(self.layer.attrs, HardSigmoidAttrs)
        slope = P.mul(P.equal(self.y, self.line), np.asarray(self.layer.attrs.alpha, dy.dtype))
        return [P.mul(dy, slope)], {}


class HardSwish(Kernel):
    """y = x * s, s the hard sigmoid with alpha 1/6 and beta 1/2; dy/dx = s + alpha * x where s is not saturated."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        self.scaled, self.line, self.s = _hard_sigmoid(x, HARD_SWISH)
        return P.mul(x, self.s)

    def backward(self, dy, params, needs):
        slope = P.add(self.s, P.mul(P.equal(self.s, self.line), self.scaled))
        return [P.mul(dy, slope)], {}


GELU_TANH_SLOPE = math.sqrt(2 / math.pi)
GELU_TANH_CUBIC = 0.044715
"""PyTorch's tanh approximation: Φ(x) ≈ (1 + tanh(k (x + c x³))) / 2, k = √(2/π), c = 0.044715."""


class Gelu(Kernel):
    """y = x·Φ(x). ``none``: Φ = (1 + erf(x/√2)) / 2, and dy/dx = Φ + x·φ, φ(x) = exp(-x²/2) / √(2π).
    ``tanh``: Φ ≈ s = (1 + t) / 2, t = tanh(u), u = (k + k·c·x²)·x; dy/dx = s + x·s·(1 - t)·u', u' = k + 3k·c·x²
    (x·(1 - t²)/2 = x·s·(1 - t))."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        assert isinstance(self.layer.attrs, GeluAttrs)
        one, half = np.asarray(1, x.dtype), np.asarray(0.5, x.dtype)
        self.x = x
        if self.layer.attrs.approximate == "tanh":
            self.square = P.mul(x, x)
            slope = P.add(P.mul(self.square, np.asarray(GELU_TANH_SLOPE * GELU_TANH_CUBIC, x.dtype)), GELU_TANH_SLOPE)
            self.t = P.tanh(P.mul(slope, x, out=slope))
            self.cdf = P.mul(P.add(self.t, one), half)
        else:
            e = P.erf(P.mul(x, np.asarray(1 / math.sqrt(2), x.dtype)))
            self.cdf = P.mul(P.add(e, one, out=e), half, out=e)
        return P.mul(x, self.cdf)

    def backward(self, dy, params, needs):
        x, cdf = self.x, self.cdf
        if self.layer.attrs.approximate == "tanh":  # type: ignore[attr-defined]
            du = P.add(P.mul(self.square, np.asarray(3 * GELU_TANH_SLOPE * GELU_TANH_CUBIC, x.dtype)), GELU_TANH_SLOPE)
            part = P.mul(P.mul(P.sub(np.asarray(1, x.dtype), self.t), cdf), x)
            part = P.mul(part, du, out=part)
        else:
            density = P.exp(P.mul(P.mul(x, x), np.asarray(-0.5, x.dtype)))
            density = P.mul(density, np.asarray(1 / math.sqrt(2 * math.pi), x.dtype), out=density)
            part = P.mul(x, density, out=density)
        slope = P.add(cdf, part, out=part)
        return [P.mul(dy, slope, out=slope)], {}


class Tanh(Kernel):
    """y = tanh(x); dx = dy * (1 - y * y)."""

    def forward(self, inputs, params, state, training):
        self.y = P.tanh(inputs[0])
        return self.y

    def backward(self, dy, params, needs):
        return [P.mul(dy, P.sub(np.asarray(1, dy.dtype), P.mul(self.y, self.y)))], {}


class Elu(Kernel):
    """gamma * (x where x > 0, else alpha * (exp(x) - 1)): elu is gamma 1 (no multiply), selu gamma's constant;
    dx = dy * (gamma where x > 0, else y + gamma * alpha, which is gamma * alpha * exp(x)).

    Where x is large exp(x) overflows to inf, and the branch selected there is x's."""

    def _constants(self) -> tuple[float, float]:
        a = self.layer.attrs
        if isinstance(a, SeluAttrs):
            return a.alpha, a.gamma
        assert isinstance(a, EluAttrs)
        return a.alpha, 1.0

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        alpha, gamma = self._constants()
        self.positive = P.greater(x, np.asarray(0, x.dtype))
        with np.errstate(over="ignore", invalid="ignore"):
            below = P.mul(P.sub(P.exp(x), np.asarray(1, x.dtype)), np.asarray(gamma * alpha, x.dtype))
        above = x if gamma == 1.0 else P.mul(x, np.asarray(gamma, x.dtype))
        self.y = np.where(self.positive, above, below)
        return self.y

    def backward(self, dy, params, needs):
        alpha, gamma = self._constants()
        below = P.add(self.y, np.asarray(gamma * alpha, dy.dtype))
        return [P.mul(dy, np.where(self.positive, np.asarray(gamma, dy.dtype), below))], {}


class _Softplus(NamedTuple):
    """log(1 + exp(x)), or x above the threshold, with what its derivative, sigmoid(x), is made of."""

    y: np.ndarray
    e: np.ndarray
    """exp(x): inf where x is large."""
    plus: np.ndarray
    """1 + exp(x)."""
    above: np.ndarray
    """x > the threshold: y is x there."""

    @classmethod
    def of(cls, x: np.ndarray) -> _Softplus:
        """4 ops per element: the comparison, exp, + 1, log."""
        above = P.greater(x, np.asarray(SOFTPLUS_THRESHOLD, x.dtype))
        with np.errstate(over="ignore"):
            e = P.exp(x)
        plus = P.add(e, np.asarray(1, x.dtype))
        return cls(np.where(above, x, P.log(plus)), e, plus, above)

    def sigmoid(self) -> np.ndarray:
        """e / (1 + e), 1 above the threshold (where e / (1 + e) is inf / inf): 1 op per element."""
        with np.errstate(invalid="ignore"):
            return np.where(self.above, np.asarray(1, self.e.dtype), P.div(self.e, self.plus))


class Softplus(Kernel):
    """y = log(1 + exp(x)), x above the threshold (PyTorch's rule); dx = dy * sigmoid(x)."""

    def forward(self, inputs, params, state, training):
        self.softplus = _Softplus.of(inputs[0])
        return self.softplus.y

    def backward(self, dy, params, needs):
        return [P.mul(dy, self.softplus.sigmoid())], {}


class Mish(Kernel):
    """y = x * tanh(softplus(x)); dy/dx = t + x * (1 - t * t) * sigmoid(x), t = tanh(softplus(x))."""

    def forward(self, inputs, params, state, training):
        (self.x,) = inputs
        self.softplus = _Softplus.of(self.x)
        self.t = P.tanh(self.softplus.y)
        return P.mul(self.x, self.t)

    def backward(self, dy, params, needs):
        curve = P.sub(np.asarray(1, dy.dtype), P.mul(self.t, self.t))
        slope = P.add(self.t, P.mul(self.x, P.mul(curve, self.softplus.sigmoid())))
        return [P.mul(dy, slope)], {}


class PRelu(Kernel):
    """y = x * slope, the slope 1 where x > 0 and the channel's (or the shared) parameter elsewhere;
    dx = dy * slope, dslope = the sum of dy * x where x <= 0, over every element the slope served.

    The slopes start at 0.25, PyTorch's initial value."""

    def init_params(self, dtype) -> Arrays:
        assert isinstance(self.layer.attrs, PReluAttrs)
        return {"slope": np.full(1 if self.layer.attrs.shared else self.layer.input_shape[2], 0.25, dtype)}

    def forward(self, inputs, params, state, training):
        (self.x,) = inputs
        self.positive = P.greater(self.x, np.asarray(0, self.x.dtype))
        self.slope = np.where(self.positive, np.asarray(1, self.x.dtype), params["slope"])
        return P.mul(self.x, self.slope)

    def backward(self, dy, params, needs):
        products = P.mul(dy, np.where(self.positive, np.asarray(0, dy.dtype), self.x))
        axes = tuple(range(dy.ndim)) if params["slope"].size == 1 else tuple(range(dy.ndim - 1))
        slope = P.sum(products, axis=axes).reshape(params["slope"].shape)
        return [P.mul(dy, self.slope) if needs[0] else None], {"slope": slope}


class Identity(Kernel):
    """y = x; dx = dy."""

    def forward(self, inputs, params, state, training):
        return inputs[0]

    def backward(self, dy, params, needs):
        return [dy], {}


class Scale(Kernel):
    """y = x * scale + shift, by constants broadcast over the channels (skipping a factor of 1 and a shift of
    0, as the cost model does); dx = dy * scale."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        a = self.layer.attrs
        assert isinstance(a, ScaleAttrs)
        y = P.mul(x, np.asarray(a.scale, x.dtype)) if a.multiplies else x
        return P.add(y, np.asarray(a.shift, x.dtype)) if a.adds else y

    def backward(self, dy, params, needs):
        a = self.layer.attrs
        assert isinstance(a, ScaleAttrs)
        return [P.mul(dy, np.asarray(a.scale, dy.dtype)) if a.multiplies else dy], {}


class Dropout(Kernel):
    """Inverted dropout: training keeps each element with probability 1 - rate and scales it by 1 / (1 - rate).

    Inference is the identity. The random draw itself is not counted (it is not arithmetic on the data).
    """

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        if not training:
            return x
        assert isinstance(self.layer.attrs, DropoutAttrs)
        rate = self.layer.attrs.rate
        keep = P.greater_equal(self.rng.random(x.shape, dtype=x.dtype), rate)
        self.mask = P.mul(keep, np.asarray(1.0 / (1.0 - rate), dtype=x.dtype))
        return P.mul(x, self.mask)

    def backward(self, dy, params, needs):
        return [P.mul(dy, self.mask)], {}


def _output(layer, inputs: list[np.ndarray]) -> np.ndarray:
    """An empty output for a merge of ``inputs``: the batch, then the layer's (broadcast) output shape."""
    return np.empty((len(inputs[0]), *layer.output_shape), np.result_type(*inputs))


def _unbroadcast(dy: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """dy summed over the axes an input of ``shape`` (H, W, C) was broadcast along: N - B·|input| adds."""
    axes = tuple(axis for axis, size in enumerate(shape, start=1) if size == 1 and dy.shape[axis] > 1)
    return P.sum(dy, axis=axes, keepdims=True) if axes else dy


class Add(Kernel):
    """y = x_1 + ... + x_k, each input broadcast to the output; every input receives dy, summed over
    the axes it was broadcast along."""

    def forward(self, inputs, params, state, training):
        y = P.add(inputs[0], inputs[1], out=_output(self.layer, inputs))
        for x in inputs[2:]:
            P.add(y, x, out=y)
        return y

    def backward(self, dy, params, needs):
        return [_unbroadcast(dy, shape) if need else None for need, shape in zip(needs, self.layer.input_shapes)], {}


class Mul(Kernel):
    """y = a * b, each broadcast to the output; da = dy * b summed over the axes a was broadcast along, db alike."""

    def forward(self, inputs, params, state, training):
        self.a, self.b = inputs
        return P.mul(self.a, self.b, out=_output(self.layer, inputs))

    def backward(self, dy, params, needs):
        others = (self.b, self.a)
        return [
            _unbroadcast(P.mul(dy, other), shape) if need else None
            for need, other, shape in zip(needs, others, self.layer.input_shapes)
        ], {}


class Concat(Kernel):
    """y = the inputs stacked along channels; dy splits back into the inputs' channel ranges."""

    def forward(self, inputs, params, state, training):
        return np.concatenate(inputs, axis=-1)

    def backward(self, dy, params, needs):
        bounds = np.cumsum([shape[2] for shape in self.layer.input_shapes])[:-1]
        return [part if need else None for part, need in zip(np.split(dy, bounds, axis=-1), needs)], {}


class Slice(Kernel):
    """y = the channels [start, end) of x; dx = dy in those channels, zero elsewhere."""

    def forward(self, inputs, params, state, training):
        a = self.layer.attrs
        assert isinstance(a, SliceAttrs)
        return inputs[0][..., a.start : a.end]

    def backward(self, dy, params, needs):
        a = self.layer.attrs
        assert isinstance(a, SliceAttrs)
        dx = np.zeros((*dy.shape[:3], self.layer.input_shape[2]), dy.dtype)
        dx[..., a.start : a.end] = dy
        return [dx], {}


class ChannelShuffle(Kernel):
    """Output channel j·g + i is input channel i·(C/g) + j; dx is dy shuffled back (the inverse permutation)."""

    def forward(self, inputs, params, state, training):
        assert isinstance(self.layer.attrs, ChannelShuffleAttrs)
        return _interleave(inputs[0], self.layer.attrs.groups)

    def backward(self, dy, params, needs):
        assert isinstance(self.layer.attrs, ChannelShuffleAttrs)
        return [_interleave(dy, dy.shape[-1] // self.layer.attrs.groups)], {}


def _interleave(x: np.ndarray, groups: int) -> np.ndarray:
    """The channels of ``x`` read as ``groups`` groups, one channel of each in turn (shuffling by C/g undoes it)."""
    n, h, w, c = x.shape
    return np.ascontiguousarray(x.reshape(n, h, w, groups, c // groups).swapaxes(3, 4)).reshape(n, h, w, c)


class Flatten(Kernel):
    """(N, H, W, C) -> (N, 1, 1, H*W*C), in row-major (h, w, c) order."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        self.input_shape = x.shape
        return x.reshape(x.shape[0], 1, 1, -1)

    def backward(self, dy, params, needs):
        return [dy.reshape(self.input_shape)], {}


class Softmax(Kernel):
    """p = exp(x - max x) / sum exp(x - max x) over channels; dx = p * (dy - sum(dy * p)).

    As the network's output under a cross-entropy loss, the model uses the fused gradient of
    :mod:`hwsim.reference.loss` instead of this backward.
    """

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        e = P.exp(P.sub(x, P.max(x, axis=-1, keepdims=True)))
        self.p = P.div(e, P.sum(e, axis=-1, keepdims=True), out=e)
        return self.p

    def backward(self, dy, params, needs):
        inner = P.sum(P.mul(dy, self.p), axis=-1, keepdims=True)
        return [P.mul(P.sub(dy, inner), self.p)], {}
