"""Max, average and global average pooling over NHWC maps.

maxpool: y = max over the window of the map padded with -inf.
avgpool: y = (sum over the window of the map padded with zeros) / (Kh * Kw): padding counts.
global_avg_pool: y[n, 0, 0, c] = sum_{h, w} x[n, h, w, c] / (H * W).
"""

from __future__ import annotations

import numpy as np

from hwsim.ops import PoolAttrs
from hwsim.reference import primitives as P
from hwsim.reference.base import Kernel
from hwsim.reference.windows import pad, scatter_windows, unpad, windows


class _WindowPool(Kernel):
    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        assert isinstance(layer.attrs, PoolAttrs)
        self.attrs = layer.attrs

    def _scatter(self, dcols: np.ndarray) -> np.ndarray:
        """Window gradients (N, Ho, Wo, C, Kh, Kw) back to the unpadded input (N, H, W, C)."""
        return unpad(scatter_windows(dcols, self.padded_shape, self.attrs.stride), self.attrs.padding)


class MaxPool(_WindowPool):
    """Training remembers which element of each window won (argmax), for the backward."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        xp = pad(x, self.attrs.padding, -np.inf)
        view = windows(xp, self.attrs.size, self.attrs.stride)
        self.padded_shape = xp.shape
        if not training:
            return P.max(view, axis=(4, 5))
        flat = view.reshape(*view.shape[:4], -1)
        self.winner = P.argmax(flat, axis=-1)[..., None]
        return np.take_along_axis(flat, self.winner, axis=-1)[..., 0]

    def backward(self, dy, params, needs):
        kh, kw = self.attrs.size
        dcols = np.zeros((*dy.shape, kh * kw), dtype=dy.dtype)
        np.put_along_axis(dcols, self.winner, dy[..., None], axis=-1)
        return [self._scatter(dcols.reshape(*dy.shape, kh, kw))], {}


class AvgPool(_WindowPool):
    def forward(self, inputs, params, state, training):
        (x,) = inputs
        xp = pad(x, self.attrs.padding)
        self.padded_shape = xp.shape
        kh, kw = self.attrs.size
        return P.div(P.sum(windows(xp, self.attrs.size, self.attrs.stride), axis=(4, 5)), kh * kw)

    def backward(self, dy, params, needs):
        kh, kw = self.attrs.size
        share = P.div(dy, kh * kw)
        return [self._scatter(np.broadcast_to(share[..., None, None], (*dy.shape, kh, kw)))], {}


class GlobalAvgPool(Kernel):
    def forward(self, inputs, params, state, training):
        (x,) = inputs
        self.input_shape = x.shape
        area = x.shape[1] * x.shape[2]
        return P.div(P.sum(x, axis=(1, 2), keepdims=True), area)

    def backward(self, dy, params, needs):
        n, h, w, c = self.input_shape
        return [np.broadcast_to(P.div(dy, h * w), self.input_shape)], {}
