"""Max, average, global average and global max pooling over NHWC maps.

maxpool: y = max over the window of the map padded with -inf.
avgpool: y = (sum over the window of the map padded with zeros) / (the taps the divisor counts): the
whole window (count_include_pad, today's default), less the rows and columns ceil_mode's last window
overhangs, or only the taps inside the input (count_include_pad false). One divide per output either way.
global_avg_pool: y[n, 0, 0, c] = sum_{h, w} x[n, h, w, c] / (H * W).
global_max_pool: y[n, 0, 0, c] = max_{h, w} x[n, h, w, c].
"""

from __future__ import annotations

import numpy as np

from hwsim.ops import PoolAttrs
from hwsim.reference import primitives as P
from hwsim.reference.base import Kernel
from hwsim.reference.windows import pad, scatter_windows, unpad, windows


class _WindowPool(Kernel):
    padded_shape: tuple[int, ...]
    """The padded input's shape, kept by the forward pass for the backward."""

    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        assert isinstance(layer.attrs, PoolAttrs)
        self.attrs = layer.attrs

    def _scatter(self, dcols: np.ndarray) -> np.ndarray:
        """Window gradients (N, Ho, Wo, C, Kh, Kw) back to the unpadded input (N, H, W, C)."""
        return unpad(scatter_windows(dcols, self.padded_shape, self.attrs), self.attrs.padding)


class MaxPool(_WindowPool):
    """Training remembers which tap of each window won (argmax), for the backward.

    Both passes work tap by tap, on the Kh*Kw strided views xp[:, i::sh, j::sw] (N, Ho, Wo, C): no
    window copy, and the backward of non-overlapping windows writes dy straight onto each tap's
    winners (no col2im).
    """

    def _taps(self, xp: np.ndarray) -> list[np.ndarray]:
        """The window's taps in row-major (i, j) order: xp[:, i + sh*h, j + sw*w, :] as (N, Ho, Wo, C) views."""
        (kh, kw), (sh, sw) = self.attrs.kernel, self.attrs.stride
        ho, wo = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
        return [
            xp[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] for i in range(kh) for j in range(kw)
        ]

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        xp = pad(x, self.attrs.padding, -np.inf)
        self.padded_shape = xp.shape
        if not training:
            return P.max_of(self._taps(xp))
        y, self.winner = P.argmax_of(self._taps(xp))
        return y

    def backward(self, dy, params, needs):
        (kh, kw), (sh, sw) = self.attrs.kernel, self.attrs.stride
        if sh < kh or sw < kw:  # overlapping windows: gradients of shared positions add, in col2im
            dcols = np.zeros((*dy.shape, kh * kw), dtype=dy.dtype)
            np.put_along_axis(dcols, self.winner[..., None].astype(np.intp), dy[..., None], axis=-1)
            return [self._scatter(dcols.reshape(*dy.shape, kh, kw))], {}
        _, hp, wp, _ = self.padded_shape
        tiled = (sh, sw) == (kh, kw) and hp % sh == 0 and wp % sw == 0  # the taps cover every position once
        dxp = (np.empty if tiled else np.zeros)(self.padded_shape, dtype=dy.dtype)
        for k, tap in enumerate(self._taps(dxp)):  # disjoint views: each input position is in one window at most
            P.select(self.winner == k, dy, out=tap)
        return [unpad(dxp, self.attrs.padding)], {}


def _counted_taps(n: int, out: int, kernel: int, stride: int, start: int, before: int, after: int) -> np.ndarray:
    """Per output index along an axis of ``n`` inputs: the taps of its window (the first at ``start``,
    the next ``stride`` further) inside the ``n`` inputs with ``before`` and ``after`` padding counted."""
    starts = np.arange(out) * stride + start
    return np.minimum(starts + kernel, n + after) - np.maximum(starts, -before)


class AvgPool(_WindowPool):
    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        a, (h, w, _), (ho, wo, _) = self.attrs, layer.input_shape, layer.output_shape
        (kh, kw), (sh, sw), p, c = a.kernel, a.stride, a.padding, a.counted
        rows = _counted_taps(h, ho, kh, sh, -p.top, c.top, c.bottom)
        cols = _counted_taps(w, wo, kw, sw, -p.left, c.left, c.right)
        counts = np.outer(rows, cols)
        self.divisor = float(kh * kw) if (counts == kh * kw).all() else counts[:, :, None]
        """The window's area, or per output position the taps the average counts (from the shape alone: not counted)."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        xp = pad(x, self.attrs.padding)
        self.padded_shape = xp.shape
        return P.div(P.sum(windows(xp, self.attrs), axis=(4, 5)), np.asarray(self.divisor, x.dtype))

    def backward(self, dy, params, needs):
        kh, kw = self.attrs.kernel
        share = P.div(dy, np.asarray(self.divisor, dy.dtype))
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


class GlobalMaxPool(Kernel):
    """H*W - 1 comparisons per channel (training finds the winner's place, the same count); dx is dy at each
    channel's winner, zero elsewhere."""

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        self.input_shape = x.shape
        if not training:
            return P.max(x, axis=(1, 2), keepdims=True)
        n, h, w, c = x.shape
        flat = x.reshape(n, h * w, c)
        self.winner = P.argmax(flat, axis=1)[:, None, :]
        return np.take_along_axis(flat, self.winner, axis=1).reshape(n, 1, 1, c)

    def backward(self, dy, params, needs):
        n, h, w, c = self.input_shape
        dx = np.zeros((n, h * w, c), dy.dtype)
        np.put_along_axis(dx, self.winner, dy.reshape(n, 1, c), axis=1)
        return [dx.reshape(self.input_shape)], {}
