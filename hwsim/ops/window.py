"""Sliding windows, shared by convolutions and pools: padding, output sizes, and the backward's overlaps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from hwsim.ops.base import Attrs, NonNegativeInt, Shape, ShapeError

if TYPE_CHECKING:
    from hwsim.model.graph import Layer

PaddingMode = (
    Literal["same", "valid"] | NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt]
)
"""How a network file writes padding: TensorFlow's ``same`` and ``valid``, zeros on every side, or
[top, bottom, left, right]."""


@dataclass(frozen=True)
class Padding:
    """Zeros (or -inf for max pooling) added on each side of the map."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


@dataclass(frozen=True)
class Window(Attrs):
    """Attributes of an op that slides a window over the map (:attr:`hwsim.ops.Rows.WINDOW`)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: Padding

    @property
    def dilation(self) -> tuple[int, int]:
        """Rows and columns between a window's taps (a convolution's attribute; 1 for pools)."""
        return (1, 1)

    @cached_property
    def extent(self) -> tuple[int, int]:
        """Rows and columns one window spans: the kernel, spread out by its dilation (cached: the schedulers
        ask for it with every band)."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return ((kh - 1) * dh + 1, (kw - 1) * dw + 1)


def resolve_padding(
    mode: str | int | tuple[int, ...], extent: tuple[int, int], stride: tuple[int, int], hw: tuple[int, int]
) -> Padding:
    """Per-side padding for ``same`` (TensorFlow's rule: extra pixel at the bottom/right), ``valid``, an int
    or [top, bottom, left, right]. ``extent``: the rows and columns a window spans."""
    if mode == "valid":
        return Padding()
    if mode == "same":
        sides = []
        for k, s, n in zip(extent, stride, hw):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            sides.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = sides
        return Padding(top, bottom, left, right)
    if isinstance(mode, tuple):
        return Padding(*mode)
    p = int(mode)
    return Padding(p, p, p, p)


def _window_output(n: int, k: int, s: int, before: int, after: int, what: str, axis: str) -> int:
    padded = n + before + after
    if k > padded:
        raise ShapeError(f"{what} {k} > padded input {padded} ({axis})")
    return (padded - k) // s + 1


def windowed_hw(shape: Shape, window: Window, what: str) -> tuple[int, int]:
    """Output height and width of ``window`` slid over ``shape``; ``what`` names the window in errors."""
    h, w, _ = shape
    pad = window.padding
    (eh, ew), (kh, kw) = window.extent, window.kernel
    return (
        _window_output(h, eh, window.stride[0], pad.top, pad.bottom, what if eh == kh else f"dilated {what}", "height"),
        _window_output(w, ew, window.stride[1], pad.left, pad.right, what if ew == kw else f"dilated {what}", "width"),
    )


def overlapping(window: Window) -> bool:
    """Whether a window's span reaches into the next window's along either axis: the backward then adds
    each tap after the first onto what earlier taps left (col2im), instead of copying it."""
    (eh, ew), (sh, sw) = window.extent, window.stride
    return sh < eh or sw < ew


def window_scatter(layer: Layer, batch: int, channels: int, window: Window) -> int:
    """Adds to sum overlapping windows back onto the input (col2im): none when windows do not overlap."""
    ho, wo, _ = layer.output_shape
    kh, kw = window.kernel
    return (kh * kw - 1) * batch * ho * wo * channels if overlapping(window) else 0
