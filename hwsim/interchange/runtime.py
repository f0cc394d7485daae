"""ONNX Runtime as a second oracle: a model run there and in the NumPy reference, on the same input and weights.

:func:`agreement` feeds one seeded input (NCHW to ONNX Runtime, NHWC to the reference) and compares the
outputs in fp32 by the relative error ``max |reference - runtime| / max |reference|``: a scale-free measure
that an output near zero cannot inflate. A network that ends in softmax is compared on its logits: a
saturated softmax is the same one-hot vector for very different logits. :data:`TOLERANCE` is the issue's 1e-4.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwsim.errors import InputError
from hwsim.model.graph import INPUT, Graph
from hwsim.ops import Op
from hwsim.reference import Model
from hwsim.reference.base import Arrays, layer_of
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
    compared: str
    """What was compared: ``the output``, or the logits before a final softmax (which would flatten a difference)."""
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
            f"{self.network}: {self.runtime} {verdict} the NumPy reference on {self.compared}: max relative error "
            f"{self.relative_error:.2e} (tolerance {TOLERANCE:.0e}; fp32, batch {self.batch})"
        )


def run_onnxruntime(model: bytes, x: np.ndarray, output: str | None = None, nhwc: bool = False) -> np.ndarray:
    """The model's output (or the tensor ``output``) for the NHWC batch ``x`` (N, H, W, C), back in hwsim's
    layout: NHWC, or (N, 1, 1, F) for flat features. ``nhwc``: the model reads NHWC images as they are."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the ops as written
    options.log_severity_level = 4  # fatal only: an error reaches the user as hwsim's one line, not the logger's too
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        entry = session.get_inputs()[0]
        flat = len(entry.shape) == 2  # (N, features): hwsim's (N, 1, 1, F)
        image = x if nhwc else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        feed = {entry.name: x.reshape(len(x), -1) if flat else image}
        (result,) = session.run([output] if output else None, feed)
    except Exception as err:  # onnxruntime raises its own exception types, one per failure kind
        raise InputError(f"ONNX Runtime cannot run the model: {str(err).splitlines()[0]}") from None
    if result.ndim == 4:
        return result.transpose(0, 2, 3, 1)
    return result.reshape(result.shape[0], 1, 1, -1)


def _logits(graph: Graph) -> Graph | None:
    """The graph up to the input of its final softmax, or None when it does not end in one."""
    source = graph.output.inputs[0]
    if graph.output.op is not Op.SOFTMAX or source == INPUT:
        return None
    end = next(i for i, layer in enumerate(graph.layers) if layer.name == source)
    return Graph(graph.name, graph.input_shape, graph.layers[: end + 1])


def agreement(
    graph: Graph,
    params: Arrays,
    state: Arrays,
    model: Any,
    batch: int = 1,
    seed: int = 0,
    tensor_of: Callable[[str], str] = lambda layer: layer,
    nhwc: bool = False,
) -> Agreement:
    """Run ``model`` (an ``onnx.ModelProto``) and ``graph`` with ``params``/``state`` on one seeded input.

    The output compared is the ONNX tensor of the last layer (``tensor_of`` names the tensor that holds a
    layer's output; an exported model names tensors after the layers), not an NHWC Transpose after it; a
    network that ends in softmax is compared on its logits. ``nhwc``: the model reads NHWC images."""
    ort = require_onnxruntime()
    x = np.random.default_rng(seed).standard_normal((batch, *graph.input_shape)).astype(np.float32)
    logits = _logits(graph)
    compared = logits or graph
    output = tensor_of(compared.output.name)
    model = _with_output(model, output)
    expected = Model(compared, params=params, state=_state_of(compared, state)).forward(x)
    got = run_onnxruntime(model.SerializeToString(), x, output, nhwc)
    if got.shape != expected.shape:
        raise InputError(f"{graph.name}: ONNX Runtime's output is {got.shape}, the reference's {expected.shape}")
    difference = float(np.max(np.abs(expected.astype(np.float64) - got)))
    what = "the logits (before the final softmax)" if logits else "the output"
    runtime = f"onnxruntime {ort.__version__}"
    return Agreement(graph.name, runtime, batch, what, difference, float(np.max(np.abs(expected))))


def _state_of(graph: Graph, state: Arrays) -> Arrays:
    names = {layer.name for layer in graph.layers}
    return {key: value for key, value in state.items() if layer_of(key) in names}


def _with_output(model: Any, tensor: str) -> Any:
    """A copy of ``model`` that also outputs ``tensor`` (ONNX Runtime returns graph outputs only)."""
    from onnx import ModelProto, ValueInfoProto

    copy = ModelProto()
    copy.CopyFrom(model)
    if tensor not in {value.name for value in copy.graph.output}:
        copy.graph.output.append(ValueInfoProto(name=tensor))
    return copy


def varied_weights(graph: Graph, seed: int = 0) -> tuple[Arrays, Arrays]:
    """The reference's initial weights with nothing left at a neutral value: biases, batch norm's gamma, beta
    and running statistics all drawn, so a convention that differs cannot hide behind a zero or a one."""
    model = Model(graph, seed=seed)
    rng = np.random.default_rng(seed + 1)
    params, state = dict(model.params), dict(model.state)
    for key, value in params.items():
        if key.endswith((".bias", ".beta")):
            params[key] = (0.1 * rng.standard_normal(value.shape)).astype(np.float32)
        elif key.endswith(".slope"):  # prelu's, all 0.25 at first
            params[key] = (0.25 + 0.1 * rng.standard_normal(value.shape)).astype(np.float32)
        elif key.endswith(".gamma"):
            params[key] = (1 + 0.1 * rng.standard_normal(value.shape)).astype(np.float32)
    for key, value in state.items():
        spread = rng.standard_normal(value.shape)
        state[key] = (0.1 * spread if key.endswith("mean") else 1 + 0.5 * np.abs(spread)).astype(np.float32)
    return params, state
