"""The ``optimized`` policy: what a good compiler for this accelerator would do.

1. Fold every inference batch norm into the conv before it (:mod:`hwsim.schedule.fold`).
2. Fuse each ReLU and pooling layer into its producer: one step, no map of its own in the report.
3. Chain steps into segments that stream row bands through internal memory
   (:mod:`hwsim.schedule.tiling`): a segment grows while its weights and one band of every map in
   it still fit; its output stays internal when the next segment reads it and it fits.
4. Overlap: the next band's input rows are loaded while the current band computes (both buffers
   are counted against capacity), and the bus and every compute unit run concurrently.
"""

from __future__ import annotations

from hwsim.costs import LayerCost
from hwsim.graph import Graph
from hwsim.ops import Op
from hwsim.schedule.base import Step
from hwsim.schedule.fold import fold_batchnorm
from hwsim.schedule.program import Program, finish
from hwsim.schedule.tiling import Group, Segment, choose_tiling, run
from hwsim.spec.hardware import HardwareSpec

FUSABLE = frozenset({Op.RELU, Op.MAXPOOL, Op.AVGPOOL, Op.DROPOUT})
"""Ops that run on their producer's output as it is produced."""


def _readers(costs: tuple[LayerCost, ...]) -> dict[str, int]:
    readers: dict[str, int] = {}
    for c in costs:
        for name in c.layer.inputs:
            readers[name] = readers.get(name, 0) + 1
    return readers


def fuse(costs: tuple[LayerCost, ...]) -> list[Group]:
    """Each layer, with the ReLUs and pools that are the sole readers of it (transitively) fused behind it."""
    readers = _readers(costs)
    groups: list[Group] = []
    for c in costs:
        previous = groups[-1][-1] if groups else None
        if previous and c.layer.op in FUSABLE and c.layer.inputs == (previous.name,) and readers[previous.name] == 1:
            groups[-1] = (*groups[-1], c)
        else:
            groups.append((c,))
    return groups


def segments(program: Program, groups: list[Group], folded: dict[str, str], capacity: float) -> list[Segment]:
    """Greedy chains: a step joins the segment before it when it reads only that segment's output,
    nothing else reads that output, and the longer segment still fits with all its weights resident;
    but not when that would lose a boundary whose map can stay internal (no store and reload)."""
    readers = _readers(tuple(program.costs.values()))
    names = lambda group: tuple(folded[c.name] for c in group if c.name in folded)  # noqa: E731

    def fits(segment: Segment, keep: bool) -> bool:
        return choose_tiling(program, segment, set(), [keep], capacity, prefetch=True, chunks=False) is not None

    result: list[Segment] = []
    for group in groups:
        if result:
            last = result[-1]
            grown = Segment((*last.groups, group), (*last.folded, names(group)))
            chained = group[0].layer.inputs == (last.output.name,) and readers[last.output.name] == 1
            if chained and fits(grown, False) and (fits(grown, True) or not fits(last, True)):
                result[-1] = grown
                continue
        result.append(Segment((group,), (names(group),)))
    return result


def schedule_optimized(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
    folded_costs, folded = fold_batchnorm(costs, hardware)
    program = Program(folded_costs)
    capacity = hardware.memory.internal.capacity
    run(program, segments(program, fuse(folded_costs), folded, capacity), capacity, prefetch=True)
    return finish(program, hardware, overlap=True)
