"""Batch normalisation (Algorithm 1 of the paper, corrected) and local response normalisation."""

from __future__ import annotations

import numpy as np

from hwsim.ops import BatchNormAttrs, LrnAttrs
from hwsim.reference import primitives as P
from hwsim.reference.base import Arrays, Kernel


class BatchNorm(Kernel):
    """Per channel over (N, H, W), m = N*H*W values per channel.

    Training (Algorithm 1, without the paper's square in x̂)::

        mu = sum x / m,  var = sum (x - mu)^2 / m,  x̂ = (x - mu) / sqrt(var + eps),  y = gamma x̂ + beta
        running_mean = (1 - momentum) running_mean + momentum mu
        running_var  = (1 - momentum) running_var  + momentum var * m / (m - 1)   (unbiased, Algorithm 2)

    Inference uses the running statistics in place of mu and var.
    Backward, the paper's dl/dvar and dl/dmu substituted into dl/dx (dl/dmu's second term is zero)::

        dx = gamma / sqrt(var + eps) * (dy - sum dy / m - x̂ * sum(dy x̂) / m)

    Parameters ``gamma``, ``beta`` (C,); state ``running_mean``, ``running_var`` (C,).
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
        if not training:
            std = P.sqrt(P.add(state["running_var"], self.attrs.eps))
            y = P.sub(x, state["running_mean"])
            P.div(y, std, out=y)
            P.mul(y, params["gamma"], out=y)
            return P.add(y, params["beta"], out=y)
        m = x.size // self.channels
        if m < 2:
            raise ValueError(
                f"{self.layer.name}: batch norm in training needs at least 2 values per channel, got {m}; use a larger batch"
            )
        axes = (0, 1, 2)
        mean = P.mul(P.sum(x, axis=axes), 1.0 / m)
        centred = P.sub(x, mean)
        var = P.mul(P.sum(P.mul(centred, centred), axis=axes), 1.0 / m)
        self.std = P.sqrt(P.add(var, self.attrs.eps))
        self.x_hat = P.div(centred, self.std, out=centred)
        momentum = self.attrs.momentum
        state["running_mean"] = P.add(P.mul(state["running_mean"], 1 - momentum), P.mul(mean, momentum))
        state["running_var"] = P.add(P.mul(state["running_var"], 1 - momentum), P.mul(var, momentum * m / (m - 1)))
        y = P.mul(self.x_hat, params["gamma"])
        return P.add(y, params["beta"], out=y)

    def backward(self, dy, params, needs):
        axes = (0, 1, 2)
        m = dy.size // self.channels
        grads = {"beta": P.sum(dy, axis=axes), "gamma": P.sum(P.mul(dy, self.x_hat), axis=axes)}
        if not needs[0]:
            return [None], grads
        scale = P.div(params["gamma"], self.std)
        correction = P.mul(self.x_hat, P.mul(grads["gamma"], 1.0 / m))
        dx = P.sub(dy, P.mul(grads["beta"], 1.0 / m))
        P.sub(dx, correction, out=dx)
        return [P.mul(dx, scale, out=dx)], grads


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
