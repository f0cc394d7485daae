"""Shared helpers for the reference tests: one-layer graphs and a central-difference gradient check."""

from __future__ import annotations

import numpy as np

from hwsim.model.graph import INPUT, Layer
from hwsim.ops import Attrs, NoAttrs, Op, Shape, count_params, infer_output_shape
from hwsim.reference.kernels import make_kernel

# A residual/concat network touching most ops: conv, dwconv, BN, relu, add, concat, pools, dense, dropout, softmax.
SMALL_NET = """
name: small
input: [6, 6, 2]
layers:
  - {op: conv, kernel: 3, filters: 4, name: c1}
  - {op: batchnorm, name: bn1}
  - {op: relu, name: r1}
  - {op: dwconv, kernel: 3, name: dw}
  - {op: add, inputs: [dw, r1], name: res}
  - {op: lrn, size: 3, name: norm}
  - {op: concat, inputs: [norm, r1], name: cat}
  - {op: maxpool, size: 2, name: mp}
  - {op: avgpool, size: 3, stride: 1, padding: same, name: ap}
  - {op: global_avg_pool, name: gap}
  - {op: dropout, rate: 0.2, name: drop}
  - {op: dense, units: 3, name: fc}
  - {op: softmax, name: out}
"""


NO_ATTRS = NoAttrs()


def make_layer(op: Op, input_shapes: tuple[Shape, ...], attrs: Attrs = NO_ATTRS, name: str = "layer") -> Layer:
    output = infer_output_shape(op, attrs, input_shapes)
    params, state = count_params(op, attrs, input_shapes)
    inputs = tuple(f"in{i}" for i in range(len(input_shapes))) if len(input_shapes) > 1 else (INPUT,)
    return Layer(name, op, inputs, input_shapes, output, attrs, params, state)


def random_inputs(layer: Layer, batch: int, seed: int = 0, dtype=np.float64) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, *shape)).astype(dtype) for shape in layer.input_shapes]


def random_params(layer: Layer, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """The kernel's parameters with every entry random (so biases and gamma are not trivial)."""
    fresh = make_kernel(layer, np.random.default_rng(seed)).init_params(np.dtype(dtype))
    rng = np.random.default_rng(seed + 1)
    return {key: rng.standard_normal(value.shape).astype(dtype) for key, value in fresh.items()}


def run(layer: Layer, inputs, params, training: bool, state=None, seed: int = 0):
    """(kernel, output) of one forward, with a fresh kernel whose rng is seeded by ``seed``."""
    kernel = make_kernel(layer, np.random.default_rng(seed))
    state = kernel.init_state(inputs[0].dtype) if state is None else state
    return kernel, kernel.forward(list(inputs), params, state, training)


def numeric_gradient(f, array: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every element of ``array`` (perturbed in place)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + h
        plus = f()
        array[index] = original - h
        minus = f()
        array[index] = original
        grad[index] = (plus - minus) / (2 * h)
    return grad


def check_gradients(
    layer: Layer, batch: int = 2, training: bool = True, seed: int = 0, rtol: float = 1e-5, atol: float = 1e-7
) -> None:
    """Every input and parameter gradient of ``layer``'s backward against central differences, in float64.

    The scalar is sum(forward(...) * R) for a fixed random R, so dL/dOutput = R.
    """
    inputs = random_inputs(layer, batch, seed)
    params = random_params(layer, seed)
    kernel, y = run(layer, inputs, params, training)
    weights = np.random.default_rng(seed + 2).standard_normal(y.shape)
    dxs, grads = kernel.backward(weights, params, tuple(True for _ in inputs))

    def loss() -> float:
        return float(np.sum(run(layer, inputs, params, training)[1] * weights))

    for i, (x, dx) in enumerate(zip(inputs, dxs)):
        np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=rtol, atol=atol, err_msg=f"input {i}")
    assert set(grads) == set(params)
    for key, value in params.items():
        np.testing.assert_allclose(grads[key], numeric_gradient(loss, value), rtol=rtol, atol=atol, err_msg=key)
