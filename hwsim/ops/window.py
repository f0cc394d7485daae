"""Sliding windows, shared by convolutions and pools: padding, output sizes, and the backward's overlaps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hwsim.ops.base import Attrs, NonNegativeInt, Shape, ShapeError

if TYPE_CHECKING:
    from hwsim.model.graph import Layer

PaddingMode = (
    Literal["same", "valid"] | NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt]
)
"""How a network file writes padding: TensorFlow's ``same`` and ``valid``, zeros on every side, or
``[top, bottom, left, right]`` (an imported model's explicit pads, which neither rule may give)."""


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


def resolve_padding(
    mode: str | int | tuple[int, ...], size: tuple[int, int], stride: tuple[int, int], hw: tuple[int, int]
) -> Padding:
    """Per-side padding for ``same`` (TensorFlow's rule: extra pixel at the bottom/right), ``valid``, an int,
    or ``(top, bottom, left, right)``."""
    if isinstance(mode, tuple):
        return Padding(*mode)
    if mode == "valid":
        return Padding()
    if mode == "same":
        sides = []
        for k, s, n in zip(size, stride, hw):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            sides.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = sides
        return Padding(top, bottom, left, right)
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
    return (
        _window_output(h, window.kernel[0], window.stride[0], pad.top, pad.bottom, what, "height"),
        _window_output(w, window.kernel[1], window.stride[1], pad.left, pad.right, what, "width"),
    )


def window_scatter(layer: Layer, batch: int, channels: int, window: Window) -> int:
    """Adds to sum overlapping windows back onto the input (col2im): none when windows do not overlap."""
    size, stride = window.kernel, window.stride
    ho, wo, _ = layer.output_shape
    overlapping = stride[0] < size[0] or stride[1] < size[1]
    return (size[0] * size[1] - 1) * batch * ho * wo * channels if overlapping else 0
