"""The ``optimized`` policy: what a good compiler for this accelerator would do.

1. Fold every inference batch norm into the conv before it (:mod:`hwsim.cost.fold`).
2. Fuse each ReLU and pooling layer into its producer: one step, no map of its own in the report.
3. Cut the steps into segments by cost, not greedily: a dynamic program over the cut points and
   over keeping or storing each boundary map finds the segmentation that moves the fewest bytes
   beyond the compulsory ones. A segment is a chain of steps streamed row by row through line
   buffers (:mod:`hwsim.schedule.stream`), or one step run in row bands, with its weights streamed
   in chunks when they do not fit (:mod:`hwsim.schedule.tiling`).
4. Overlap: the bus and every compute unit run concurrently; input rows are loaded a row (or a
   band) ahead, weight chunks are double-buffered, and the next segment's weights are loaded while
   the current one computes when they fit beside it, every buffer counted against capacity.
5. The strict schedule of the folded network, overlapped, is a schedule this policy can build too:
   the faster of the two is returned, so ``optimized`` is never slower than ``strict``. Its bus
   alone takes its bytes over the bandwidth, so it is built only while that stays below the
   optimized schedule's time, and timed only if it got through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import LayerCost
from hwsim.model.graph import Graph, Layer, consumers_of
from hwsim.ops import TRAITS
from hwsim.schedule.base import Step, weights_of
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.program import Program, finish
from hwsim.schedule.stream import (
    FirstRows,
    Placement,
    Windows,
    actions,
    chain_heights,
    chain_peak,
    streamable,
)
from hwsim.schedule.stream import (
    emit as emit_stream,
)
from hwsim.schedule.tiling import (
    CapacityError,
    Group,
    Needs,
    Segment,
    Tiling,
    choose_tiling,
    describe,
    representative_needs,
    run,
)
from hwsim.schedule.tiling import (
    emit as emit_bands,
)
from hwsim.schedule.tiling import (
    peak_bytes as band_peak,
)
from hwsim.spec.hardware import HardwareSpec

STEADY_ROWS = 3
"""Rows of a chain's output after which its line buffers repeat: enough to estimate its peak."""


def _chained(consumers: dict[str, tuple[Layer, ...]], before: LayerCost, after: LayerCost) -> bool:
    """``after`` reads ``before``'s output and nothing else, and nothing else reads it."""
    return consumers.get(before.name) == (after.layer,) and len(after.layer.inputs) == 1


def fuse(costs: tuple[LayerCost, ...]) -> list[Group]:
    """Each layer, with the layers that fuse (their trait: ReLUs, pools) and are the sole readers of it
    (transitively) behind it."""
    consumers = consumers_of(c.layer for c in costs)
    groups: list[Group] = []
    for c in costs:
        previous = groups[-1][-1] if groups else None
        if previous and TRAITS[c.layer.op].fuses and _chained(consumers, previous, c):
            groups[-1] = (*groups[-1], c)
        else:
            groups.append((c,))
    return groups


@dataclass(frozen=True)
class Choice:
    """How one segment (groups ``start`` to ``stop``) runs and what it costs beyond compulsory traffic."""

    start: int
    stop: int
    keep_in: bool
    """Its input (the step before's output) is resident whole when it starts."""
    keep_out: bool
    """Its output stays resident whole for the next segment."""
    extra_bytes: int
    tiling: Tiling | None = None
    """Row bands (and weight chunks); None: streamed row by row."""
    overlap: bool = True
    """Bands: the next band's rows (and weight chunk) load while the current one computes."""


class Planner:
    """Prices segments of the fused steps and finds the cheapest segmentation (one per schedule)."""

    def __init__(self, program: Program, groups: list[Group], folded: dict[str, str], capacity: float) -> None:
        self.program, self.groups, self.capacity = program, groups, capacity
        self.names = [tuple(folded[c.name] for c in g if c.name in folded) for g in groups]
        self.consumers = consumers_of(c.layer for c in program.costs.values())
        self.linked = [False] + [_chained(self.consumers, before[-1], g[0]) for before, g in zip(groups, groups[1:])]
        self.windows: Windows = {}
        self.refused: set[tuple[int, int, bool, bool]] = set()
        self.first_rows: dict[tuple[int, bool], FirstRows] = {}
        """Per chain start and whether its input is kept: the peaks of every chain from there, with the output
        stored (the same for any output)."""
        self.streamable: dict[tuple[int, int], bool] = {}
        """Per segment: whether it can stream row by row (asked under every boundary condition)."""
        self.needs: dict[int, Needs] = {}
        """Per step run in bands: its bands' needs, shared by every boundary condition it is priced under."""

    def segment(self, start: int, stop: int) -> Segment:
        return Segment(tuple(self.groups[start:stop]), tuple(self.names[start:stop]))

    def placement(self, start: int, stop: int, keep_in: bool, keep_out: bool) -> Placement:
        inputs = frozenset(self.segment(start, stop).inputs()) if keep_in else frozenset()
        return Placement(whole=inputs, consumed=inputs, keep_output=keep_out)

    def _output_cost(self, stop: int, keep_out: bool) -> int:
        """A boundary map not kept is stored once and loaded by every reader; the network's output is compulsory."""
        if keep_out or stop == len(self.groups):
            return 0
        out = self.groups[stop - 1][-1]
        return out.output_bytes * (1 + len(self.consumers.get(out.name, ())))

    def price(self, start: int, stop: int, keep_in: bool, keep_out: bool) -> Choice | None:
        """The cheapest way to run groups ``start``..``stop`` with these boundaries (None: nothing fits)."""
        if (start, stop, keep_in, keep_out) in self.refused:
            return None
        segment = self.segment(start, stop)
        output = self._output_cost(stop, keep_out)
        options = []
        if (start, stop) not in self.streamable:
            self.streamable[(start, stop)] = streamable(segment)
        if self.streamable[(start, stop)]:
            key = (start, keep_in)
            if key not in self.first_rows:
                self.first_rows[key] = FirstRows(self.program, segment.costs[0], keep_in, self.windows)
            rows = self.first_rows[key]
            # a chain over capacity before it frees anything is refused without replaying its rows
            if (
                rows.floor(segment) <= self.capacity
                and rows.peak(segment, STEADY_ROWS) + (segment.output.output_bytes if keep_out else 0) <= self.capacity
            ):
                options.append(Choice(start, stop, keep_in, keep_out, output))
        if stop == start + 1 and not options:  # bands cost at least the output a stream costs
            whole = set(segment.inputs()) if keep_in else set()
            room = self.capacity - sum(self.program.bytes(self.program.full(t)) for t in whole)
            for overlap in (True, False):
                tiled = choose_tiling(
                    self.program, segment, whole, [keep_out], room, overlap, needs=self.needs.setdefault(start, {})
                )
                if tiled is not None:
                    options.append(Choice(start, stop, keep_in, keep_out, output + tiled[0], tiled[1], overlap))
                    break
        return min(options, key=lambda c: (c.extra_bytes, c.tiling is None)) if options else None

    def cheapest(self) -> list[Choice]:
        """The segmentation with the fewest extra bytes (then the fewest segments), by dynamic programming."""
        n = len(self.groups)
        best: dict[tuple[int, bool], tuple[int, int, list[Choice]]] = {(n, False): (0, 0, [])}
        for start in reversed(range(n)):
            for keep_in in (False, True) if self.linked[start] else (False,):
                options = []
                for stop in range(start + 1, n + 1):
                    if stop > start + 1 and not self.linked[stop - 1]:
                        break
                    fitted = False
                    for keep_out in (False, True) if stop < n and self.linked[stop] else (False,):
                        choice = self.price(start, stop, keep_in, keep_out)
                        rest = best.get((stop, keep_out))
                        if choice is None or rest is None:
                            continue
                        fitted = True
                        options.append((choice.extra_bytes + rest[0], 1 + rest[1], [choice, *rest[2]]))
                    if not fitted and stop > start + 1:
                        break  # a longer chain only needs more room
                if options:
                    best[(start, keep_in)] = min(options, key=lambda o: o[:2])
        if (0, False) not in best:
            raise CapacityError(
                f"{self.groups[0][0].name}: no segmentation of the network fits "
                f"{self.capacity:,.0f} B of internal memory"
            )
        return best[(0, False)][2]


def _weights(segment: Segment) -> tuple[str, ...]:
    return tuple(weights_of(c.name) for c in segment.costs if c.weight_bytes)


def _emit(planner: Planner, choices: list[Choice]) -> Program | tuple[int, int, bool, bool]:
    """The program of ``choices``, or the choice whose exact peak turned out over capacity."""
    program = Program(tuple(planner.program.costs.values()))
    capacity = planner.capacity
    preloaded: frozenset[str] = frozenset()
    for i, choice in enumerate(choices):
        segment = planner.segment(choice.start, choice.stop)
        following = choices[i + 1] if i + 1 < len(choices) else None
        nxt = planner.segment(following.start, following.stop) if following else None
        prefetchable = (
            _weights(nxt) if following and nxt and not (following.tiling and following.tiling.chunk_channels) else ()
        )
        whole = set(segment.inputs()) if choice.keep_in else set()
        base = program.resident
        if choice.tiling is None:
            place = planner.placement(choice.start, choice.stop, choice.keep_in, choice.keep_out)
            place = Placement(place.whole, place.consumed, place.keep_output, preloaded)
            heights = chain_heights(segment)
            prefetch = prefetchable
            ahead = Placement(place.whole, place.consumed, place.keep_output, preloaded, prefetch)
            acts = actions(segment, ahead, heights, planner.windows)
            peak = chain_peak(program, segment, ahead, acts)
            if prefetch and base + peak - _resident_of(program, place) > capacity:
                # the prefetched weights load right after the chain's own and stay: without them, every
                # point from there on (the busiest among them) holds exactly their bytes less
                peak -= sum(program.bytes(program.full(w)) for w in prefetch)
                prefetch, ahead = (), place
                acts = actions(segment, place, heights, planner.windows)
            if base + peak - _resident_of(program, place) > capacity:
                return (choice.start, choice.stop, choice.keep_in, choice.keep_out)
            steps = [
                program.begin(p)
                for p in describe(segment, i, whole, Tiling(1, 0, choice.keep_out), _note(whole), streamed=True)
            ]
            emit_stream(program, segment, steps, acts, planner.windows)
        else:
            peak = band_peak(
                program,
                segment,
                whole,
                choice.tiling,
                representative_needs(segment, choice.tiling.band_rows),
                choice.overlap,
            )
            prefetch = (
                prefetchable
                if prefetchable and base + peak + sum(program.bytes(program.full(w)) for w in prefetchable) <= capacity
                else ()
            )
            steps = [program.begin(p) for p in describe(segment, i, whole, choice.tiling, _note(whole))]
            emit_bands(program, segment, steps, whole, choice.tiling, choice.overlap, preloaded, prefetch)
            for t in sorted(whole):
                program.free(steps[-1], program.full(t))
        preloaded = frozenset(prefetch)
    return program


def _resident_of(program: Program, place: Placement) -> int:
    return sum(program.bytes(program.full(t)) for t in (*place.whole, *place.preloaded))


def _note(whole: set[str]) -> str:
    return "input kept internal by the step before" if whole else ""


def _optimized_program(costs: tuple[LayerCost, ...], folded: dict[str, str], capacity: float) -> Program:
    planner = Planner(Program(costs), fuse(costs), folded, capacity)
    while True:
        result = _emit(planner, planner.cheapest())
        if isinstance(result, Program):
            return result
        planner.refused.add(result)


def schedule_optimized(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
    folded_costs, folded = fold_batchnorm(costs, hardware)
    capacity = hardware.memory.internal.capacity
    best: list[Step] | None = None
    try:
        best = finish(_optimized_program(folded_costs, folded, capacity), hardware, overlap=True)
    except CapacityError as error:
        refusal = error
    # strict's program, overlapped, takes at least its bytes over the bandwidth: it is built only
    # as far as it could still be faster than ``best``, and timed only if it could
    best_s = sum(s.total_s for s in best) if best else math.inf
    strict = Program(folded_costs)
    try:
        if run(
            strict,
            [Segment((group,), ((),)) for group in paper_steps(graph, folded_costs)],
            capacity,
            prefetch=False,
            max_moved_bytes=best_s * hardware.memory.external.bandwidth * (1 + 1e-9),
        ):
            candidate = finish(strict, hardware, overlap=True)
            if best is None or sum(s.total_s for s in candidate) < best_s:
                best = candidate
    except CapacityError as error:
        refusal = error
    if best is None:
        raise refusal
    return best
