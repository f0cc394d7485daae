"""Shape inference and parameter counts, one rule per op.

Every rule raises :class:`ShapeError` with the numbers involved when a layer cannot run on the
shape it is given, so the user sees ``kernel 11 > padded input 7`` rather than a negative size.
"""

from __future__ import annotations

import math

from hwsim.ops import (
    Attrs,
    BatchNormAttrs,
    ConvAttrs,
    DenseAttrs,
    Op,
    Padding,
    PoolAttrs,
    Shape,
)


class ShapeError(ValueError):
    """A layer does not fit the shape of its input(s)."""


def resolve_padding(mode: str | int, size: tuple[int, int], stride: tuple[int, int], hw: tuple[int, int]) -> Padding:
    """Per-side padding for ``same`` (TensorFlow's rule: extra pixel at the bottom/right), ``valid`` or an int."""
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


def _windowed_hw(
    shape: Shape, size: tuple[int, int], stride: tuple[int, int], pad: Padding, what: str
) -> tuple[int, int]:
    h, w, _ = shape
    return (
        _window_output(h, size[0], stride[0], pad.top, pad.bottom, what, "height"),
        _window_output(w, size[1], stride[1], pad.left, pad.right, what, "width"),
    )


def infer_output_shape(op: Op, attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    """Output shape of ``op`` applied to ``inputs``; raises :class:`ShapeError` if it cannot apply."""
    shape = inputs[0]
    h, w, c = shape
    if op in (Op.CONV, Op.DWCONV):
        assert isinstance(attrs, ConvAttrs)
        if c % attrs.groups or attrs.out_channels % attrs.groups:
            raise ShapeError(f"groups {attrs.groups} must divide input channels {c} and filters {attrs.out_channels}")
        oh, ow = _windowed_hw(shape, attrs.kernel, attrs.stride, attrs.padding, "kernel")
        return (oh, ow, attrs.out_channels)
    if op in (Op.MAXPOOL, Op.AVGPOOL):
        assert isinstance(attrs, PoolAttrs)
        oh, ow = _windowed_hw(shape, attrs.size, attrs.stride, attrs.padding, "pool size")
        return (oh, ow, c)
    if op is Op.GLOBAL_AVG_POOL:
        return (1, 1, c)
    if op is Op.FLATTEN:
        return (1, 1, h * w * c)
    if op is Op.DENSE:
        assert isinstance(attrs, DenseAttrs)
        if (h, w) != (1, 1):
            raise ShapeError(
                f"dense needs a flat input (1x1xC), got {h}x{w}x{c}: add a flatten or global_avg_pool before it"
            )
        return (1, 1, attrs.units)
    if op is Op.ADD:
        if len(set(inputs)) != 1:
            raise ShapeError("add of different shapes: " + ", ".join("x".join(map(str, s)) for s in inputs))
        return shape
    if op is Op.CONCAT:
        if len({s[:2] for s in inputs}) != 1:
            raise ShapeError("concat needs equal height and width: " + ", ".join("x".join(map(str, s)) for s in inputs))
        return (h, w, sum(s[2] for s in inputs))
    if op in (Op.BATCHNORM, Op.RELU, Op.SOFTMAX, Op.DROPOUT, Op.LRN):
        return shape
    raise ValueError(f"no shape rule for op {op!r}")


def count_params(op: Op, attrs: Attrs, inputs: tuple[Shape, ...]) -> tuple[int, int]:
    """(trainable parameters, non-trainable state) of one layer.

    Batch norm has 2 parameters per channel (gamma, beta), as the paper counts, and 2 of state
    (running mean and variance).
    """
    c = inputs[0][2]
    if op in (Op.CONV, Op.DWCONV):
        assert isinstance(attrs, ConvAttrs)
        kh, kw = attrs.kernel
        weights = kh * kw * (c // attrs.groups) * attrs.out_channels
        return weights + (attrs.out_channels if attrs.bias else 0), 0
    if op is Op.DENSE:
        assert isinstance(attrs, DenseAttrs)
        return c * attrs.units + (attrs.units if attrs.bias else 0), 0
    if op is Op.BATCHNORM:
        assert isinstance(attrs, BatchNormAttrs)
        return 2 * c, 2 * c
    return 0, 0
