"""Every op's forward against a naive loop, and its backward against central differences (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_helpers import check_gradients, make_layer, random_inputs, random_params, run

from hwsim.ops import BatchNormAttrs, ConvAttrs, DenseAttrs, DropoutAttrs, LrnAttrs, Op, Padding, PoolAttrs


@st.composite
def conv_layers(draw):
    """A conv of random kernel, stride, per-side padding and groups (dense, grouped, depthwise with multiplier)."""
    groups = draw(st.sampled_from([1, 2, 3]))
    in_per_group = draw(st.sampled_from([1, 2]))
    out_per_group = draw(st.sampled_from([1, 2]))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = Padding(*(draw(st.integers(0, 1)) for _ in range(4)))
    h, w = draw(st.integers(kernel[0], 5)), draw(st.integers(kernel[1], 5))
    attrs = ConvAttrs(kernel, stride, padding, groups, groups * out_per_group, draw(st.booleans()))
    op = Op.DWCONV if in_per_group == 1 else Op.CONV
    return make_layer(op, ((h, w, groups * in_per_group),), attrs)


@st.composite
def pool_layers(draw, op):
    size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = Padding(*(draw(st.integers(0, s - 1)) for s in (size[0], size[0], size[1], size[1])))
    h, w = draw(st.integers(size[0], 5)), draw(st.integers(size[1], 5))
    return make_layer(op, ((h, w, draw(st.integers(1, 3))),), PoolAttrs(size, stride, padding))


def _padded(x, padding: Padding, value: float = 0.0):
    widths = ((0, 0), (padding.top, padding.bottom), (padding.left, padding.right), (0, 0))
    return np.pad(x, widths, constant_values=value)


def naive_conv(x, weight, bias, attrs: ConvAttrs):
    xp = _padded(x, attrs.padding)
    kh, kw, in_per_group, out = weight.shape
    out_per_group = out // attrs.groups
    (sh, sw) = attrs.stride
    ho, wo = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    y = np.zeros((x.shape[0], ho, wo, out))
    for n in range(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                for o in range(out):
                    first = (o // out_per_group) * in_per_group
                    patch = xp[n, i * sh : i * sh + kh, j * sw : j * sw + kw, first : first + in_per_group]
                    y[n, i, j, o] = np.sum(patch * weight[:, :, :, o]) + (bias[o] if bias is not None else 0.0)
    return y


def naive_pool(x, attrs: PoolAttrs, reduce, pad_value):
    xp = _padded(x, attrs.padding, pad_value)
    (kh, kw), (sh, sw) = attrs.kernel, attrs.stride
    ho, wo = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    y = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    for n in range(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                for c in range(x.shape[3]):
                    y[n, i, j, c] = reduce(xp[n, i * sh : i * sh + kh, j * sw : j * sw + kw, c])
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
    np.testing.assert_array_equal(y, naive_pool(x[0], layer.attrs, np.max, -np.inf))


@given(pool_layers(Op.AVGPOOL))
def test_avgpool_forward_divides_by_full_window(layer):
    x = random_inputs(layer, 2)
    _, y = run(layer, x, {}, training=False)
    area = layer.attrs.kernel[0] * layer.attrs.kernel[1]
    np.testing.assert_allclose(y, naive_pool(x[0], layer.attrs, lambda w: np.sum(w) / area, 0.0), rtol=1e-12)


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
