"""Where strict's and optimized's scheduling time goes, each part timed alone (CPU time, the fastest of 10).

python benchmarks/bench_schedule_parts.py [network] [hardware]

strict: its plan (with the peaks it counts on segments' records), writing its program, and timing it serially with
the report's steps. optimized: its plan, writing its two candidate programs (with and without weights prefetched),
timing both overlapped, and building the kept one's steps. Then, for each plan, its time with every count looked up
(the search around them), and its counts replayed alone by kind (a run in bands also counted on its records, as
before they were priced without). What :func:`hwsim.schedule.POLICIES` runs besides
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
from hwsim.schedule.order import write
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.program import Program, finish, timing
from hwsim.schedule.segment import _PLAN, Placement, Segment, Tiling, held_before


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


def counts(work: Callable[[], object]) -> list[tuple]:  # type: ignore[type-arg]
    """The segment peaks counted while ``work`` runs: each call's arguments."""
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
    return calls


def counted(work: Callable[[], object]) -> int:
    """Segment peaks counted while ``work`` runs."""
    return len(counts(work))


def on_records(program: Program, segment: Segment, placement: Placement, tiling: Tiling, limit: int | None) -> int:
    """A segment's peak counted on its records, written into a scratch program (as before runs in bands were priced
    without them)."""
    if not tiling.band_rows:
        return planner.peak(program, segment, placement, tiling, limit)
    scratch = program.scratch()
    base = held_before(scratch, placement)
    scratch.resident = base
    write(scratch, segment, placement, tiling, [scratch.begin(_PLAN) for _ in segment.groups])
    return max(scratch.peak, base)


def replayed(repeats: int, calls: list[tuple]) -> str:  # type: ignore[type-arg]
    """A plan's counts replayed alone, by kind: the first time (frames and band needs built, as a plan builds them)
    and again, and, in bands, counted on records as before."""

    def first_time(kind: list[tuple]) -> None:  # type: ignore[type-arg]
        fresh: dict[object, Segment] = {}
        for program, segment, *rest in kind:
            again = fresh.setdefault(segment.groups, Segment(segment.groups, segment.folded))
            planner.peak(program, again, *rest)

    kinds = {
        "row by row, first driver steps": [c for c in calls if not c[3].band_rows and c[4] is not None],
        "row by row, whole": [c for c in calls if not c[3].band_rows and c[4] is None],
        "in bands": [c for c in calls if c[3].band_rows],
    }
    parts = []
    for name, kind in kinds.items():
        if kind:
            line = (
                f"{name} {len(kind)}: {best_of(repeats, lambda: first_time(kind)):.1f} ms first, "  # noqa: B023
                f"{best_of(repeats, lambda: [planner.peak(*c) for c in kind]):.1f} ms again"  # noqa: B023
            )
            if kind[0][3].band_rows:
                line += f", {best_of(repeats, lambda: [on_records(*c) for c in kind]):.1f} ms on records"  # noqa: B023
            parts.append(line)
    return "; ".join(parts)


def looked_up(repeats: int, plan: Callable[[], object]) -> float:
    """The plan's time with every peak it counts looked up: the search around the counts."""
    known = {(c[1].names, *c[2:]): planner.peak(*c) for c in counts(plan)}
    count = planner.peak
    planner.peak = lambda program, segment, *rest: known[(segment.names, *rest)]  # type: ignore[assignment]
    try:
        return best_of(repeats, plan)
    finally:
        planner.peak = count


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
    print(f"  its plan with every count looked up {looked_up(repeats, strict_plan):.1f} ms; counts replayed alone:")
    print(f"  {replayed(repeats, counts(strict_plan))}")

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
    print(f"  its plan with every count looked up {looked_up(repeats, optimized_plan):.1f} ms; counts replayed alone:")
    print(f"  {replayed(repeats, counts(optimized_plan))}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
