"""Counted array primitives: each does its NumPy work and records the scalar operations it performed.

Counts come from the shapes of the arrays actually touched, never from a layer's formula:

- elementwise (add, sub, mul, div, maximum, minimum, negative, greater, greater_equal, equal, exp, log,
  sqrt, power, tanh, erf): 1 per output element (after broadcasting);
- reductions (sum, max, argmax, segment_sum) over n elements: n - 1 per output element;
- contractions (matmul, contract): 2 per multiply-add, i.e. 2 * M * K * N for a matmul;
  a product with no summed index is elementwise (1 per output);
- data movement (reshape, pad, windows, transpose, concatenate, gather/scatter, copy): 0.

Scalars computed in Python (``1 / m``, a bias correction) are not array work and are not counted.
"""

from __future__ import annotations

import builtins
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


def minimum(a: ArrayLike, b: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
    return _elementwise(np.minimum(a, b, out=out))


def negative(a: np.ndarray) -> np.ndarray:
    return _elementwise(np.negative(a))


def equal(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    return _elementwise(np.equal(a, b))


def greater(a: ArrayLike, b: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
    return _elementwise(np.greater(a, b, out=out))


def greater_equal(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    return _elementwise(np.greater_equal(a, b))


def exp(a: np.ndarray) -> np.ndarray:
    return _elementwise(np.exp(a))


def log(a: np.ndarray) -> np.ndarray:
    return _elementwise(np.log(a))


def tanh(a: np.ndarray) -> np.ndarray:
    """One transcendental per element, as :func:`exp` counts."""
    return _elementwise(np.tanh(a))


def sqrt(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return _elementwise(np.sqrt(a, out=out))


def power(a: np.ndarray, exponent: float) -> np.ndarray:
    return _elementwise(np.power(a, exponent))


def erf(a: np.ndarray, block: int = 1 << 14) -> np.ndarray:
    """The error function, one op an element like :func:`exp` (NumPy has none; computed as :func:`_erf`, ``block``
    elements at a time, so that its float64 temporaries stay small)."""
    flat = np.ascontiguousarray(a).reshape(-1)
    result = np.empty_like(flat)
    for start in range(0, flat.size, block):
        result[start : start + block] = _erf(flat[start : start + block])
    return _elementwise(result.reshape(np.shape(a)))


# W. J. Cody's rational approximations (SPECFUN's CALERF, Math. Comp. 23, 1969): erf near 0, erfc beyond,
# accurate to the last bits of a float64.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03)
_ERF_A4 = 1.85777706184603153e-1
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERFC_C = (
    *(5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02),
    *(8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03),
)
_ERFC_C8 = 2.15311535474403846e-8
_ERFC_D = (
    *(1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03),
    *(3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03),
)
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2)
_ERFC_P45 = (6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2)
_ERFC_Q4 = 2.33520497626869185e-3


def _erf(a: np.ndarray) -> np.ndarray:
    """erf of every element, in float64, returned in ``a``'s dtype: |x| <= 0.5 by a rational function of x²,
    beyond it 1 - erfc(|x|) with erfc(y) = exp(-y²) R(y) (R rational in y up to 4, in 1/y² beyond), the sign
    restored. exp(-y²) is taken as exp(-z²)·exp(-(y - z)(y + z)), z = y rounded down to 1/16, as Cody does."""
    x = np.asarray(a, np.float64)
    y = np.minimum(np.abs(x), 27.0)  # erfc(27) is below the smallest float64: 0
    result = np.empty_like(x)
    near = y <= 0.5
    xs = x[near]
    s = xs * xs
    num, den = _ERF_A4 * s, s
    for coefficient_a, coefficient_b in zip(_ERF_A[:3], _ERF_B[:3]):
        num, den = (num + coefficient_a) * s, (den + coefficient_b) * s
    result[near] = xs * (num + _ERF_A[3]) / (den + _ERF_B[3])
    far = ~near
    yf = y[far]
    mid = yf <= 4.0
    ratio = np.empty_like(yf)
    ym = yf[mid]
    num, den = _ERFC_C8 * ym, ym
    for coefficient_c, coefficient_d in zip(_ERFC_C[:7], _ERFC_D[:7]):
        num, den = (num + coefficient_c) * ym, (den + coefficient_d) * ym
    ratio[mid] = (num + _ERFC_C[7]) / (den + _ERFC_D[7])
    yt = yf[~mid]
    inverse = 1.0 / (yt * yt)
    num, den = _ERFC_P45[1] * inverse, inverse
    for coefficient_p, coefficient_q in zip(_ERFC_P, _ERFC_Q):
        num, den = (num + coefficient_p) * inverse, (den + coefficient_q) * inverse
    ratio[~mid] = (1 / math.sqrt(math.pi) - inverse * (num + _ERFC_P45[0]) / (den + _ERFC_Q4)) / yt
    z = np.floor(yf * 16.0) / 16.0
    erfc = np.exp(-z * z) * np.exp(-(yf - z) * (yf + z)) * ratio
    result[far] = np.copysign(1.0 - erfc, x[far])
    return result.astype(np.asarray(a).dtype, copy=False)


def _reduced(a: np.ndarray, result: np.ndarray) -> np.ndarray:
    outputs = np.size(result)
    record((a.size // outputs - 1) * outputs)
    return result


def sum(a: np.ndarray, axis: int | tuple[int, ...], keepdims: bool = False) -> np.ndarray:  # noqa: A001
    return _reduced(a, np.sum(a, axis=axis, keepdims=keepdims))


def max(a: np.ndarray, axis: int | tuple[int, ...], keepdims: bool = False) -> np.ndarray:  # noqa: A001
    return _reduced(a, np.max(a, axis=axis, keepdims=keepdims))


def segment_sum(a: np.ndarray, starts: np.ndarray, axis: int) -> np.ndarray:
    """Sums of the consecutive runs of ``a`` along ``axis`` that begin at ``starts`` (increasing, from 0):
    n - 1 adds for a run of n, as :func:`sum` counts. Every run must hold at least one element."""
    if starts[0] != 0 or (np.diff(starts) <= 0).any():
        raise ValueError("segment_sum needs runs that start at 0 and are not empty")
    result = np.add.reduceat(a, starts, axis=axis)
    record((a.shape[axis] - len(starts)) * (a.size // a.shape[axis]))
    return result


def argmax(a: np.ndarray, axis: int) -> np.ndarray:
    """Index of the largest element along ``axis``: n - 1 comparisons per output, like :func:`max`."""
    return _reduced(a, np.argmax(a, axis=axis))


def max_of(candidates: list[np.ndarray]) -> np.ndarray:
    """Elementwise largest of k same-shaped arrays: k - 1 comparisons per element, as :func:`max` over them.

    Used for pooling over the Kh*Kw taps of a window: k - 1 two-array maximums over strided tap views
    run on SIMD loops, where a reduction over a small trailing window axis does not.
    """
    best = np.array(candidates[0], copy=True)
    for candidate in candidates[1:]:
        maximum(best, candidate, out=best)
    return best


def argmax_of(candidates: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise largest of k same-shaped arrays and the index of the first one holding it.

    k - 1 comparisons per element, as :func:`argmax` over the stacked arrays counts. Each
    comparison yields both results: the running maximum and, for the index, the elements where
    the candidate won (ties go to the earlier candidate, as in ``np.argmax``). Candidate k wins
    over all earlier indices, so the index update is ``index = max(index, k * won)``: bookkeeping
    on small integers, like the index ``np.argmax`` tracks, not arithmetic on the data.
    """
    if len(candidates) > 256:
        raise ValueError(f"argmax_of takes at most 256 candidates (a uint8 index), got {len(candidates)}")
    best = np.array(candidates[0], copy=True)
    index = np.zeros(best.shape, np.uint8)
    won = np.empty(best.shape, bool)
    for k, candidate in enumerate(candidates[1:], start=1):
        np.greater(candidate, best, out=won)
        np.maximum(best, candidate, out=best)
        np.maximum(index, np.multiply(won, np.uint8(k), dtype=np.uint8), out=index)
    record((len(candidates) - 1) * best.size)
    return best, index


def select(mask: np.ndarray, values: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = values where mask else 0``, branch-free: data movement, no arithmetic counted.

    The float bits are ANDed with an all-ones or all-zeros word per element (a blend, not a
    multiply: a masked-out inf or nan gives 0); a masked copy with an unpredictable mask is 10x slower.
    """
    word = np.dtype(f"u{values.dtype.itemsize}")
    bits = np.subtract(word.type(0), mask, dtype=word)  # True -> all ones
    np.bitwise_and(values.view(word), bits, out=out.view(word))
    return out


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


def correlate_depthwise(xp: np.ndarray, weight: np.ndarray, block_elements: int = 1 << 17) -> np.ndarray:
    """y[n, h, w, c] = sum_{i, j} xp[n, h + i, w + j, c] * weight[i, j, c]: stride 1, (N, Ho, Wo, C).

    The contraction ``nhwcij,ijc->nhwc`` over the window view, counted like :func:`contract`:
    2 per multiply-add, 2 * N*Ho*Wo*C*Kh*Kw. Run as Kh*Kw shifted multiply-adds over blocks of whole
    output rows, each row Wo*C contiguous elements against the tap's weights tiled along it; einsum's
    inner loop runs over C alone, 1.5-3x slower when C is below about 128.
    """
    kh, kw, c = weight.shape
    n, hp, wp, _ = xp.shape
    ho, wo = hp - kh + 1, wp - kw + 1
    row = wo * c
    rows = xp.reshape(n, hp, wp * c)
    taps = np.tile(weight, (1, 1, wo))  # (Kh, Kw, Wo*C)
    y = np.empty((n, ho, row), xp.dtype)
    h_block = min(ho, builtins.max(1, block_elements // row))  # this module's max is the counted one
    n_block = builtins.max(1, block_elements // (ho * row)) if h_block == ho else 1
    product = np.empty((n_block, h_block, row), xp.dtype)
    for n0 in range(0, n, n_block):
        for h0 in range(0, ho, h_block):
            out = y[n0 : n0 + n_block, h0 : h0 + h_block]
            scratch = product[: out.shape[0], : out.shape[1]]
            for i in range(kh):
                for j in range(kw):
                    tap = rows[n0 : n0 + out.shape[0], h0 + i : h0 + i + out.shape[1], j * c : j * c + row]
                    np.multiply(tap, taps[i, j], out=out if i == j == 0 else scratch)
                    if i or j:
                        np.add(out, scratch, out=out)
    record(2 * y.size * kh * kw)
    return y.reshape(n, ho, wo, c)


def accumulate(target: np.ndarray, index: tuple, values: np.ndarray) -> None:
    """``target[index] += values`` in place: one add per element of ``values``."""
    target[index] += values
    record(np.size(values))
