"""Batch normalisation (Algorithm 1 of the paper, corrected), local response normalisation, and layer norm over
channels."""

from __future__ import annotations

import numpy as np

from hwsim.ops import BatchNormAttrs, LayerNormAttrs, LrnAttrs
from hwsim.reference import primitives as P
from hwsim.reference.base import Arrays, Kernel
from hwsim.reference.sweeps import rows_of


class BatchNorm(Kernel):
    """Per channel over (N, H, W), m = N*H*W values per channel.

    Training (Algorithm 1, without the paper's square in x̂)::

        mu = sum x / m,  var = sum (x - mu)^2 / m,  x̂ = (x - mu) / sqrt(var + eps),  y = gamma x̂ + beta
        running_mean = (1 - momentum) running_mean + momentum mu
        running_var  = (1 - momentum) running_var  + momentum var * m / (m - 1)   (unbiased, Algorithm 2)

    Inference uses the running statistics in place of mu and var.
    Backward, the paper's dl/dvar and dl/dmu substituted into dl/dx (dl/dmu's second term is zero)::

        dx = gamma / sqrt(var + eps) * (dy - sum dy / m - x̂ * sum(dy x̂) / m)

    Parameters ``gamma``, ``beta`` (C,); state ``running_mean``, ``running_var`` (C,). Every pass
    sweeps the map in cache-sized blocks of rows (:mod:`hwsim.reference.sweeps`).
    """

    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        assert isinstance(layer.attrs, BatchNormAttrs)
        self.attrs = layer.attrs
        self.channels = layer.output_shape[2]

    def init_params(self, dtype) -> Arrays:
        return {"gamma": np.ones(self.channels, dtype), "beta": np.zeros(self.channels, dtype)}

    def init_state(self, dtype) -> Arrays:
        return {"running_mean": np.zeros(self.channels, dtype), "running_var": np.ones(self.channels, dtype)}

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        rows = rows_of(x.shape)
        x2 = rows.view(x)
        y = np.empty_like(x2)
        if not training:
            std = P.sqrt(P.add(state["running_var"], self.attrs.eps))
            mean, std, gamma, beta = (
                rows.tile(v) for v in (state["running_mean"], std, params["gamma"], params["beta"])
            )
            for block in rows.blocks():
                yb = P.sub(x2[block], mean[: len(y[block])], out=y[block])
                n = len(yb)
                P.div(yb, std[:n], out=yb)
                P.mul(yb, gamma[:n], out=yb)
                P.add(yb, beta[:n], out=yb)
            return y.reshape(x.shape)
        m = x.size // self.channels
        if m < 2:
            raise ValueError(
                f"{self.layer.name}: batch norm in training needs at least 2 values per channel, "
                f"got {m}; use a larger batch"
            )
        mean = P.mul(rows.channel_sum(lambda block: x2[block]), 1.0 / m)
        centred, squares, mean_row = np.empty_like(x2), rows.scratch(x2.dtype), rows.tile(mean)

        def squared(block: slice) -> np.ndarray:
            c = P.sub(x2[block], mean_row[: len(centred[block])], out=centred[block])
            return P.mul(c, c, out=squares[: len(c)])

        var = P.mul(rows.channel_sum(squared), 1.0 / m)
        self.std = P.sqrt(P.add(var, self.attrs.eps))
        momentum = self.attrs.momentum
        state["running_mean"] = P.add(P.mul(state["running_mean"], 1 - momentum), P.mul(mean, momentum))
        state["running_var"] = P.add(P.mul(state["running_var"], 1 - momentum), P.mul(var, momentum * m / (m - 1)))
        std, gamma, beta = (rows.tile(v) for v in (self.std, params["gamma"], params["beta"]))
        for block in rows.blocks():
            n = len(y[block])
            x_hat = P.div(centred[block], std[:n], out=centred[block])
            yb = P.mul(x_hat, gamma[:n], out=y[block])
            P.add(yb, beta[:n], out=yb)
        self.x_hat = centred  # (rows, width), as rows_of(x.shape) lays it out
        return y.reshape(x.shape)

    def backward(self, dy, params, needs):
        m = dy.size // self.channels
        rows = rows_of(dy.shape)
        dy2, x_hat, products = rows.view(dy), self.x_hat, rows.scratch(dy.dtype)
        grads = {
            "beta": rows.channel_sum(lambda block: dy2[block]),
            "gamma": rows.channel_sum(lambda block: P.mul(dy2[block], x_hat[block], out=products[: len(x_hat[block])])),
        }
        if not needs[0]:
            return [None], grads
        scale = rows.tile(P.div(params["gamma"], self.std))
        gamma_share, beta_share = rows.tile(P.mul(grads["gamma"], 1.0 / m)), rows.tile(P.mul(grads["beta"], 1.0 / m))
        dx = np.empty_like(dy2)
        for block in rows.blocks():
            n = len(dx[block])
            correction = P.mul(x_hat[block], gamma_share[:n], out=products[:n])
            dxb = P.sub(dy2[block], beta_share[:n], out=dx[block])
            P.sub(dxb, correction, out=dxb)
            P.mul(dxb, scale[:n], out=dxb)
        return [dx.reshape(dy.shape)], grads


class Lrn(Kernel):
    """Across channels: y = x / d^beta, d = k + alpha/size * sum_{c' in window(c)} x[c']^2.

    The window holds ``size`` channels starting (size - 1) // 2 before c, truncated at the edges
    (zeros beyond them). Backward::

        dx[c] = dy[c] / d[c]^beta - 2 alpha beta / size * x[c] * sum_{c' : c in window(c')} dy[c'] y[c'] / d[c']
    """

    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        assert isinstance(layer.attrs, LrnAttrs)
        self.attrs = layer.attrs
        self.before = (self.attrs.size - 1) // 2
        self.after = self.attrs.size - 1 - self.before

    def _channel_window_sum(self, a: np.ndarray, before: int, after: int) -> np.ndarray:
        """sum over channels c - before .. c + after of ``a`` (zeros outside): (N, H, W, C)."""
        padded = np.pad(a, ((0, 0), (0, 0), (0, 0), (before, after)))
        view = np.lib.stride_tricks.sliding_window_view(padded, self.attrs.size, axis=3)
        return P.sum(view, axis=-1)

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        a = self.attrs
        window = self._channel_window_sum(P.mul(x, x), self.before, self.after)
        self.d = P.add(P.mul(window, a.alpha / a.size), a.k)
        self.d_beta = P.power(self.d, a.beta)
        self.x = x
        self.y = P.div(x, self.d_beta)
        return self.y

    def backward(self, dy, params, needs):
        a = self.attrs
        ratio = P.div(P.mul(dy, self.y), self.d)
        # c is in window(c') when c' runs from c - after to c + before: the window reflected.
        spread = self._channel_window_sum(ratio, self.after, self.before)
        cross = P.mul(P.mul(self.x, spread), 2 * a.alpha * a.beta / a.size)
        return [P.sub(P.div(dy, self.d_beta), cross)], {}


class LayerNorm(Kernel):
    """Over the C channels of each pixel, the same in training and inference (no running statistics)::

        mean = sum_c x / C,  var = sum_c (x - mean)^2 / C,  x̂ = (x - mean) / sqrt(var + eps),  y = gamma x̂ + beta

    Backward, with g = dy * gamma and the means over each pixel's channels::

        dx = (g - mean g - x̂ * mean(g x̂)) / sqrt(var + eps),  dgamma = sum dy x̂,  dbeta = sum dy  (over the pixels)

    Parameters ``gamma``, ``beta`` (C,).
    """

    def __init__(self, layer, rng) -> None:
        super().__init__(layer, rng)
        assert isinstance(layer.attrs, LayerNormAttrs)
        self.eps = layer.attrs.eps
        self.channels = layer.output_shape[2]

    def init_params(self, dtype) -> Arrays:
        return {"gamma": np.ones(self.channels, dtype), "beta": np.zeros(self.channels, dtype)}

    def forward(self, inputs, params, state, training):
        (x,) = inputs
        share = 1.0 / self.channels
        mean = P.mul(P.sum(x, axis=-1, keepdims=True), share)
        centred = P.sub(x, mean)
        var = P.mul(P.sum(P.mul(centred, centred), axis=-1, keepdims=True), share)
        self.std = P.sqrt(P.add(var, self.eps))
        self.x_hat = P.div(centred, self.std, out=centred)
        y = P.mul(self.x_hat, params["gamma"])
        return P.add(y, params["beta"], out=y)

    def backward(self, dy, params, needs):
        pixels = (0, 1, 2)
        grads = {"beta": P.sum(dy, axis=pixels), "gamma": P.sum(P.mul(dy, self.x_hat), axis=pixels)}
        if not needs[0]:
            return [None], grads
        share = 1.0 / self.channels
        g = P.mul(dy, params["gamma"])
        mean_g = P.mul(P.sum(g, axis=-1, keepdims=True), share)
        mean_gx = P.mul(P.sum(P.mul(g, self.x_hat), axis=-1, keepdims=True), share)
        dx = P.sub(g, mean_g, out=g)
        P.sub(dx, P.mul(self.x_hat, mean_gx), out=dx)
        return [P.div(dx, self.std, out=dx)], grads
