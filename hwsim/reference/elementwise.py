"""Ops without parameters that act per element or only move data: relu, dropout, add, concat, flatten, softmax."""

from __future__ import annotations

import numpy as np

from hwsim.ops import DropoutAttrs
from hwsim.reference import primitives as P
from hwsim.reference.base import Kernel
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


class Add(Kernel):
    """y = x_1 + ... + x_k; every input receives dy unchanged."""

    def forward(self, inputs, params, state, training):
        y = inputs[0]
        for x in inputs[1:]:
            y = P.add(y, x)
        return y

    def backward(self, dy, params, needs):
        return [dy if need else None for need in needs], {}


class Concat(Kernel):
    """y = the inputs stacked along channels; dy splits back into the inputs' channel ranges."""

    def forward(self, inputs, params, state, training):
        return np.concatenate(inputs, axis=-1)

    def backward(self, dy, params, needs):
        bounds = np.cumsum([shape[2] for shape in self.layer.input_shapes])[:-1]
        return [part if need else None for part, need in zip(np.split(dy, bounds, axis=-1), needs)], {}


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
