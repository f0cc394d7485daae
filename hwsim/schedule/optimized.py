"""The ``optimized`` policy: what a good compiler for this accelerator would do.

1. Fold every inference batch norm into the conv before it (:mod:`hwsim.cost.fold`).
2. Fuse each ReLU, pooling layer, add and concat into the step that produces its input: one step,
   no map of its own in the report (an add or a concat reads its other inputs where they are).
3. Plan segments by cost (:mod:`hwsim.schedule.planner`): steps run together row by row through
   line buffers (a chain, a residual block with its skip, an inception module's branches and their
   concat), or one step in row bands with its weights streamed in chunks when they do not fit; a map
   alive across segments stays resident while room allows or is spilled, whichever moves fewer bytes.
   Where every map fits, a second plan runs one step a segment, each in at least four row bands
   (:data:`hwsim.schedule.planner.LAYERWISE`): the first plan streams the network with the fewest
   segments, so its last step waits for every weight; the second loads the next step's weights while one
   computes, which wins where the bus and the compute take about as long. Both are timed. Where the first
   plan runs filter groups or input passes with loads ahead, whose double buffers leave room for narrower
   groups only (which read the input again more often), a plan that loads them in turn where that reloads
   fewer bytes (:data:`hwsim.schedule.planner.IN_TURN`) is made and timed too.
4. Overlap: the bus and every compute unit run concurrently; input rows and bands load ahead,
   weight chunks are double-buffered, and later segments' weights load during earlier ones, in pieces
   between their rows, as early as the room every segment in between leaves allows (when that is
   faster: the room they hold is room overlap cannot use), every buffer counted against capacity.
5. The strict schedule, overlapped, is a schedule this policy can build too (without folding: a folded
   conv's bias is reloaded with every band its chunks stream through): the faster of the two is returned,
   so ``optimized`` is never slower than ``strict``. Its bus alone takes its bytes over the bandwidth,
   so it is timed only when that could win, and planned only when the bytes it must move at least
   (:func:`hwsim.schedule.planner.least_moved`) could.
"""

from __future__ import annotations

from collections.abc import Sequence

from hwsim.cost.bound import unit_seconds
from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import LayerCost
from hwsim.model.graph import Graph
from hwsim.schedule.base import COMPUTE, CapacityError, Step
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.planner import (
    IN_TURN,
    LAYERWISE,
    OPTIMIZED,
    STRICT,
    fuse,
    in_turn_saves,
    least_moved,
    plan,
    plan_program,
    prefetched,
    program_of,
)
from hwsim.schedule.program import Program, Timing, finish, timing
from hwsim.schedule.segment import Group
from hwsim.spec.hardware import HardwareSpec


def folded_costs(costs: tuple[LayerCost, ...], hardware: HardwareSpec, steps: Sequence[Step]) -> tuple[LayerCost, ...]:
    """The layer costs ``optimized``'s ``steps`` refer to: every batch norm they do not compute is folded
    into its conv (all of them, unless strict's schedule of the unfolded network was the faster)."""
    computed = {e.layer for step in steps for e in step.events if e.action is COMPUTE}
    return fold_batchnorm(costs, hardware, keep=computed)[0]


def _layerwise_worth(costs: tuple[LayerCost, ...], groups: list[Group], hardware: HardwareSpec, best_s: float) -> bool:
    """Whether the one-step-a-segment plan is worth making: only where every map fits the internal memory
    whole (where room is short, streaming saves bytes and the first plan has it; there the second plan took
    as long again to make and time on HairNet, and never won), and only if it could beat ``best_s``: its bus
    moves at least :func:`least_moved` and each compute unit does all its work."""
    capacity = hardware.memory.internal.capacity
    if any(c.output_bytes > capacity for c in costs):
        return False
    bus = least_moved(costs, groups, capacity) / hardware.memory.external.bandwidth
    return max(bus, *(unit_seconds(costs, unit, hardware) for unit in {c.unit for c in costs})) < best_s


def schedule_optimized(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
    folded, into = fold_batchnorm(costs, hardware)
    capacity = hardware.memory.internal.capacity
    best: tuple[Program, Timing] | None = None  # the fastest program so far, timed; its steps are built last
    refusal: CapacityError | None = None
    bandwidth = hardware.memory.external.bandwidth
    fused = fuse(folded)
    in_turn_worth = False
    for menu in (OPTIMIZED, IN_TURN, LAYERWISE):
        if menu is IN_TURN and not in_turn_worth:
            continue
        if menu is LAYERWISE and best is not None and not _layerwise_worth(folded, fused, hardware, best[1].total_s):
            continue
        try:
            planner, choices = plan(folded, fused, into, capacity, menu)
        except CapacityError as error:
            refusal = refusal or error
            continue
        in_turn_worth = menu is OPTIMIZED and in_turn_saves(planner)
        # later segments' weights loaded early fill the bus while a segment computes, but hold room that
        # overlap would use: the plan with them is timed beside the plan without, and the faster kept
        ahead = prefetched(planner, choices)
        for candidate in (choices, *([ahead] if ahead else [])):
            program = program_of(planner, candidate)
            # timed only as long as it could still be the faster (None: it cannot)
            found = timing(program, hardware, True, best[1].total_s) if best else timing(program, hardware, True)
            if found is not None and (best is None or found.total_s < best[1].total_s):
                best = program, found
    best_s = best[1].total_s if best is not None else float("inf")
    groups = paper_steps(graph, costs)
    if best is None or least_moved(costs, groups, capacity) / bandwidth < best_s:
        # strict's bus alone would take longer than the best found unless it moves less than it must at least:
        # only then is it planned
        try:
            strict = plan_program(costs, groups, {}, capacity, STRICT)
        except CapacityError as error:
            # strict's steps are single layers: its refusal names the layer that fits nowhere, where a fused
            # step's named its first layer, which may well fit alone (relu+maxpool: the relu)
            refusal = error
        else:
            # strict's own program, overlapped (never slower than strict's serial timing); its bus alone needs
            # its bytes over the bandwidth, so it is timed only if that could be faster
            if strict.moved / bandwidth < best_s:
                found = timing(strict, hardware, True, best_s)
                if found is not None and found.total_s < best_s:
                    best = strict, found
    if best is None:
        assert refusal is not None
        raise refusal
    program, timed = best
    return finish(program, hardware, overlap=True, timed=timed)
