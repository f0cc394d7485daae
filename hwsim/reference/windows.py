"""Sliding windows over NHWC maps, and their adjoint: data movement plus counted accumulation.

``windows`` is im2col without the copy: a strided view (N, Ho, Wo, C, Kh, Kw) of the padded input.
``scatter_windows`` is col2im, the adjoint used by every backward through a window: it adds each
window's values back onto the (padded) input positions it was read from.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwsim.ops import Padding, Window, overlapping
from hwsim.reference import primitives as P


def pad(x: np.ndarray, padding: Padding, value: float = 0.0) -> np.ndarray:
    """(N, H, W, C) -> (N, H + top + bottom, W + left + right, C), filled with ``value``."""
    if padding == Padding():
        return x
    n, h, w, c = x.shape
    top, left = padding.top, padding.left
    out = np.empty((n, h + top + padding.bottom, w + left + padding.right, c), x.dtype)
    out[:, top : top + h, left : left + w] = (
        x  # the interior once, then only the border is filled (np.pad is 2x slower)
    )
    out[:, :top] = value
    out[:, top + h :] = value
    out[:, top : top + h, :left] = value
    out[:, top : top + h, left + w :] = value
    return out


def unpad(x: np.ndarray, padding: Padding) -> np.ndarray:
    """Inverse of :func:`pad`: crop the padded border away."""
    n, h, w, c = x.shape
    return x[:, padding.top : h - padding.bottom, padding.left : w - padding.right, :]


def windows(xp: np.ndarray, window: Window) -> np.ndarray:
    """View of a padded (N, Hp, Wp, C) map as (N, Ho, Wo, C, Kh, Kw), taps ``dilation`` apart; no copy."""
    view = sliding_window_view(xp, window.extent, axis=(1, 2))
    (sh, sw), (dh, dw) = window.stride, window.dilation
    return view[:, ::sh, ::sw, :, ::dh, ::dw]


def scatter_windows(cols: np.ndarray, padded_shape: tuple[int, ...], window: Window) -> np.ndarray:
    """Adjoint of :func:`windows`: (N, Ho, Wo, C, Kh, Kw) -> (N, Hp, Wp, C), summing overlaps.

    One pass per kernel tap. The first tap, and every tap when windows do not overlap
    (:func:`hwsim.ops.overlapping`), is a plain copy; the others add onto what is there, Ho * Wo * C adds each.
    """
    n, ho, wo, c, kh, kw = cols.shape
    sh, sw = window.stride
    (eh, ew) = window.extent
    if (eh, ew, sh, sw) == (1, 1, 1, 1):  # pointwise: each position is its own window
        return cols[..., 0, 0]
    dh, dw = window.dilation
    out = np.zeros(padded_shape, dtype=cols.dtype)
    adding = overlapping(window)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            index = (slice(None), slice(top, top + sh * (ho - 1) + 1, sh), slice(left, left + sw * (wo - 1) + 1, sw))
            if adding and (i, j) != (0, 0):
                P.accumulate(out, index, cols[..., i, j])
            else:
                out[index] = cols[..., i, j]
    return out
