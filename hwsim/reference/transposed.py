"""The transposed convolution, run as PyTorch runs it: a matrix product into columns, then col2im.

y[n, i*sh - top + a*dh, j*sw - left + b*dw, g*Cog + o] += sum_{c in group g} x[n, i, j, c] * W[a, b, o, c], plus
the bias, with W laid out (Kh, Kw, C_out/groups, C_in) (ONNX's (C_in, C_out/groups, Kh, Kw) transposed as a
conv's weight is). Forward: the columns (g, N*H*W, Cog*Kh*Kw) = x by the weights, scattered onto the full map
(:func:`hwsim.reference.windows.scatter_windows`, counted) and cropped by the padding. Backward: dy, uncropped,
read through the same windows, gives the columns' gradient; the input's and the weights' gradients are two more
products, no scatter.
"""

from __future__ import annotations

import numpy as np

from hwsim.ops import ConvAttrs, ConvTransposeAttrs, Padding
from hwsim.reference import primitives as P
from hwsim.reference.base import Arrays, Kernel, he_normal
from hwsim.reference.windows import pad, scatter_windows, windows


class ConvTranspose(Kernel):
    """conv_transpose. Parameters: ``weight`` (Kh, Kw, C_out/groups, C_in), ``bias`` (C_out,)."""

    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        attrs = layer.attrs
        assert isinstance(attrs, ConvTransposeAttrs)
        self.attrs = attrs
        self.groups = attrs.groups
        self.in_per_group = layer.input_shape[2] // attrs.groups
        self.out_per_group = attrs.out_channels // attrs.groups
        # the patches as windows over the full map: where col2im adds each tap, where dy's windows read
        self.window = ConvAttrs(
            attrs.kernel, attrs.stride, Padding(), attrs.groups, attrs.out_channels, attrs.bias, attrs.dilation
        )

    def init_params(self, dtype) -> Arrays:
        kh, kw = self.attrs.kernel
        shape = (kh, kw, self.out_per_group, self.layer.input_shape[2])
        params = {"weight": he_normal(self.rng, shape, kh * kw * self.in_per_group, dtype)}
        if self.attrs.bias:
            params["bias"] = np.zeros(self.attrs.out_channels, dtype)
        return params

    def _grouped_weight(self, weight: np.ndarray) -> np.ndarray:
        """(Kh, Kw, Cog, C_in) -> (g, Cig, Cog*Kh*Kw), matching the columns."""
        kh, kw = self.attrs.kernel
        w = weight.reshape(kh, kw, self.out_per_group, self.groups, self.in_per_group).transpose(3, 4, 2, 0, 1)
        return w.reshape(self.groups, self.in_per_group, self.out_per_group * kh * kw)

    def _grouped_weight_back(self, w: np.ndarray) -> np.ndarray:
        kh, kw = self.attrs.kernel
        w = w.reshape(self.groups, self.in_per_group, self.out_per_group, kh, kw).transpose(3, 4, 2, 0, 1)
        return w.reshape(kh, kw, self.out_per_group, self.layer.input_shape[2])

    def forward(self, inputs, params, state, training) -> np.ndarray:
        (x,) = inputs
        n, h, w, _ = x.shape
        (kh, kw), a = self.attrs.kernel, self.attrs
        self.x = np.ascontiguousarray(x.reshape(n * h * w, self.groups, self.in_per_group).transpose(1, 0, 2))
        cols = P.matmul(self.x, self._grouped_weight(params["weight"]))
        cols = cols.reshape(self.groups, n, h, w, self.out_per_group, kh, kw).transpose(1, 2, 3, 0, 4, 5, 6)
        cols = cols.reshape(n, h, w, a.out_channels, kh, kw)
        full = scatter_windows(cols, (n, *a.full((h, w)), a.out_channels), self.window)
        p = a.padding
        y = full[:, p.top : full.shape[1] - p.bottom, p.left : full.shape[2] - p.right]
        if a.bias:
            y = P.add(y, params["bias"])
        return y

    def backward(self, dy, params, needs):
        n, (h, w, c) = dy.shape[0], self.layer.input_shape
        kh, kw = self.attrs.kernel
        grads: Arrays = {}
        if self.attrs.bias:
            grads["bias"] = P.sum(dy, axis=(0, 1, 2))
        view = windows(pad(dy, self.attrs.padding), self.window)[:, :h, :w]
        dcols = np.ascontiguousarray(
            view.reshape(n * h * w, self.groups, self.out_per_group * kh * kw).transpose(1, 0, 2)
        )
        grads["weight"] = self._grouped_weight_back(P.matmul(self.x.transpose(0, 2, 1), dcols))
        if not needs[0]:
            return [None], grads
        dx = P.matmul(dcols, self._grouped_weight(params["weight"]).transpose(0, 2, 1))
        return [dx.transpose(1, 0, 2).reshape(n, h, w, c)], grads
