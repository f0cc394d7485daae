"""Convolution (any kernel, stride, padding, groups) and dense layers: the matmul-shaped ops.

conv: y[n, h, w, o] = sum_{i, j, c in group(o)} xp[n, h*sh + i*dh, w*sw + j*dw, c] * W[i, j, c, o] + b[o],
with W laid out (Kh, Kw, C_in / groups, C_out) and output channel o in group o // (C_out / groups).
Grouped convolutions run as one batched matmul over im2col columns (g, N*Ho*Wo, Cg*Kh*Kw);
depthwise ones (one input channel per group) contract the window view directly, without a copy.
"""

from __future__ import annotations

import numpy as np

from hwsim.ops import ConvAttrs, DenseAttrs, Padding, Window, depthwise_transposed_gradient
from hwsim.reference import primitives as P
from hwsim.reference.base import Arrays, Kernel, he_normal
from hwsim.reference.windows import pad, scatter_windows, unpad, windows

ROWS_BELOW_CHANNELS = 128
"""Depthwise convolutions with fewer channels run as shifted row multiply-adds, the others as one einsum."""


class Conv(Kernel):
    """conv and dwconv. Parameters: ``weight`` (Kh, Kw, C_in/groups, C_out), ``bias`` (C_out,)."""

    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        attrs = layer.attrs
        assert isinstance(attrs, ConvAttrs)
        self.attrs = attrs
        self.groups = attrs.groups
        self.in_per_group = layer.input_shape[2] // attrs.groups
        self.out_per_group = attrs.out_channels // attrs.groups
        self.depthwise = self.in_per_group == 1
        self.transposed_gradient = depthwise_transposed_gradient(layer)

    def init_params(self, dtype) -> Arrays:
        kh, kw = self.attrs.kernel
        shape = (kh, kw, self.in_per_group, self.attrs.out_channels)
        params = {"weight": he_normal(self.rng, shape, kh * kw * self.in_per_group, dtype)}
        if self.attrs.bias:
            params["bias"] = np.zeros(self.attrs.out_channels, dtype)
        return params

    # Weight layouts. Grouped: (g, Cg*Kh*Kw, Cog) matching the columns. Depthwise: (Kh, Kw, C, m).
    def _grouped_weight(self, weight: np.ndarray) -> np.ndarray:
        kh, kw, cg, _ = weight.shape
        w = weight.reshape(kh, kw, cg, self.groups, self.out_per_group).transpose(3, 2, 0, 1, 4)
        return w.reshape(self.groups, cg * kh * kw, self.out_per_group)

    def _grouped_weight_back(self, w: np.ndarray) -> np.ndarray:
        kh, kw = self.attrs.kernel
        w = w.reshape(self.groups, self.in_per_group, kh, kw, self.out_per_group).transpose(2, 3, 1, 0, 4)
        return w.reshape(kh, kw, self.in_per_group, self.attrs.out_channels)

    def _depthwise_weight(self, weight: np.ndarray) -> np.ndarray:
        kh, kw, _, _ = weight.shape
        return weight.reshape(kh, kw, self.groups, self.out_per_group)

    def _columns(self, view: np.ndarray) -> np.ndarray:
        """im2col: window view (N, Ho, Wo, C, Kh, Kw) -> (g, N*Ho*Wo, Cg*Kh*Kw), copied."""
        n, ho, wo, c, kh, kw = view.shape
        grouped = view.reshape(n * ho * wo, self.groups, self.in_per_group * kh * kw)
        return np.ascontiguousarray(grouped.transpose(1, 0, 2))

    def forward(self, inputs, params, state, training) -> np.ndarray:
        (x,) = inputs
        xp = pad(x, self.attrs.padding)
        view = windows(xp, self.attrs)
        n, ho, wo = view.shape[:3]
        if self.depthwise:
            if self._by_rows(x.shape[-1]):
                y = P.correlate_depthwise(xp, params["weight"][:, :, 0, :])
            else:
                y = P.contract("nhwcij,ijcm->nhwcm", view, self._depthwise_weight(params["weight"]))
            self.saved = view
        else:
            cols = self._columns(view)
            y = P.matmul(cols, self._grouped_weight(params["weight"])).transpose(1, 0, 2)
            self.saved = cols
        y = y.reshape(n, ho, wo, self.attrs.out_channels)
        self.padded_shape = xp.shape
        if self.attrs.bias:
            y = P.add(y, params["bias"], out=y)
        return y

    def backward(self, dy, params, needs):
        n, ho, wo, co = dy.shape
        grads: Arrays = {}
        if self.attrs.bias:
            grads["bias"] = P.sum(dy, axis=(0, 1, 2))
        dcols = None
        if self.depthwise:
            view = self.saved
            dy_groups = dy.reshape(n, ho, wo, self.groups, self.out_per_group)
            dw = P.contract("nhwcij,nhwcm->ijcm", view, dy_groups)
            grads["weight"] = dw.reshape(params["weight"].shape)
            if needs[0] and self.transposed_gradient:
                return [self._transposed_gradient(dy, params["weight"])], grads
            if needs[0]:
                dcols = P.contract("nhwcm,ijcm->nhwcij", dy_groups, self._depthwise_weight(params["weight"]))
        else:
            cols = self.saved
            dy_groups = dy.reshape(n * ho * wo, self.groups, self.out_per_group).transpose(1, 0, 2)
            grads["weight"] = self._grouped_weight_back(P.matmul(cols.transpose(0, 2, 1), dy_groups))
            if needs[0]:
                w = self._grouped_weight(params["weight"])
                dcols = P.matmul(dy_groups, w.transpose(0, 2, 1)).transpose(1, 0, 2)
                kh, kw = self.attrs.kernel
                dcols = dcols.reshape(n, ho, wo, self.layer.input_shape[2], kh, kw)
        if dcols is None:
            return [None], grads
        dx = unpad(scatter_windows(dcols, self.padded_shape, self.attrs), self.attrs.padding)
        return [dx], grads

    def _by_rows(self, channels: int) -> bool:
        """Depthwise at stride 1, undilated, one output per channel, few channels: shifted row multiply-adds win."""
        a = self.attrs
        return self.out_per_group == 1 and a.stride == a.dilation == (1, 1) and channels < ROWS_BELOW_CHANNELS

    def _transposed_gradient(self, dy: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Depthwise, stride 1: dx[n, h, w, c] = sum_{i, j, m} dyp[n, h + i, w + j, c, m] * W[Kh-1-i, Kw-1-j, c, m].

        dyp is dy padded by Kh - 1 - top above (and so on), which makes dx exactly (N, H, W, C).
        """
        (kh, kw), p = self.attrs.kernel, self.attrs.padding
        dyp = pad(dy, Padding(kh - 1 - p.top, kh - 1 - p.bottom, kw - 1 - p.left, kw - 1 - p.right))
        if self._by_rows(dy.shape[-1]):
            return P.correlate_depthwise(dyp, weight[::-1, ::-1, 0, :])
        view = windows(dyp, Window((kh, kw), (1, 1), Padding()))
        n, h, w = view.shape[:3]
        view = view.reshape(n, h, w, self.groups, self.out_per_group, kh, kw)
        flipped = self._depthwise_weight(weight)[::-1, ::-1]
        return P.contract("nhwcmij,ijcm->nhwc", view, flipped)


class Dense(Kernel):
    """y = x W + b on flat features. Parameters: ``weight`` (C_in, units), ``bias`` (units,)."""

    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        assert isinstance(layer.attrs, DenseAttrs)
        self.attrs = layer.attrs
        self.in_features = layer.input_shape[2]

    def init_params(self, dtype) -> Arrays:
        params = {"weight": he_normal(self.rng, (self.in_features, self.attrs.units), self.in_features, dtype)}
        if self.attrs.bias:
            params["bias"] = np.zeros(self.attrs.units, dtype)
        return params

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        self.x = x.reshape(x.shape[0], self.in_features)
        y = P.matmul(self.x, params["weight"])
        if self.attrs.bias:
            y = P.add(y, params["bias"], out=y)
        return y.reshape(x.shape[0], 1, 1, self.attrs.units)

    def backward(self, dy, params, needs):
        dy = dy.reshape(dy.shape[0], self.attrs.units)
        grads = {"weight": P.matmul(self.x.T, dy)}
        if self.attrs.bias:
            grads["bias"] = P.sum(dy, axis=0)
        dx = P.matmul(dy, params["weight"].T).reshape(-1, 1, 1, self.in_features) if needs[0] else None
        return [dx], grads
