"""A candidate that begins as an earlier one resumes that one's timing where their items part: it gets the times
timing it from the start gives, to the last bit (a sweep's rows must not change), and a loop's iterations are
compared on the tensors it touches, which are all its records touch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from schedule_helpers import hardware, networks

from hwsim import api
from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import graph_costs
from hwsim.model.graph import Graph
from hwsim.schedule.base import CapacityError
from hwsim.schedule.planner import OPTIMIZED, fuse, plan, prefetched, program_of
from hwsim.schedule.program import Loop, Program, timing, unrolled_records
from hwsim.spec.hardware import HardwareSpec
from hwsim.studies import sweep


def _alone(program: Program) -> Program:
    """The same items and steps in a program of no planner: timed from the start, whatever was timed before."""
    alone = Program(tuple(program.costs.values()))
    alone.items, alone.plans = program.items, program.plans
    return alone


def _candidates(costs: tuple, hw: HardwareSpec) -> tuple[Program, Program] | None:  # type: ignore[type-arg]
    """Optimized's plan and the plan with later weights loaded early, as programs (None: no second plan)."""
    folded, into = fold_batchnorm(costs, hw)
    try:
        planner, choices = plan(folded, fuse(folded), into, hw.memory.internal.capacity, OPTIMIZED)
    except CapacityError:
        return None
    ahead = prefetched(planner, choices)
    if ahead is None:
        return None
    return program_of(planner, choices), program_of(planner, ahead)


def _assert_resumed_as_alone(first: Program, second: Program, hw: HardwareSpec) -> None:
    """``second`` timed after ``first`` (resuming it where they part), with and without a limit, as timed alone."""
    timed = timing(first, hw, True)
    assert timed.timed == timing(_alone(first), hw, True).timed
    resumed, alone = timing(second, hw, True), timing(_alone(second), hw, True)
    assert resumed.timed == alone.timed and resumed.totals == alone.totals
    limit = timed.total_s
    timing(first, hw, True)
    bounded, bounded_alone = timing(second, hw, True, limit), timing(_alone(second), hw, True, limit)
    # a limit is checked at other items when resumed: a program refused one way is over it the other way
    for one, other in ((bounded, bounded_alone), (bounded_alone, bounded)):
        if one is None:
            assert other is None or other.total_s > limit
        elif other is not None:
            assert one.timed == other.timed


@given(networks(), st.sampled_from([8_000, 32_000, 1e6]), st.sampled_from([1e8, 1e9, 1e11]))
def test_a_candidate_resumed_where_it_parts_from_the_one_before_is_timed_as_alone(
    graph: Graph, capacity: float, bandwidth: float
) -> None:
    hw = hardware(capacity, bandwidth)
    found = _candidates(graph_costs(graph, hw), hw)
    if found is None:
        return
    first, second = found
    event("shares a prefix" if second.shared_prefix() else "parts at once")
    _assert_resumed_as_alone(first, second, hw)
    _assert_resumed_as_alone(first, second, hardware(capacity, bandwidth * 3))  # another point's hardware


@pytest.mark.slow  # 3 s at the smallest capacity: the default run stays under two minutes
@pytest.mark.parametrize("capacity", [170e3, 1.2e6, 22.5e6])
def test_hairnets_candidates_share_a_prefix_and_resume_at_every_bandwidth(capacity: float) -> None:
    base = api.load_hardware("paper-accelerator")
    costs = sweep.cost_once(api.load_network("hairnet"), base, "optimized", "exact", 1, None).costs
    found = _candidates(costs, sweep.variant(base, {"memory.internal.capacity": capacity}))
    assert found is not None
    first, second = found
    shared = second.shared_prefix()
    assert shared is not None and shared[0] is first and 0 < shared[1] < len(second.items)
    for bandwidth in np.geomspace(1e8, 1e11, 4):
        hw = sweep.variant(base, {"memory.internal.capacity": capacity, "memory.external.bandwidth": bandwidth})
        _assert_resumed_as_alone(first, second, hw)


def _loops(items: list) -> list[Loop]:  # type: ignore[type-arg]
    found = []
    for item in items:
        if isinstance(item, Loop):
            found += [item, *_loops(item.body)]
    return found


@given(networks(), st.sampled_from([2_000, 8_000, 32_000]))
def test_a_loops_tensors_are_every_tensor_its_iterations_touch(graph: Graph, capacity: float) -> None:
    hw = hardware(capacity)
    found = _candidates(graph_costs(graph, hw), hw)
    if found is None:
        return
    for program in found:
        for loop in _loops(program.items):
            touched = {
                t for r in unrolled_records([loop]) for t in (r.region.tensor, *(read.tensor for read in r.reads))
            }
            assert loop.tensors == touched
