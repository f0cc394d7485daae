"""How long each policy takes to schedule a network (CPU time), against merely costing it, measured in the same run.

python benchmarks/bench_schedule.py [network] [hardware]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from hwsim import api
from hwsim.cost.inference import graph_costs
from hwsim.schedule import POLICIES


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs, in seconds of this process's CPU time: on a shared machine,
    wall time also counts the other processes' turns; the fastest run is the least disturbed."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


def main(network: str = "hairnet", hardware: str = "paper-accelerator", repeats: int = 10) -> None:
    graph, hw = api.load_network(network), api.load_hardware(hardware)
    costs = graph_costs(graph, hw)
    baseline = best_of(repeats, lambda: graph_costs(graph, hw))
    print(f"{network} on {hardware}: {len(graph.layers)} layers; CPU time, best of {repeats}")
    print(f"{'costing (baseline)':<20} {baseline * 1e3:9.2f} ms")
    for policy, schedule in POLICIES.items():
        seconds = best_of(repeats, lambda: schedule(graph, costs, hw))  # noqa: B023 (called before the loop moves on)
        print(f"{policy:<20} {seconds * 1e3:9.2f} ms  {seconds / baseline:7.0f}x the baseline")


if __name__ == "__main__":
    main(*sys.argv[1:3])
