"""Nearest upsampling of NHWC maps.

upsample: y[n, h, w, c] = x[n, h // f, w // f, c] for an integer factor f; the backward sums each
f x f block of dy back onto the pixel it was copied from.
"""

from __future__ import annotations

import numpy as np

from hwsim.ops import UpsampleAttrs
from hwsim.reference import primitives as P
from hwsim.reference.base import Kernel


class Upsample(Kernel):
    """The forward only moves data (0 ops); the backward adds f*f - 1 values per input element."""

    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        assert isinstance(layer.attrs, UpsampleAttrs)
        self.factor = layer.attrs.factor

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        n, h, w, c = x.shape
        f = self.factor
        return np.broadcast_to(x[:, :, None, :, None, :], (n, h, f, w, f, c)).reshape(n, h * f, w * f, c)

    def backward(self, dy, params, needs):
        n, hf, wf, c = dy.shape
        f = self.factor
        return [P.sum(dy.reshape(n, hf // f, f, wf // f, f, c), axis=(2, 4))], {}
