"""The interface every op's kernel implements, and the arrays that flow through it.

A kernel is built for one layer. ``forward`` keeps in ``self`` what ``backward`` needs, so a
kernel serves one forward/backward pair at a time (as layers do in every framework).
Arrays are NHWC: a batch of maps is (N, H, W, C); flat features are (N, 1, 1, C).
"""

from __future__ import annotations

import numpy as np

from hwsim.model.graph import Layer

Arrays = dict[str, np.ndarray]
"""Named arrays of one layer: parameters (``weight``, ``bias``, ``gamma``, ``beta``) or state."""


class Kernel:
    """Forward and backward of one layer; ops without parameters keep the empty defaults."""

    def __init__(self, layer: Layer, rng: np.random.Generator) -> None:
        self.layer = layer
        self.rng = rng

    def init_params(self, dtype: np.dtype) -> Arrays:
        """Freshly initialised parameters, drawn from ``self.rng``."""
        return {}

    def init_state(self, dtype: np.dtype) -> Arrays:
        """Non-trainable state (running statistics) before any training."""
        return {}

    def forward(self, inputs: list[np.ndarray], params: Arrays, state: Arrays, training: bool) -> np.ndarray:
        """Output (N, Ho, Wo, Co) of ``inputs`` [(N, H, W, C), ...]; training may update ``state``."""
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(
        self, dy: np.ndarray, params: Arrays, needs: tuple[bool, ...]
    ) -> tuple[list[np.ndarray | None], Arrays]:
        """Gradients w.r.t. the inputs (``None`` where ``needs`` is False) and the parameters.

        ``dy`` is dLoss/dOutput with the output's shape; it follows the latest training forward.
        """
        raise NotImplementedError(f"{type(self).__name__}.backward")


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, dtype: np.dtype) -> np.ndarray:
    """He initialisation: normal with standard deviation sqrt(2 / fan_in)."""
    weights = rng.standard_normal(shape, dtype=dtype)
    weights *= np.sqrt(2.0 / fan_in)
    return weights


def param_key(layer: str, name: str) -> str:
    """The flat key of a layer's parameter or state array: ``stage1.block1.dw.weight``."""
    return f"{layer}.{name}"


def layer_of(key: str) -> str:
    """The layer a flat key belongs to: ``stage1.block1.dw.weight`` -> ``stage1.block1.dw``."""
    return key.rsplit(".", 1)[0]
