"""Properties every schedule must have, over random small networks (chains, residual adds) and accelerators."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st
from schedule_helpers import graph_from, hardware, networks, run

from hwsim.cost.bound import image_bytes, lower_bound
from hwsim.cost.coding import code_maps
from hwsim.cost.cut import cut_bound
from hwsim.cost.inference import graph_costs
from hwsim.estimate import estimate
from hwsim.model.graph import Graph
from hwsim.ops import elements
from hwsim.schedule.base import CapacityError
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.planner import STRICT, least_moved, plan_program
from hwsim.schedule.validate import Rule
from hwsim.spec.hardware import HardwareSpec

capacities = st.sampled_from([2_000, 8_000, 32_000, 1e6])
bandwidths = st.sampled_from([1e8, 1e9, 1e11])


def _run_all(graph: Graph, capacity: float, bandwidth: float, batch: int = 1):
    hw = hardware(capacity, bandwidth)
    try:
        return hw, {p: run(graph, hw, p, batch) for p in ("paper", "strict", "optimized")}
    except CapacityError:
        assume(False)  # not even one row fits: a legitimate refusal, checked in test_schedule_capacity
        raise


batches = st.sampled_from([1, 1, 2, 3, 4, 6])


@given(networks(), capacities, bandwidths, batches)
def test_strict_and_optimized_pass_the_validator_and_paper_breaks_only_capacity(
    graph: Graph, capacity: float, bandwidth: float, batch: int
) -> None:
    _, runs = _run_all(graph, capacity, bandwidth, batch)
    assert runs["strict"][1] == []
    assert runs["optimized"][1] == []
    assert {v.rule for v in runs["paper"][1]} <= {Rule.CAPACITY}


@given(networks(), capacities, bandwidths, batches)
def test_the_lower_bound_is_below_every_schedule(graph: Graph, capacity: float, bandwidth: float, batch: int) -> None:
    hw, runs = _run_all(graph, capacity, bandwidth, batch)
    costs = graph_costs(graph, hw, batch=batch)
    bound, cut = lower_bound(costs, hw), cut_bound(costs, hw)
    assert cut.total_s >= bound.total_s
    tolerance = 1 + 1e-9
    for policy in ("strict", "optimized"):
        assert cut.total_s <= runs[policy][0].total_s * tolerance, (policy, cut)
    # the paper assumes the image already internal, leaves the scores there and ignores capacity
    free = image_bytes(costs) + elements(graph.output.output_shape) * batch * 4  # the image: the rows read
    paper_bound = lower_bound(costs, hw, io=False)
    assert paper_bound.traffic_bytes == bound.traffic_bytes - free
    assert paper_bound.total_s <= cut_bound(costs, hw, io=False).total_s <= runs["paper"][0].total_s * tolerance


@given(networks(), capacities, bandwidths, batches)
def test_optimized_is_never_slower_than_strict(graph: Graph, capacity: float, bandwidth: float, batch: int) -> None:
    _, runs = _run_all(graph, capacity, bandwidth, batch)
    assert runs["optimized"][0].total_s <= runs["strict"][0].total_s * (1 + 1e-9)


@given(networks(), capacities, batches)
def test_strict_moves_at_least_what_optimized_skips_planning_it_for(graph: Graph, capacity: float, batch: int) -> None:
    costs = graph_costs(graph, hardware(capacity), batch=batch)
    groups = paper_steps(graph, costs)
    try:
        program = plan_program(costs, groups, {}, capacity, STRICT)
    except CapacityError:
        assume(False)
        raise
    assert least_moved(costs, groups, capacity) <= program.moved


def test_least_moved_counts_only_the_rows_a_strided_1x1_conv_reads() -> None:
    """A map larger than the capacity, read by a 1x1 conv at stride 2: strict loads every other row of it, so the
    least any plan moves counts those (it counted all of them, above what strict moves: found by this file's
    property at 200 examples)."""
    graph = graph_from(
        {
            "name": "skips",
            "input": [8, 8, 1],
            "layers": [
                {"op": "conv", "kernel": 1, "filters": 16, "name": "wide"},
                {"op": "conv", "kernel": 1, "filters": 4, "stride": 2, "name": "skips"},
                {"op": "conv", "kernel": 1, "filters": 4, "name": "last"},
            ],
        }
    )
    capacity = 2000.0
    costs = graph_costs(graph, hardware(capacity), batch=1)
    groups = paper_steps(graph, costs)
    wide = next(c for c in costs if c.name == "wide")
    assert wide.output_bytes > capacity
    weights = sum(c.weight_bytes for c in costs)
    assert least_moved(costs, groups, capacity) == weights + wide.output_bytes + wide.output_bytes // 2
    assert least_moved(costs, groups, capacity) <= plan_program(costs, groups, {}, capacity, STRICT).moved


@given(networks(), capacities, bandwidths, st.sampled_from([0.3, 0.6, 0.95]))
def test_with_maps_coded_on_the_link_the_bounds_hold_and_optimized_is_never_slower_than_strict(
    graph: Graph, capacity: float, bandwidth: float, zeros: float
) -> None:
    # least_moved, the bus bound optimized skips strict on, counts a map at its bytes on the link: at its bytes on
    # chip it would exceed what strict moves, and optimized could skip a faster strict
    hw = HardwareSpec.model_validate(
        {
            "name": "coded",
            "memory": {
                "internal": {"capacity": capacity},
                "external": {"bandwidth": bandwidth, "map_coding": "eyeriss-rlc"},
            },
            "compute": {"matrix": {"throughput": 1e12}, "vector": {"throughput": 1e10}},
        }
    )
    costs = code_maps(graph_costs(graph, hw), 4, zeros)
    groups = paper_steps(graph, costs)
    try:
        program = plan_program(costs, groups, {}, capacity, STRICT)
        strict, optimized = (estimate(graph, hw, policy, map_zeros=zeros) for policy in ("strict", "optimized"))
    except CapacityError:
        assume(False)
        raise
    assert least_moved(costs, groups, capacity) <= program.moved
    assert optimized.schedule.total_s <= strict.schedule.total_s * (1 + 1e-9)
    for bound in (lower_bound(optimized.costs, hw), cut_bound(optimized.costs, hw)):
        assert bound.total_s <= optimized.schedule.total_s * (1 + 1e-9)
