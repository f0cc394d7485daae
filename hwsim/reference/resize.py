"""Maps made larger: upsampling (nearest, bilinear) and padding (constant, reflect, edge) of NHWC maps.

upsample, nearest: y[n, h, w, c] = x[n, h // fh, w // fw, c]; the backward sums each fh x fw block
of dy back onto the pixel it was copied from. bilinear: one pass per scaled axis, rows then columns,
each output line (1 - t) * x[i] + t * x[j] of the two input lines around its source coordinate
(:func:`hwsim.ops.bilinear_taps`); the tap indices and weights follow from the shape alone, like
``1 / m`` elsewhere, and are not counted. pad: the forward only moves data; the backward of reflect
and edge adds each border element's gradient onto the pixel it copies.
"""

from __future__ import annotations

import numpy as np

from hwsim.ops import PadAttrs, UpsampleAttrs, bilinear_taps, padded_source
from hwsim.reference import primitives as P
from hwsim.reference.base import Kernel


class _Axis:
    """The bilinear taps of one scaled axis (1: rows, 2: columns), as arrays shaped to broadcast along it."""

    def __init__(self, axis: int, size: int, factor: int, align_corners: bool) -> None:
        taps = [bilinear_taps(o, size, factor, align_corners) for o in range(size * factor)]
        self.axis, self.size = axis, size
        self.first = np.array([t.first for t in taps])
        self.second = np.array([t.second for t in taps])
        along = [1, 1, 1, 1]
        along[axis] = len(taps)
        self.weight = np.array([t.weight for t in taps]).reshape(along)
        targets = np.concatenate([self.first, self.second])
        self.order = np.argsort(targets, kind="stable")
        self.starts = np.flatnonzero(np.diff(targets[self.order], prepend=-1))
        assert len(self.starts) == size, "every input line is a tap of some output line"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(1 - t) * x[first] + t * x[second]: 3 ops per output element."""
        t = self.weight.astype(x.dtype)
        near = P.mul(np.take(x, self.first, self.axis), 1 - t)
        return P.add(near, P.mul(np.take(x, self.second, self.axis), t), out=near)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Both tap weights times dy (2 per output element), then each input line sums the products aimed at it."""
        t = self.weight.astype(dy.dtype)
        products = np.concatenate([P.mul(dy, 1 - t), P.mul(dy, t)], axis=self.axis)
        return P.segment_sum(np.take(products, self.order, self.axis), self.starts, self.axis)


class Upsample(Kernel):
    """nearest: the forward only moves data (0 ops), the backward adds fh*fw - 1 values per input element.
    bilinear: see the module docstring."""

    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        a = layer.attrs
        assert isinstance(a, UpsampleAttrs)
        self.attrs = a
        h, w, _ = layer.input_shape
        scaled = [(1, h, a.factor[0]), (2, w, a.factor[1])]
        self.axes = [_Axis(axis, size, f, a.align_corners) for axis, size, f in scaled if f > 1]

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        if self.attrs.mode == "bilinear":
            for axis in self.axes:
                x = axis.forward(x)
            return x
        n, h, w, c = x.shape
        fh, fw = self.attrs.factor
        return np.broadcast_to(x[:, :, None, :, None, :], (n, h, fh, w, fw, c)).reshape(n, h * fh, w * fw, c)

    def backward(self, dy, params, needs):
        if self.attrs.mode == "bilinear":
            for axis in reversed(self.axes):
                dy = axis.backward(dy)
            return [dy], {}
        n, hf, wf, c = dy.shape
        fh, fw = self.attrs.factor
        return [P.sum(dy.reshape(n, hf // fh, fh, wf // fw, fw, c), axis=(2, 4))], {}


class Pad(Kernel):
    """constant: a border of ``value``; reflect and edge: NumPy's modes of those names (ONNX's too)."""

    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        assert isinstance(layer.attrs, PadAttrs)
        self.attrs = layer.attrs

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        a = self.attrs
        widths = ((0, 0), (a.top, a.bottom), (a.left, a.right), (0, 0))
        if a.mode == "constant":
            return np.pad(x, widths, constant_values=a.value)
        return np.pad(x, widths, mode=a.mode)

    def backward(self, dy, params, needs):
        a = self.attrs
        h, w, _ = self.layer.input_shape
        rows = dy[:, a.top : a.top + h]
        if a.mode == "constant":
            return [rows[:, :, a.left : a.left + w]], {}
        rows = rows.copy()
        for i in (*range(a.top), *range(a.top + h, dy.shape[1])):  # border rows, onto the rows they copy
            P.accumulate(rows, (slice(None), padded_source(i - a.top, h, a.mode)), dy[:, i])
        dx = rows[:, :, a.left : a.left + w].copy()
        for j in (*range(a.left), *range(a.left + w, dy.shape[2])):  # then border columns, over the map's rows
            P.accumulate(dx, (slice(None), slice(None), padded_source(j - a.left, w, a.mode)), rows[:, :, j])
        return [dx], {}
