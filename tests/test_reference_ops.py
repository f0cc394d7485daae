"""Every op's forward against a naive loop, and its backward against central differences (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_helpers import check_gradients, make_layer, random_inputs, random_params, run

from hwsim.ops import (
    BatchNormAttrs,
    ClipAttrs,
    ConvAttrs,
    DenseAttrs,
    DropoutAttrs,
    HardSigmoidAttrs,
    LeakyReluAttrs,
    LrnAttrs,
    Op,
    PadAttrs,
    Padding,
    PoolAttrs,
)
from hwsim.ops.pool import PoolLayer


@st.composite
def conv_layers(draw):
    """A conv of random kernel, stride, per-side padding and groups (dense, grouped, depthwise with multiplier)."""
    groups = draw(st.sampled_from([1, 2, 3]))
    in_per_group = draw(st.sampled_from([1, 2]))
    out_per_group = draw(st.sampled_from([1, 2]))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = Padding(*(draw(st.integers(0, 1)) for _ in range(4)))
    attrs = ConvAttrs(kernel, stride, padding, groups, groups * out_per_group, draw(st.booleans()), dilation)
    h, w = draw(st.integers(attrs.extent[0], 6)), draw(st.integers(attrs.extent[1], 6))
    op = Op.DWCONV if in_per_group == 1 else Op.CONV
    return make_layer(op, ((h, w, groups * in_per_group),), attrs)


@st.composite
def pool_layers(draw, op):
    """A pool of random size, stride, per-side padding (below the size), ceil_mode and, for avgpool,
    count_include_pad, built from its YAML entry."""
    size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = [draw(st.integers(0, s - 1)) for s in (size[0], size[0], size[1], size[1])]
    h, w = draw(st.integers(size[0], 5)), draw(st.integers(size[1], 5))
    entry = {"op": op.value, "size": size, "stride": stride, "padding": padding, "ceil_mode": draw(st.booleans())}
    if op is Op.AVGPOOL:
        entry["count_include_pad"] = draw(st.booleans())
    shape = (h, w, draw(st.integers(1, 3)))
    return make_layer(op, (shape,), PoolLayer.model_validate(entry).attrs(shape))


def _padded(x, padding: Padding, value: float = 0.0):
    widths = ((0, 0), (padding.top, padding.bottom), (padding.left, padding.right), (0, 0))
    return np.pad(x, widths, constant_values=value)


def naive_conv(x, weight, bias, attrs: ConvAttrs):
    xp = _padded(x, attrs.padding)
    kh, kw, in_per_group, out = weight.shape
    out_per_group = out // attrs.groups
    (sh, sw), (dh, dw) = attrs.stride, attrs.dilation
    ho, wo = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1, (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    y = np.zeros((x.shape[0], ho, wo, out))
    for n in range(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                for o in range(out):
                    first = (o // out_per_group) * in_per_group
                    rows, cols = (
                        slice(i * sh, i * sh + (kh - 1) * dh + 1, dh),
                        slice(j * sw, j * sw + (kw - 1) * dw + 1, dw),
                    )
                    patch = xp[n, rows, cols, first : first + in_per_group]
                    y[n, i, j, o] = np.sum(patch * weight[:, :, :, o]) + (bias[o] if bias is not None else 0.0)
    return y


def naive_pool(x, attrs: PoolAttrs, pool: str):
    """PyTorch's pooling loops (aten's pooling_shape and avg_pool2d kernels), with per-side padding: the output
    size rounds up under ceil_mode, less a last window that would start past the input and its leading padding;
    an average divides by the window clipped to the input and its padding, or to the input alone."""
    (kh, kw), (sh, sw) = attrs.kernel, attrs.stride
    top, left = attrs.padding.top, attrs.padding.left
    bottom, right = attrs.padding.bottom - attrs.overhang[0], attrs.padding.right - attrs.overhang[1]
    _, h, w, c = x.shape

    def size(n, k, s, before, after):
        if not attrs.ceil_mode:
            return (n + before + after - k) // s + 1
        out = -(-(n + before + after - k) // s) + 1
        return out - 1 if (out - 1) * s >= n + before else out

    ho, wo = size(h, kh, sh, top, bottom), size(w, kw, sw, left, right)
    y = np.zeros((x.shape[0], ho, wo, c))
    for n, i, j, ch in np.ndindex(y.shape):
        h0, w0 = i * sh - top, j * sw - left
        h1, w1 = min(h0 + kh, h + bottom), min(w0 + kw, w + right)
        window_size = (h1 - h0) * (w1 - w0)
        h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
        values = x[n, h0:h1, w0:w1, ch]
        if pool == "max":
            y[n, i, j, ch] = values.max()
        else:
            y[n, i, j, ch] = values.sum() / (window_size if attrs.count_include_pad else values.size)
    return y


@given(conv_layers())
def test_conv_forward_matches_loops(layer):
    x = random_inputs(layer, 2)
    params = random_params(layer)
    _, y = run(layer, x, params, training=False)
    np.testing.assert_allclose(
        y, naive_conv(x[0], params["weight"], params.get("bias"), layer.attrs), rtol=1e-10, atol=1e-12
    )


@given(conv_layers())
def test_conv_gradients(layer):
    check_gradients(layer)


@given(pool_layers(Op.MAXPOOL), st.booleans())
def test_maxpool_forward_matches_loops(layer, training):
    x = random_inputs(layer, 2)
    _, y = run(layer, x, {}, training=training)
    np.testing.assert_array_equal(y, naive_pool(x[0], layer.attrs, "max"))


@given(pool_layers(Op.AVGPOOL))
def test_avgpool_forward_divides_by_the_counted_taps(layer):
    x = random_inputs(layer, 2)
    _, y = run(layer, x, {}, training=False)
    np.testing.assert_allclose(y, naive_pool(x[0], layer.attrs, "avg"), rtol=1e-12)


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_ceil_mode_adds_a_last_partial_window_divided_by_its_taps(count_include_pad):
    """[1, 2, 3, 4, 5], kernel 2, stride 2, ceil_mode: ONNX Runtime and onnx.reference give [1.5, 3.5, 5.0]."""
    entry = {"op": "avgpool", "size": [1, 2], "ceil_mode": True, "count_include_pad": count_include_pad}
    attrs = PoolLayer.model_validate(entry).attrs((1, 5, 1))
    layer = make_layer(Op.AVGPOOL, ((1, 5, 1),), attrs)
    _, y = run(layer, [np.arange(1.0, 6.0).reshape(1, 1, 5, 1)], {}, training=False)
    assert y.ravel().tolist() == [1.5, 3.5, 5.0]
    attrs = PoolLayer.model_validate({**entry, "size": [1, 3], "stride": [1, 2], "padding": [0, 0, 1, 0]}).attrs(
        (1, 5, 1)
    )
    # padded [0, 1, 2, 3, 4, 5]: windows [0, 1, 2], [2, 3, 4] and, overhanging, [4, 5]: the written zero counts
    # in the first unless count_include_pad is false, the overhang never
    _, y = run(make_layer(Op.AVGPOOL, ((1, 5, 1),), attrs), [np.arange(1.0, 6.0).reshape(1, 1, 5, 1)], {}, False)
    assert y.ravel().tolist() == ([1.0, 3.0, 4.5] if count_include_pad else [1.5, 3.0, 4.5])


@given(st.one_of(pool_layers(Op.MAXPOOL), pool_layers(Op.AVGPOOL)))
def test_pool_gradients(layer):
    check_gradients(layer)


def test_global_avg_pool():
    layer = make_layer(Op.GLOBAL_AVG_POOL, ((3, 4, 2),))
    x = random_inputs(layer, 2)
    _, y = run(layer, x, {}, training=False)
    for n in range(2):
        for c in range(2):
            assert y[n, 0, 0, c] == pytest.approx(sum(x[0][n, i, j, c] for i in range(3) for j in range(4)) / 12)
    check_gradients(layer)


def test_dense():
    layer = make_layer(Op.DENSE, ((1, 1, 4),), DenseAttrs(3, True))
    x = random_inputs(layer, 2)
    params = random_params(layer)
    _, y = run(layer, x, params, training=False)
    for n in range(2):
        for u in range(3):
            expected = sum(x[0][n, 0, 0, c] * params["weight"][c, u] for c in range(4)) + params["bias"][u]
            assert y[n, 0, 0, u] == pytest.approx(expected)
    check_gradients(layer)


def test_relu_and_flatten():
    relu = make_layer(Op.RELU, ((2, 3, 2),))
    x = random_inputs(relu, 2)
    _, y = run(relu, x, {}, training=False)
    np.testing.assert_array_equal(y, [[[[max(v, 0.0) for v in row] for row in col] for col in image] for image in x[0]])
    check_gradients(relu)
    flatten = make_layer(Op.FLATTEN, ((2, 3, 2),))
    _, y = run(flatten, x, {}, training=False)
    assert [y[n, 0, 0, (i * 3 + j) * 2 + c] for n, i, j, c in np.ndindex(x[0].shape)] == list(x[0].ravel())
    check_gradients(flatten)


@pytest.mark.parametrize("shape", [(1, 1, 5), (2, 2, 3)])
def test_softmax(shape):
    layer = make_layer(Op.SOFTMAX, (shape,))
    x = random_inputs(layer, 2)
    _, y = run(layer, x, {}, training=False)
    for n, i, j in np.ndindex(2, *shape[:2]):
        row = x[0][n, i, j]
        total = sum(math.exp(v) for v in row)
        np.testing.assert_allclose(y[n, i, j], [math.exp(v) / total for v in row], rtol=1e-12)
    check_gradients(layer)


def test_add_and_concat():
    add = make_layer(Op.ADD, ((2, 2, 3), (2, 2, 3), (2, 2, 3)))
    x = random_inputs(add, 2)
    _, y = run(add, x, {}, training=False)
    np.testing.assert_allclose(y, x[0] + x[1] + x[2])
    check_gradients(add)
    concat = make_layer(Op.CONCAT, ((2, 2, 3), (2, 2, 1)))
    x = random_inputs(concat, 2)
    _, y = run(concat, x, {}, training=False)
    for n, i, j in np.ndindex(2, 2, 2):
        assert list(y[n, i, j]) == [*x[0][n, i, j], *x[1][n, i, j]]
    check_gradients(concat)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn(size):
    attrs = LrnAttrs(size, alpha=0.5, beta=0.75, k=2.0)
    layer = make_layer(Op.LRN, ((2, 2, 6),), attrs)
    x = random_inputs(layer, 2)
    _, y = run(layer, x, {}, training=False)
    before = (size - 1) // 2
    for n, i, j, c in np.ndindex(x[0].shape):
        lo, hi = max(c - before, 0), min(c - before + size, 6)
        d = attrs.k + attrs.alpha / size * sum(x[0][n, i, j, cc] ** 2 for cc in range(lo, hi))
        assert y[n, i, j, c] == pytest.approx(x[0][n, i, j, c] / d**attrs.beta)
    check_gradients(layer)


def naive_batchnorm(x, gamma, beta, eps):
    y = np.zeros_like(x)
    for c in range(x.shape[3]):
        values = x[..., c].ravel()
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        y[..., c] = gamma[c] * (x[..., c] - mean) / math.sqrt(var + eps) + beta[c]
    return y


def test_batchnorm_training_uses_batch_statistics():
    layer = make_layer(Op.BATCHNORM, ((3, 2, 4),), BatchNormAttrs(eps=1e-3, momentum=0.1))
    x = random_inputs(layer, 2)
    params = random_params(layer)
    _, y = run(layer, x, params, training=True)
    np.testing.assert_allclose(y, naive_batchnorm(x[0], params["gamma"], params["beta"], 1e-3), rtol=1e-10, atol=1e-12)
    check_gradients(layer)


def test_batchnorm_inference_uses_running_statistics():
    layer = make_layer(Op.BATCHNORM, ((3, 2, 4),), BatchNormAttrs(eps=1e-3, momentum=0.1))
    x = random_inputs(layer, 2)
    params = random_params(layer)
    state = {"running_mean": np.arange(4.0), "running_var": np.arange(1.0, 5.0)}
    _, y = run(layer, x, params, training=False, state=state)
    expected = (x[0] - state["running_mean"]) / np.sqrt(state["running_var"] + 1e-3) * params["gamma"] + params["beta"]
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_batchnorm_running_statistics_are_unbiased_moving_averages():
    layer = make_layer(Op.BATCHNORM, ((3, 2, 4),), BatchNormAttrs(eps=1e-3, momentum=0.25))
    state = {"running_mean": np.full(4, 1.0), "running_var": np.full(4, 2.0)}
    x = random_inputs(layer, 2)
    run(layer, x, random_params(layer), training=True, state=state)
    values = x[0].reshape(-1, 4)
    np.testing.assert_allclose(state["running_mean"], 0.75 * 1.0 + 0.25 * values.mean(axis=0))
    np.testing.assert_allclose(state["running_var"], 0.75 * 2.0 + 0.25 * values.var(axis=0, ddof=1))


def test_batchnorm_training_needs_two_values_per_channel():
    layer = make_layer(Op.BATCHNORM, ((1, 1, 4),), BatchNormAttrs(eps=1e-3, momentum=0.1))
    with pytest.raises(ValueError, match="at least 2 values per channel"):
        run(layer, random_inputs(layer, 1), random_params(layer), training=True)


def test_dropout_is_seeded_inverted_and_off_at_inference():
    layer = make_layer(Op.DROPOUT, ((8, 8, 16),), DropoutAttrs(0.25))
    x = random_inputs(layer, 4)
    _, y = run(layer, x, {}, training=True, seed=3)
    kept = y != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], x[0][kept] / 0.75)
    np.testing.assert_array_equal(run(layer, x, {}, training=True, seed=3)[1], y)
    assert not np.array_equal(run(layer, x, {}, training=True, seed=4)[1], y)
    np.testing.assert_array_equal(run(layer, x, {}, training=False)[1], x[0])
    check_gradients(make_layer(Op.DROPOUT, ((2, 2, 3),), DropoutAttrs(0.5)))


@pytest.mark.parametrize(
    "stride, padding, multiplier",
    [
        ((1, 1), Padding(0, 1, 1, 0), 1),  # transposed correlation, asymmetric padding
        ((1, 1), Padding(1, 1, 1, 1), 2),  # transposed, channel multiplier
        ((2, 1), Padding(1, 0, 0, 1), 1),  # strided: columns and col2im
        ((1, 1), Padding(3, 0, 0, 0), 1),  # padding as large as the kernel: columns and col2im
    ],
)
def test_depthwise_input_gradient_paths(stride, padding, multiplier):
    attrs = ConvAttrs((3, 3), stride, padding, 3, 3 * multiplier, bias=True)
    layer = make_layer(Op.DWCONV, ((4, 5, 3),), attrs)
    x = random_inputs(layer, 2)
    params = random_params(layer)
    np.testing.assert_allclose(
        run(layer, x, params, training=False)[1], naive_conv(x[0], params["weight"], params["bias"], attrs), rtol=1e-10
    )
    check_gradients(layer)


def _each(x: np.ndarray, f) -> np.ndarray:
    """f applied to every element on its own, in plain Python."""
    return np.array([f(float(v)) for v in x.ravel()]).reshape(x.shape)


@pytest.mark.parametrize(
    ("op", "attrs", "scalar"),
    [
        (Op.CLIP, ClipAttrs(0.0, 6.0), lambda v: min(max(v, 0.0), 6.0)),
        (Op.CLIP, ClipAttrs(-0.5, 0.5), lambda v: min(max(v, -0.5), 0.5)),
        (Op.CLIP, ClipAttrs(-math.inf, 0.25), lambda v: min(v, 0.25)),
        (Op.LEAKY_RELU, LeakyReluAttrs(0.1), lambda v: v if v > 0 else 0.1 * v),
        (Op.LEAKY_RELU, LeakyReluAttrs(1.5), lambda v: v if v > 0 else 1.5 * v),
        (Op.SIGMOID, None, lambda v: 1 / (1 + math.exp(-v))),
        (Op.HARD_SIGMOID, HardSigmoidAttrs(0.2, 0.5), lambda v: max(0.0, min(1.0, 0.2 * v + 0.5))),
        (Op.HARD_SIGMOID, HardSigmoidAttrs(1 / 6, 0.5), lambda v: min(max(v + 3, 0.0), 6.0) / 6),  # PyTorch's
        (Op.HARD_SWISH, None, lambda v: v * min(max(v + 3, 0.0), 6.0) / 6),  # PyTorch's x * relu6(x + 3) / 6
        (Op.IDENTITY, None, lambda v: v),
    ],
    ids=lambda p: p.value if isinstance(p, Op) else "",
)
def test_activations_match_their_formula_and_central_differences(op, attrs, scalar):
    layer = make_layer(op, ((3, 4, 5),), *([attrs] if attrs else []))
    x = random_inputs(layer, 2)
    x[0] *= 4  # reach the bounds and the saturated ends
    _, y = run(layer, x, {}, training=False)
    np.testing.assert_allclose(y, _each(x[0], scalar), rtol=1e-12, atol=1e-15)
    check_gradients(layer)


def test_sigmoid_saturates_without_overflowing():
    layer = make_layer(Op.SIGMOID, ((1, 1, 3),))
    x = np.array([-1000.0, 0.0, 1000.0]).reshape(1, 1, 1, 3)
    _, y = run(layer, [x.astype(np.float32)], {}, training=False)
    assert y.ravel().tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    "shapes",
    [((3, 4, 5), (1, 1, 5)), ((1, 1, 5), (3, 4, 5)), ((3, 4, 5), (3, 4, 1)), ((3, 4, 5), (1, 1, 1)), ((2, 3, 4),) * 2],
    ids=["by-channel", "scale-first", "by-pixel", "by-scalar", "same-shape"],
)
@pytest.mark.parametrize("op", [Op.MUL, Op.ADD], ids=lambda op: op.value)
def test_mul_and_add_broadcast_one_input_over_the_other(op, shapes):
    layer = make_layer(op, shapes)
    assert layer.output_shape == tuple(max(sizes) for sizes in zip(*shapes))
    a, b = random_inputs(layer, 2)
    _, y = run(layer, [a, b], {}, training=False)
    combine = (lambda u, v: u * v) if op is Op.MUL else (lambda u, v: u + v)
    for n, i, j, c in np.ndindex(y.shape):
        at = [(n, *(index if size > 1 else 0 for index, size in zip((i, j, c), shape))) for shape in shapes]
        assert y[n, i, j, c] == combine(a[at[0]], b[at[1]])
    check_gradients(layer)


def test_add_of_three_broadcast_inputs():
    layer = make_layer(Op.ADD, ((1, 1, 3), (1, 1, 3), (2, 2, 3)))
    x = random_inputs(layer, 2)
    _, y = run(layer, x, {}, training=False)
    np.testing.assert_allclose(y, x[0] + x[1] + x[2])
    check_gradients(layer)


def naive_pad(x, attrs: PadAttrs):
    _, h, w, _ = x.shape
    hp, wp = h + attrs.top + attrs.bottom, w + attrs.left + attrs.right
    y = np.full((x.shape[0], hp, wp, x.shape[3]), attrs.value)

    def source(i, n):  # the input index that padded index i shows, or None
        if 0 <= i < n:
            return i
        if attrs.mode == "edge":
            return 0 if i < 0 else n - 1
        if attrs.mode == "reflect":
            return -i if i < 0 else 2 * n - 2 - i
        return None

    for i, j in np.ndindex(hp, wp):
        r, c = source(i - attrs.top, h), source(j - attrs.left, w)
        if r is not None and c is not None:
            y[:, i, j] = x[:, r, c]
    return y


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("sides", [(1, 1, 1, 1), (0, 2, 3, 1), (2, 0, 0, 0)])
def test_pad_matches_loops_and_central_differences(mode, sides):
    attrs = PadAttrs(*sides, mode=mode, value=0.75)
    layer = make_layer(Op.PAD, ((3, 4, 2),), attrs)
    assert layer.output_shape == (3 + sides[0] + sides[1], 4 + sides[2] + sides[3], 2)
    x = random_inputs(layer, 2)
    _, y = run(layer, x, {}, training=False)
    np.testing.assert_array_equal(y, naive_pad(x[0], attrs))
    check_gradients(layer)
