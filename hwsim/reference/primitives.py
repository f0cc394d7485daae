"""Counted array primitives: each does its NumPy work and records the scalar operations it performed.

Counts come from the shapes of the arrays actually touched, never from a layer's formula:

- elementwise (add, sub, mul, div, maximum, greater, greater_equal, exp, log, sqrt, power):
  1 per output element (after broadcasting);
- reductions (sum, max, argmax) over n elements: n - 1 per output element;
- contractions (matmul, contract): 2 per multiply-add, i.e. 2 * M * K * N for a matmul;
  a product with no summed index is elementwise (1 per output);
- data movement (reshape, pad, windows, transpose, concatenate, gather/scatter, copy): 0.

Scalars computed in Python (``1 / m``, a bias correction) are not array work and are not counted.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.reference.counting import record

ArrayLike = np.ndarray | float


def _elementwise(result: np.ndarray) -> np.ndarray:
    record(np.size(result))
    return result


def add(a: ArrayLike, b: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
    return _elementwise(np.add(a, b, out=out))


def sub(a: ArrayLike, b: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
    return _elementwise(np.subtract(a, b, out=out))


def mul(a: ArrayLike, b: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
    return _elementwise(np.multiply(a, b, out=out))


def div(a: ArrayLike, b: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
    return _elementwise(np.divide(a, b, out=out))


def maximum(a: ArrayLike, b: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
    return _elementwise(np.maximum(a, b, out=out))


def greater(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    return _elementwise(np.greater(a, b))


def greater_equal(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    return _elementwise(np.greater_equal(a, b))


def exp(a: np.ndarray) -> np.ndarray:
    return _elementwise(np.exp(a))


def log(a: np.ndarray) -> np.ndarray:
    return _elementwise(np.log(a))


def sqrt(a: np.ndarray) -> np.ndarray:
    return _elementwise(np.sqrt(a))


def power(a: np.ndarray, exponent: float) -> np.ndarray:
    return _elementwise(np.power(a, exponent))


def _reduced(a: np.ndarray, result: np.ndarray) -> np.ndarray:
    outputs = np.size(result)
    record((a.size // outputs - 1) * outputs)
    return result


def sum(a: np.ndarray, axis: int | tuple[int, ...], keepdims: bool = False) -> np.ndarray:  # noqa: A001
    return _reduced(a, np.sum(a, axis=axis, keepdims=keepdims))


def max(a: np.ndarray, axis: int | tuple[int, ...], keepdims: bool = False) -> np.ndarray:  # noqa: A001
    return _reduced(a, np.max(a, axis=axis, keepdims=keepdims))


def argmax(a: np.ndarray, axis: int) -> np.ndarray:
    """Index of the largest element along ``axis``: n - 1 comparisons per output, like :func:`max`."""
    return _reduced(a, np.argmax(a, axis=axis))


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for (..., M, K) @ (..., K, N): 2 * M * K * N per matrix in the batch."""
    if a.ndim == 3 and len(a) == len(b) == 1:
        result = np.matmul(a[0], b[0])[None]  # a plain matrix product reaches BLAS even when transposed
    elif a.ndim > 2:
        result = np.matmul(np.ascontiguousarray(a), np.ascontiguousarray(b))  # stacks reach BLAS only when contiguous
    else:
        result = np.matmul(a, b)
    record(2 * result.size * a.shape[-1])
    return result


def contract(subscripts: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-operand ``einsum`` (explicit ``->`` form); 2 per multiply-add over all index values.

    Used where a matmul would need a copy first: depthwise convolution over a window view.
    """
    inputs, output = subscripts.replace(" ", "").split("->")
    left, right = inputs.split(",")
    sizes = dict(zip(left, a.shape)) | dict(zip(right, b.shape))
    products = math.prod(sizes.values())
    summed = set(left + right) - set(output)
    record(2 * products if summed else products)
    return np.einsum(subscripts, a, b)


def accumulate(target: np.ndarray, index: tuple, values: np.ndarray) -> None:
    """``target[index] += values`` in place: one add per element of ``values``."""
    target[index] += values
    record(np.size(values))
