"""The schedulers' shortcuts give exactly what the long way gives: they only make scheduling faster."""

from __future__ import annotations

from hypothesis import given
from schedule_helpers import hardware, networks

from hwsim import api
from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import graph_costs
from hwsim.model.graph import Graph
from hwsim.schedule.optimized import STEADY_ROWS, Planner, fuse
from hwsim.schedule.program import Program
from hwsim.schedule.stream import FirstRows, actions, chain_heights, chain_peak, streamable
from hwsim.spec.hardware import HardwareSpec


def _chain_peaks_agree(graph: Graph, hw: HardwareSpec, counts: tuple[int, ...]) -> int:
    """Every chain's peak over its first ``counts`` rows, from the shared row replay and from its own action list."""
    costs, folded = fold_batchnorm(graph_costs(graph, hw), hw)
    planner = Planner(Program(costs), fuse(costs), folded, hw.memory.internal.capacity)
    checked = 0
    for start in range(len(planner.groups)):
        for keep_in in (False, True) if planner.linked[start] else (False,):
            rows = FirstRows(planner.program, planner.groups[start][0], keep_in, {})
            for stop in range(start + 1, len(planner.groups) + 1):
                segment = planner.segment(start, stop)
                if not streamable(segment) or segment.weight_bytes > hw.memory.internal.capacity:
                    break  # the planner prices neither
                for count in counts:
                    place = planner.placement(start, stop, keep_in, False)
                    listed = actions(segment, place, chain_heights(segment), {}, count)
                    assert rows.peak(segment, count) == chain_peak(planner.program, segment, place, listed), (
                        start,
                        stop,
                        keep_in,
                        count,
                    )
                    checked += 1
    return checked


@given(networks())
def test_chain_peaks_from_the_shared_row_replay_equal_each_chains_own_replay(graph: Graph) -> None:
    _chain_peaks_agree(graph, hardware(1e6), (3, 1, 10**9))  # out of order: the replay extends and rereads its rows


def test_chain_peaks_agree_on_hairnet() -> None:
    assert _chain_peaks_agree(api.load_network("hairnet"), api.load_hardware("paper-accelerator"), (STEADY_ROWS,)) > 100
