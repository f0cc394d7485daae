"""Where strict's and optimized's scheduling time goes, each part timed alone (CPU time, the fastest of 10).

python benchmarks/bench_schedule_parts.py [network] [hardware]

strict: its plan (with the peaks it counts on segments' records), writing its program, and timing it serially with
the report's steps. optimized: its plan, writing its two candidate programs (with and without weights prefetched),
timing both overlapped, and building the kept one's steps. What :func:`hwsim.schedule.POLICIES` runs besides
(folding, fusing, the paper's steps) is left out. Run it beside another checkout (``PYTHONPATH=other python ...``)
to compare.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

from hwsim import api
from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import graph_costs
from hwsim.schedule import planner
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.program import finish, timing


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs in milliseconds of CPU time, Python's collector paused as a policy pauses it."""
    times = []
    for _ in range(repeats):
        gc.disable()
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
        gc.enable()
    return min(times) * 1e3


def counted(work: Callable[[], object]) -> int:
    """Segment peaks counted on their records while ``work`` runs."""
    calls = []
    count = planner.peak

    def counting(*args: object) -> int:
        calls.append(args)
        return count(*args)  # type: ignore[arg-type]

    planner.peak = counting  # type: ignore[assignment]
    try:
        work()
    finally:
        planner.peak = count
    return len(calls)


def main(network: str = "hairnet", hardware: str = "paper-accelerator", repeats: int = 10) -> None:
    graph, hw = api.load_network(network), api.load_hardware(hardware)
    costs = graph_costs(graph, hw)
    capacity = hw.memory.internal.capacity
    print(f"{network} on {hardware}: CPU time, best of {repeats}")

    steps = paper_steps(graph, costs)

    def strict_plan() -> tuple[planner.Planner, list[planner.Choice]]:
        return planner.plan(costs, steps, {}, capacity, planner.STRICT)

    made, choices = strict_plan()

    def strict_program() -> object:
        made.programs.clear()
        return planner.program_of(made, choices)

    program = planner.program_of(made, choices)
    print(
        f"strict     plan {best_of(repeats, strict_plan):6.1f} ms ({counted(strict_plan)} peaks counted), "
        f"program {best_of(repeats, strict_program):5.1f} ms, "
        f"timing and steps {best_of(repeats, lambda: finish(program, hw, overlap=False)):5.1f} ms"
    )

    folded, into = fold_batchnorm(costs, hw)
    groups = planner.fuse(folded)

    def optimized_plan() -> tuple[planner.Planner, list[planner.Choice]]:
        return planner.plan(folded, groups, into, capacity, planner.OPTIMIZED)

    made, choices = optimized_plan()
    ahead = planner.prefetched(made, choices) or choices

    def programs() -> tuple[object, ...]:
        made.programs.clear()
        return planner.program_of(made, choices), planner.program_of(made, ahead)

    plain, early = planner.program_of(made, choices), planner.program_of(made, ahead)
    timed = timing(early, hw, overlap=True)
    print(
        f"optimized  plan {best_of(repeats, optimized_plan):6.1f} ms ({counted(optimized_plan)} peaks counted), "
        f"two programs {best_of(repeats, programs):5.1f} ms, timing both "
        f"{best_of(repeats, lambda: (timing(plain, hw, overlap=True), timing(early, hw, overlap=True))):5.1f} ms, "
        f"steps {best_of(repeats, lambda: finish(early, hw, overlap=True, timed=timed)):5.1f} ms"
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
