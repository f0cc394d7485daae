"""ONNX Runtime as a second oracle: a model run there and in the NumPy reference, on the same input and weights.

:func:`agreement` feeds one seeded input (NCHW to ONNX Runtime, NHWC to the reference) and compares the
outputs in fp32 by the relative error ``max |reference - runtime| / max |reference|``: a scale-free measure
that an output near zero cannot inflate. :data:`TOLERANCE` is the issue's 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwsim.errors import InputError
from hwsim.model.graph import Graph
from hwsim.reference import Model
from hwsim.reference.base import Arrays
from hwsim.spec.onnx_file import EXTRA

TOLERANCE = 1e-4


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` package, or one line naming the extra that installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise InputError(f"checking against ONNX Runtime needs onnxruntime: {EXTRA}", "--runtime onnxruntime") from None
    return onnxruntime


@dataclass(frozen=True)
class Agreement:
    """The reference's output beside ONNX Runtime's for one input."""

    network: str
    runtime: str
    """``onnxruntime <version>``."""
    batch: int
    max_difference: float
    max_magnitude: float

    @property
    def relative_error(self) -> float:
        return self.max_difference / self.max_magnitude if self.max_magnitude else self.max_difference

    @property
    def agrees(self) -> bool:
        return self.relative_error <= TOLERANCE

    def summary(self) -> str:
        verdict = "agrees with" if self.agrees else "DIFFERS from"
        return (
            f"{self.network}: {self.runtime} {verdict} the NumPy reference: max relative error "
            f"{self.relative_error:.2e} (tolerance {TOLERANCE:.0e}; fp32, batch {self.batch})"
        )


def run_onnxruntime(model: bytes | str, x: np.ndarray) -> np.ndarray:
    """The model's output for the NHWC batch ``x`` (N, H, W, C), back in hwsim's layout: NHWC or (N, 1, 1, F)."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the ops as written
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        (output,) = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})
    except Exception as err:  # onnxruntime raises its own exception types, one per failure kind
        raise InputError(f"ONNX Runtime cannot run the model: {str(err).splitlines()[0]}") from None
    if output.ndim == 4:
        return output.transpose(0, 2, 3, 1)
    return output.reshape(output.shape[0], 1, 1, -1)


def agreement(
    graph: Graph, params: Arrays, state: Arrays, model: bytes | str, batch: int = 2, seed: int = 0
) -> Agreement:
    """Run ``model`` (an ONNX model's bytes or path) and ``graph`` with ``params``/``state`` on one seeded input."""
    ort = require_onnxruntime()
    x = np.random.default_rng(seed).standard_normal((batch, *graph.input_shape)).astype(np.float32)
    expected = Model(graph, params=params, state=state).forward(x)
    got = run_onnxruntime(model, x)
    if got.shape != expected.shape:
        raise InputError(f"{graph.name}: ONNX Runtime's output is {got.shape}, the reference's {expected.shape}")
    difference = float(np.max(np.abs(expected.astype(np.float64) - got)))
    return Agreement(graph.name, f"onnxruntime {ort.__version__}", batch, difference, float(np.max(np.abs(expected))))


def varied_weights(graph: Graph, seed: int = 0) -> tuple[Arrays, Arrays]:
    """The reference's initial weights with nothing left at a neutral value: biases, batch norm's gamma, beta
    and running statistics all drawn, so a convention that differs cannot hide behind a zero or a one."""
    model = Model(graph, seed=seed)
    rng = np.random.default_rng(seed + 1)
    params, state = dict(model.params), dict(model.state)
    for key, value in params.items():
        if key.endswith((".bias", ".beta")):
            params[key] = (0.1 * rng.standard_normal(value.shape)).astype(np.float32)
        elif key.endswith(".gamma"):
            params[key] = (1 + 0.1 * rng.standard_normal(value.shape)).astype(np.float32)
    for key, value in state.items():
        spread = rng.standard_normal(value.shape)
        state[key] = (0.1 * spread if key.endswith("mean") else 1 + 0.5 * np.abs(spread)).astype(np.float32)
    return params, state
