"""The ``optimized`` policy: what a good compiler for this accelerator would do.

1. Fold every inference batch norm into the conv before it (:mod:`hwsim.cost.fold`).
2. Fuse each ReLU, pooling layer, add and concat into the step that produces its input: one step,
   no map of its own in the report (an add or a concat reads its other inputs where they are).
3. Plan segments by cost (:mod:`hwsim.schedule.planner`): steps run together row by row through
   line buffers (a chain, a residual block with its skip, an inception module's branches and their
   concat), or one step in row bands with its weights streamed in chunks when they do not fit; a map
   alive across segments stays resident while room allows or is spilled, whichever moves fewer bytes.
4. Overlap: the bus and every compute unit run concurrently; input rows and bands load ahead,
   weight chunks are double-buffered, and later segments' weights load during earlier ones as early
   as the room every segment in between leaves allows, every buffer counted against capacity.
5. The strict schedule of the folded network, overlapped, is a schedule this policy can build too:
   the faster of the two is returned, so ``optimized`` is never slower than ``strict``. Its bus
   alone takes its bytes over the bandwidth, so it is written and timed only when that could win.
"""

from __future__ import annotations

from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import LayerCost
from hwsim.model.graph import Graph
from hwsim.schedule.base import CapacityError, Step
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.planner import OPTIMIZED, STRICT, fuse, plan_program
from hwsim.schedule.program import finish
from hwsim.spec.hardware import HardwareSpec


def folded_costs(costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> tuple[LayerCost, ...]:
    """The layer costs ``optimized`` schedules: its batch norms folded into their convs."""
    return fold_batchnorm(costs, hardware)[0]


def schedule_optimized(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
    folded, into = fold_batchnorm(costs, hardware)
    capacity = hardware.memory.internal.capacity
    best: list[Step] | None = None
    refusal: CapacityError | None = None
    try:
        best = finish(plan_program(folded, fuse(folded), into, capacity, OPTIMIZED), hardware, overlap=True)
    except CapacityError as error:
        refusal = error
    best_s = sum(s.total_s for s in best) if best is not None else float("inf")
    try:
        strict = plan_program(folded, paper_steps(graph, folded), {}, capacity, STRICT)
    except CapacityError as error:
        refusal = refusal or error
    else:
        # its bus alone needs its bytes over the bandwidth: timed only if that could be faster
        if strict.moved / hardware.memory.external.bandwidth < best_s:
            candidate = finish(strict, hardware, overlap=True)
            if sum(s.total_s for s in candidate) < best_s:
                best = candidate
    if best is None:
        assert refusal is not None
        raise refusal
    return best
