"""The counted primitives charge hand-derived numbers to the layer and pass that ran them."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from hwsim.ops import ConvAttrs, Padding, Window
from hwsim.reference import primitives as P
from hwsim.reference import sweeps
from hwsim.reference.counting import Pass, attributed, counting
from hwsim.reference.windows import scatter_windows


def ops_of(fn) -> int:
    with counting() as ledger, attributed("layer", Pass.FORWARD):
        fn()
    return ledger.total()


def test_matmul_counts_two_per_multiply_add():
    a, b = np.ones((3, 4)), np.ones((4, 5))
    assert ops_of(lambda: P.matmul(a, b)) == 2 * 3 * 4 * 5
    assert ops_of(lambda: P.matmul(np.ones((2, 3, 4)), np.ones((2, 4, 5)))) == 2 * 2 * 3 * 4 * 5


def test_contract_counts_summed_products_twice_and_plain_products_once():
    a, b = np.ones((3, 4)), np.ones((4, 5))
    assert ops_of(lambda: P.contract("ij,jk->ik", a, b)) == 2 * 3 * 4 * 5
    assert ops_of(lambda: P.contract("i,j->ij", np.ones(3), np.ones(5))) == 15


def test_elementwise_counts_broadcast_outputs():
    assert ops_of(lambda: P.add(np.ones((3, 1)), np.ones((1, 4)))) == 12
    assert ops_of(lambda: P.mul(np.ones((2, 3)), 2.0)) == 6
    assert ops_of(lambda: P.greater(np.ones(5), 0)) == 5
    assert ops_of(lambda: P.sqrt(P.exp(np.ones(7)))) == 14


def test_reductions_count_n_minus_one_per_output():
    x = np.ones((3, 4, 5))
    assert ops_of(lambda: P.sum(x, axis=1)) == 3 * 5 * (4 - 1)
    assert ops_of(lambda: P.max(x, axis=(0, 2))) == 4 * (15 - 1)
    assert ops_of(lambda: P.argmax(x, axis=-1)) == 3 * 4 * (5 - 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_and_argmax_of_candidates_count_like_a_reduction_over_them(dtype):
    rng = np.random.default_rng(0)
    stacked = rng.integers(-2, 3, (4, 3, 5)).astype(dtype)  # small integers: many ties
    candidates = list(stacked)
    assert ops_of(lambda: P.max_of(candidates)) == ops_of(lambda: P.max(stacked, axis=0)) == 3 * 15
    assert ops_of(lambda: P.argmax_of(candidates)) == ops_of(lambda: P.argmax(stacked, axis=0)) == 3 * 15
    best, index = P.argmax_of(candidates)
    np.testing.assert_array_equal(best, stacked.max(axis=0))
    np.testing.assert_array_equal(P.max_of(candidates), stacked.max(axis=0))
    np.testing.assert_array_equal(index, stacked.argmax(axis=0))  # ties to the first, as np.argmax


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_select_is_free_data_movement_that_zeroes_even_inf_and_nan(dtype):
    values = np.array([1.5, -np.inf, np.nan, -2.0, np.inf], dtype)
    mask = np.array([True, False, False, True, True])
    out = np.full(5, 7.0, dtype)
    assert ops_of(lambda: P.select(mask, values, out=out)) == 0
    np.testing.assert_array_equal(out, [1.5, 0.0, 0.0, -2.0, np.inf])


def window(size: int, stride: int, dilation: int = 1) -> Window:
    return ConvAttrs((size, size), (stride, stride), Padding(), 1, 1, False, (dilation, dilation))


def test_data_movement_is_free():
    cols = np.ones((1, 2, 2, 3, 2, 2))
    assert ops_of(lambda: scatter_windows(cols, (1, 4, 4, 3), window(2, 2))) == 0  # windows do not overlap
    # 3x3 windows at stride 1: each of the 8 taps after the first adds its 2*2*3 values
    assert ops_of(lambda: scatter_windows(np.ones((1, 2, 2, 3, 3, 3)), (1, 4, 4, 3), window(3, 1))) == 8 * 2 * 2 * 3


def test_scatter_windows_sums_overlaps():
    cols = np.ones((1, 2, 2, 1, 3, 3))
    out = scatter_windows(cols, (1, 4, 4, 1), window(3, 1))
    # how many 3x3 windows at stride 1 cover each position of a 4x4 map
    np.testing.assert_array_equal(out[0, :, :, 0], np.outer([1, 2, 2, 1], [1, 2, 2, 1]))
    # 2x2 taps dilated by 2 at stride 1 over a 4x4 map: rows 0 and 1 are the first tap's, 2 and 3 the second's
    out = scatter_windows(np.ones((1, 2, 2, 1, 2, 2)), (1, 4, 4, 1), window(2, 1, dilation=2))
    np.testing.assert_array_equal(out[0, :, :, 0], np.outer([1, 1, 1, 1], [1, 1, 1, 1]))


def test_segment_sum_counts_one_add_fewer_than_each_run():
    a = np.arange(12.0).reshape(2, 6)
    starts = np.array([0, 1, 4])
    assert ops_of(lambda: P.segment_sum(a, starts, axis=1)) == 2 * (6 - 3)
    np.testing.assert_array_equal(P.segment_sum(a, starts, axis=1), [[0, 6, 9], [6, 24, 21]])
    with pytest.raises(ValueError, match="not empty"):
        P.segment_sum(a, np.array([0, 2, 2]), axis=1)


def test_ops_are_charged_to_the_layer_and_pass_in_scope():
    with counting() as ledger:
        with attributed("a", Pass.FORWARD):
            P.add(np.ones(3), 1.0)
        with attributed("b", Pass.BACKWARD):
            P.mul(np.ones(4), 2.0)
            with attributed("a", Pass.OPTIMIZER):
                P.sqrt(np.ones(5))
            P.mul(np.ones(4), 2.0)
    assert dict(ledger.ops) == {("a", Pass.FORWARD): 3, ("b", Pass.BACKWARD): 8, ("a", Pass.OPTIMIZER): 5}
    assert ledger.total(Pass.BACKWARD) == 8


def test_counting_outside_a_layer_is_an_error_and_no_ledger_costs_nothing():
    with counting(), pytest.raises(RuntimeError, match="outside attributed"):
        P.add(np.ones(2), 1.0)
    np.testing.assert_array_equal(P.add(np.ones(2), 1.0), [2.0, 2.0])


@pytest.mark.parametrize("shape", [(4, 6, 5, 3), (2, 7, 7, 32), (64, 1, 1, 10), (3, 1, 1, 5000)])
def test_channel_sum_in_blocks_counts_and_sums_like_one_reduction(shape, monkeypatch):
    monkeypatch.setattr(sweeps, "BLOCK_ELEMENTS", 64)  # many blocks, the last one partial
    sweeps._rows.cache_clear()
    x = np.random.default_rng(0).standard_normal(shape)
    rows = sweeps.rows_of(x.shape)
    x2 = rows.view(x)
    assert rows.rows * rows.width == x.size and rows.width % shape[-1] == 0
    total = ops_of(lambda: rows.channel_sum(lambda block: x2[block]))
    assert total == ops_of(lambda: P.sum(x, axis=(0, 1, 2)))
    np.testing.assert_allclose(rows.channel_sum(lambda block: x2[block]), x.sum(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_array_equal(rows.tile(np.arange(shape[-1]))[0].reshape(-1, shape[-1])[-1], np.arange(shape[-1]))
    sweeps._rows.cache_clear()


@pytest.mark.parametrize(
    ("shape", "kernel", "block_elements"),
    [((2, 7, 6, 3), (3, 3), 1 << 17), ((3, 9, 8, 4), (3, 2), 40), ((1, 12, 5, 2), (1, 3), 7)],
)
def test_correlate_depthwise_is_the_contraction_and_counts_like_it(shape, kernel, block_elements):
    rng = np.random.default_rng(0)
    xp, weight = rng.standard_normal(shape), rng.standard_normal((*kernel, shape[-1]))
    view = sliding_window_view(xp, kernel, axis=(1, 2))
    expected = np.einsum("nhwcij,ijc->nhwc", view, weight)
    np.testing.assert_allclose(P.correlate_depthwise(xp, weight, block_elements), expected, rtol=1e-12)
    assert ops_of(lambda: P.correlate_depthwise(xp, weight, block_elements)) == ops_of(
        lambda: P.contract("nhwcij,ijc->nhwc", view, weight)
    )
