"""Optimizers that update a flat parameter dict in place from a gradient dict with the same keys.

Each parameter's update is charged to its layer's ``optimizer`` pass.
"""

from __future__ import annotations

import numpy as np

from hwsim.reference import primitives as P
from hwsim.reference.base import Arrays, layer_of
from hwsim.reference.counting import Pass, attributed


class Adam:
    """Algorithm 3 of the paper, elementwise for every parameter θ with gradient g, at step t::

        m = beta1 m + (1 - beta1) g          m̂ = m / (1 - beta1^t)
        v = beta2 v + (1 - beta2) g^2        v̂ = v / (1 - beta2^t)
        θ = θ - alpha m̂ / (sqrt(v̂) + eps)

    14 operations per parameter; the bias corrections 1 - beta^t are scalars.
    """

    def __init__(self, alpha: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.alpha, self.beta1, self.beta2, self.eps = alpha, beta1, beta2, eps
        self.t = 0
        self.m: Arrays = {}
        self.v: Arrays = {}

    def step(self, params: Arrays, grads: Arrays) -> None:
        self.t += 1
        correction1, correction2 = 1 - self.beta1**self.t, 1 - self.beta2**self.t
        for key, g in grads.items():
            with attributed(layer_of(key), Pass.OPTIMIZER):
                if key not in self.m:
                    self.m[key], self.v[key] = np.zeros_like(g), np.zeros_like(g)
                m, v = self.m[key], self.v[key]  # updated in place, through two scratch arrays
                a, b = np.empty_like(g), np.empty_like(g)
                P.add(P.mul(m, self.beta1, out=m), P.mul(g, 1 - self.beta1, out=a), out=m)
                P.add(P.mul(v, self.beta2, out=v), P.mul(P.mul(g, g, out=a), 1 - self.beta2, out=a), out=v)
                m_hat = P.div(m, correction1, out=a)
                v_hat = P.div(v, correction2, out=b)
                step = P.div(P.mul(m_hat, self.alpha, out=a), P.add(P.sqrt(v_hat, out=b), self.eps, out=b), out=a)
                params[key] = P.sub(params[key], step)  # a new array: callers may hold the previous parameters


class SGD:
    """θ = θ - lr g; with momentum mu: b = mu b + g, θ = θ - lr b (b starts at 0)."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0) -> None:
        self.lr, self.momentum = lr, momentum
        self.velocity: Arrays = {}

    def step(self, params: Arrays, grads: Arrays) -> None:
        for key, g in grads.items():
            with attributed(layer_of(key), Pass.OPTIMIZER):
                if self.momentum:
                    g = P.add(P.mul(self.velocity.get(key, np.zeros_like(g)), self.momentum), g)
                    self.velocity[key] = g
                params[key] = P.sub(params[key], P.mul(g, self.lr))
