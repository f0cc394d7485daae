"""The cut bound (hwsim.cost.cut): what a barrier splits, by hand on a small network, and never above a schedule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from schedule_helpers import graph_from, hardware, networks, run

from hwsim import api
from hwsim.cost.bound import lower_bound
from hwsim.cost.cut import after, axis_reach, covers, cut_bound, needed_by, reading, reads_every_input, reads_from
from hwsim.cost.cycles import layer_seconds
from hwsim.cost.inference import graph_costs
from hwsim.model.graph import Graph
from hwsim.ops import TRAITS, Op
from hwsim.schedule.base import CapacityError
from hwsim.spec.hardware import HardwareSpec

WIDE = 4000
"""fc2's units: its weights make the phase after the barrier bus-bound."""


def _network(scores: bool = True, **conv: Any) -> dict[str, Any]:
    """A compute-heavy conv on a 32x32 map, then fc1 (the barrier), a weight-heavy fc2 and (``scores``) a
    softmax."""
    network: dict[str, Any] = {
        "name": "split",
        "input": [32, 32, 4],
        "layers": [
            {"op": "conv", "kernel": 3, "filters": 16, "padding": "same", "bias": False, "name": "conv", **conv},
            {"op": "global_avg_pool", "name": "gap"},
            {"op": "dense", "units": 16, "name": "fc1"},
            {"op": "dense", "units": WIDE, "name": "fc2"},
            {"op": "softmax", "name": "softmax"},
        ],
    }
    if not scores:
        network["layers"].pop()
    return network


CAPACITY = 32_000


@pytest.mark.parametrize("scores", [True, False])
def test_a_barrier_adds_the_compute_before_it_to_the_traffic_after_it(scores: bool) -> None:
    # without the softmax, fc2 is both the output and a barrier itself
    graph, hw = graph_from(_network(scores)), hardware(CAPACITY, bandwidth=1e9, matrix=1e10, vector=1e10)
    costs = graph_costs(graph, hw)
    plain, cut = lower_bound(costs, hw), cut_bound(costs, hw)
    assert plain.limit == "bus"
    # before fc1's first output: the conv's ops (and the image and its weights, loaded meanwhile)
    conv_ops = 2 * 32 * 32 * 3 * 3 * 4 * 16
    # after it: fc2's weights and the scores, less what fits on chip when fc1 ends; fc1's own weights may go
    # either way, so the bus after the barrier carries at least what the capacity cannot hold of them
    fc2_weights, fc1_weights, scores = (16 * WIDE + WIDE) * 4, (16 * 16 + 16) * 4, WIDE * 4
    expected = conv_ops / 1e10 + (fc2_weights + fc1_weights + scores - CAPACITY - fc1_weights) / 1e9
    assert cut.layer == "fc1"
    assert cut.total_s == pytest.approx(expected, rel=1e-12)
    assert cut.total_s > 1.2 * plain.total_s
    for policy in ("strict", "optimized"):
        schedule, violations = run(graph, hw, policy)
        assert violations == []
        assert cut.total_s <= schedule.total_s * (1 + 1e-9)
    paper, _ = run(graph, hw, "paper")
    assert cut_bound(costs, hw, io=False).total_s <= paper.total_s * (1 + 1e-9)


def test_more_capacity_lowers_the_cut_and_a_batch_keeps_it_below_its_schedules() -> None:
    graph = graph_from(_network())
    small, large = (hardware(c, bandwidth=1e9, matrix=1e10, vector=1e10) for c in (CAPACITY, 4 * CAPACITY))
    assert cut_bound(graph_costs(graph, large), large).total_s < cut_bound(graph_costs(graph, small), small).total_s
    for batch in (2, 3):
        costs = graph_costs(graph, small, batch=batch)
        cut = cut_bound(costs, small)
        assert cut.layer == "fc1" and cut.total_s > lower_bound(costs, small).total_s
        for policy in ("strict", "optimized"):
            schedule, violations = run(graph, small, policy, batch)
            assert violations == [] and cut.total_s <= schedule.total_s * (1 + 1e-9)


def test_a_stride_that_skips_rows_is_no_barrier_for_what_lies_before_it() -> None:
    skipping = graph_from(_network(kernel=1, stride=2, padding="valid"))
    conv = skipping.layer("conv")
    assert not covers(conv, 0)  # rows and columns 1, 3, 5, ... are never read
    assert covers(graph_from(_network()).layer("conv"), 0)
    # the conv is still needed whole by fc1 (the pooling reads all of it), the image only in part
    assert needed_by(skipping.layers, "fc1") == {"gap", "conv"}
    assert needed_by(graph_from(_network()).layers, "fc1") == {"gap", "conv", "input"}
    assert reading(skipping.layers, "fc1") == {"fc2", "softmax"}
    assert reading(skipping.layers, "gap") == {"fc1", "fc2", "softmax"}


@given(
    st.integers(1, 12), st.integers(1, 5), st.integers(1, 4), st.integers(1, 3), st.integers(0, 4), st.integers(0, 4)
)
def test_a_window_axis_reaches_its_input_as_the_taps_laid_out_in_an_array_do(
    size: int, kernel: int, stride: int, dilation: int, before: int, after_: int
) -> None:
    """:func:`axis_reach` walks the taps in Python (``hwsim estimate`` does not import NumPy): it agrees with
    every tap laid out at once in an array, on windows that skip rows, overhang the padding or cover it all."""
    windows = (size + before + after_ - dilation * (kernel - 1) - 1) // stride + 1
    assume(windows >= 1)
    starts = np.arange(windows) * stride - before
    taps = starts[:, None] + np.arange(kernel)[None, :] * dilation
    inside = (taps >= 0) & (taps < size)
    expected = (np.unique(taps[inside]).size == size, bool(inside.any(axis=1).all()))
    assert axis_reach(size, windows, kernel, stride, dilation, before) == expected


def test_whole_input_is_a_dependence_not_a_scheduling_trait() -> None:
    assert TRAITS[Op.DENSE].whole_input
    assert not TRAITS[Op.FLATTEN].whole_input  # whole for scheduling, yet each output element is one input element
    se = graph_from(
        {
            "name": "se",
            "input": [8, 8, 4],
            "layers": [
                {"op": "relu", "name": "skip"},
                {"op": "global_avg_pool", "name": "squeeze"},
                {"op": "conv", "kernel": 1, "filters": 2, "name": "reduce"},
                {"op": "conv", "kernel": 1, "filters": 4, "name": "expand"},
                {"op": "sigmoid", "name": "gate"},
                {"op": "mul", "inputs": ["skip", "gate"], "name": "scaled"},
                {"op": "pad", "pads": 1, "name": "border"},
            ],
        }
    )
    assert reads_every_input(se.layer("reduce"))  # a 1x1 conv over a 1x1 map
    assert not reads_every_input(se.layer("squeeze"))  # each channel its own
    assert reads_from(se.layer("scaled"), 1)  # every product reads the gate
    assert not reads_from(se.layer("border"), 0)  # a constant border reads nothing
    assert needed_by(se.layers, "reduce") == {"squeeze", "skip", "input"}
    assert reading(se.layers, "reduce") == {"expand", "gate", "scaled"}  # not the border: its zeros read nothing
    assert after(se.layers, "reduce") == {"expand", "gate", "scaled"}  # each product reads the gate


def test_an_add_of_earlier_maps_and_a_later_one_reads_the_barrier_but_may_start_ahead_of_it() -> None:
    graph = graph_from(
        {
            "name": "adds",
            "input": [1, 1, 8],
            "layers": [
                {"op": "relu", "name": "x"},
                {"op": "relu", "name": "y"},
                {"op": "dense", "units": 8, "name": "fc"},
                {"op": "add", "inputs": ["x", "y", "fc"], "name": "sum"},
                {"op": "relu", "name": "out"},
            ],
        }
    )
    assert reading(graph.layers, "fc") == {"sum", "out"}
    assert after(graph.layers, "fc") == {"out"}  # x + y may be added before fc has an output


@pytest.mark.parametrize("network", ["alexnet", "vgg16", "mobilenet-v1"])
def test_on_bundled_networks_the_cut_is_at_least_the_plain_bound(network: str) -> None:
    hw, graph = api.load_hardware("tpu-v1"), api.load_network(network)
    estimate = api.estimate(graph, hw, "optimized", steady_state=True)
    summary = estimate.summary()
    assert summary["lower_bound_s"] <= summary["lower_bound_cut_s"] <= estimate.schedule.total_s
    assert summary["efficiency_cut"] == pytest.approx(summary["lower_bound_cut_s"] / estimate.schedule.total_s)


@pytest.mark.slow  # three policies per example
@given(
    networks(),
    st.sampled_from([2_000, 8_000, 32_000, 1e6]),
    st.sampled_from([1e8, 1e9, 1e11]),
    st.sampled_from([1, 2, 3]),
    st.booleans(),
)
def test_no_policy_beats_the_cut_in_steady_state_or_not(
    graph: Graph, capacity: float, bandwidth: float, batch: int, steady: bool
) -> None:
    hw = hardware(capacity, bandwidth)
    for policy in ("paper", "strict", "optimized"):
        try:
            estimate = api.estimate(graph, hw, policy, batch=batch, steady_state=steady)
        except CapacityError:
            assume(False)  # not even one row fits
            raise
        # the paper policy assumes the image on chip, leaves the scores there and ignores the capacity
        cut = cut_bound(estimate.costs, hw, io=policy != "paper")
        assert cut.total_s >= lower_bound(estimate.costs, hw, io=policy != "paper").total_s
        assert cut.total_s <= estimate.schedule.total_s * (1 + 1e-9), (policy, cut)


@pytest.mark.slow  # two policies per example, batches on an array
@given(
    networks(),
    st.sampled_from([8_000, 32_000, 1e6]),
    st.sampled_from([1e8, 1e10]),
    st.sampled_from(["os", "ws", "is"]),
    st.sampled_from([2, 3, 5]),
)
def test_on_an_array_no_batch_beats_the_cut(
    graph: Graph, capacity: float, bandwidth: float, dataflow: str, batch: int
) -> None:
    """A sub-batch may fill an array's folds better than the whole batch: the cut's one-image share must hold."""
    hw = HardwareSpec.model_validate(
        {
            "name": "array",
            "memory": {"internal": {"capacity": capacity}, "external": {"bandwidth": bandwidth}},
            "compute": {
                "matrix": {"array": [4, 4], "dataflow": dataflow, "clock": 1e9},
                "vector": {"lanes": 4, "clock": 1e9},
            },
        }
    )
    for policy in ("strict", "optimized"):
        try:
            estimate = api.estimate(graph, hw, policy, batch=batch)
        except CapacityError:
            assume(False)
            raise
        summary = estimate.summary()
        assert summary["lower_bound_s"] <= summary["lower_bound_cut_s"] <= estimate.schedule.total_s * (1 + 1e-9)


def test_a_row_stationary_batch_slower_than_its_halves_does_not_lift_the_bound_above_them() -> None:
    """Eyeriss's mapping of 4 images of this conv moves fewer DRAM values, in more cycles, than two of 2: optimized
    runs the halves, and the bounds (plain and cut) must take the fastest split, not the whole batch's cycles."""
    graph = graph_from(
        {
            "name": "rs",
            "input": [40, 24, 64],
            "layers": [{"op": "conv", "kernel": 3, "filters": 128, "padding": 1, "bias": False, "name": "conv"}],
        }
    )
    hw = api.bundled_hardware("eyeriss-v1-rs")
    array = hw.compute["matrix"]
    whole, half = graph_costs(graph, hw, batch=4)[0], graph_costs(graph, hw, batch=2)[0]
    assert layer_seconds(whole, array) > 2 * layer_seconds(half, array)  # what the test is about
    estimate = api.estimate(graph, hw, "optimized", batch=4)
    assert estimate.schedule.sub_batch < 4
    summary = estimate.summary()
    assert 0 < summary["lower_bound_s"] <= summary["lower_bound_cut_s"] <= estimate.schedule.total_s


def test_the_image_counts_at_the_rows_its_readers_read_so_input_passes_stay_above_the_bound() -> None:
    """A 1x1 stride-2 conv reads every other row of the image, and optimized, in input passes, loads only those:
    3,072 bytes where the bound once charged the whole image (3,936), above the schedule (a CI hypothesis run)."""
    graph = graph_from(
        {"name": "g", "input": [8, 8, 3], "layers": [{"op": "conv", "kernel": 1, "stride": 2, "filters": 8}]}
    )
    hw = hardware(2_000, 1e8)
    costs = graph_costs(graph, hw, batch=3)
    image = 3 * 8 * 8 * 3 * 4
    assert lower_bound(costs, hw).traffic_bytes == image // 2 + sum(c.weight_bytes + c.output_bytes for c in costs)
    for policy in ("strict", "optimized"):
        schedule, violations = run(graph, hw, policy, 3)
        assert violations == [] and cut_bound(costs, hw).total_s <= schedule.total_s * (1 + 1e-9)
