"""Line-buffered chains: a linear chain of layers streamed one output row at a time.

Rows are produced on demand: to compute row r of a layer, the rows of its input under r's window
are produced first (recursively, back to the chain's inputs), then r is computed, and the input
rows that no later row of the layer needs are freed at once. So between rows a k x k stride-s
layer keeps k - s rows of its input (a line buffer), a 1 x 1 layer none, and no map inside the
chain is ever whole in internal memory. All the chain's weights stay resident while it runs.

The chain's inputs are either resident whole (freed row by row as they are consumed when the chain
is their last reader) or loaded from external memory one row ahead of their use (the next row is
on its way while the current one computes); the chain's output is either kept whole for the next
segment or stored row by row.

One generator of actions (:func:`actions`) drives both the exact memory check (:func:`chain_peak`)
and the program (:func:`emit`), so what is checked is what is emitted. The planner's estimates over
a chain's first rows come from :class:`FirstRows`, which equals that check on the first rows' actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hwsim.cost.inference import LayerCost
from hwsim.model.graph import Layer
from hwsim.ops import TRAITS
from hwsim.schedule.base import ALLOC, COMPUTE, FREE, LOAD, STORE, Action, Region, weights_of
from hwsim.schedule.program import Program, compute_reads
from hwsim.schedule.regions import input_rows
from hwsim.schedule.tiling import Segment

Windows = dict[str, tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]]
"""Per layer, per input: the first and the stop input row every output row reads (a cache across chains)."""

ChainAction = tuple[Action, str, int, int, str]
"""(action, tensor, first row, stop row, layer whose step it belongs to); weights use rows (0, 1)."""


@dataclass(frozen=True)
class Placement:
    """Where a chain's inputs and output live, and which weights it need not load or must prefetch."""

    whole: frozenset[str] = frozenset()
    """Inputs resident whole when the chain starts."""
    consumed: frozenset[str] = frozenset()
    """Of ``whole``, those the chain reads for the last time: freed row by row as it goes."""
    keep_output: bool = False
    preloaded: frozenset[str] = frozenset()
    """Weights already resident (prefetched by the segment before)."""
    prefetch: tuple[str, ...] = ()
    """Weights of the next segment, loaded at the start of this one (after its own)."""


def streamable(segment: Segment) -> bool:
    """Every layer streams (its trait: output row r reads a few input rows around r), and every layer
    after the first reads only the one before it."""
    costs = segment.costs
    return all(TRAITS[c.layer.op].streams for c in costs) and all(
        c.layer.inputs == (previous.name,) for previous, c in zip(costs, costs[1:])
    )


def _windows(layer: Layer, cache: Windows) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    if layer.name not in cache:
        per_row = [input_rows(layer, (r, r + 1)) for r in range(layer.output_shape[0])]
        cache[layer.name] = tuple(
            (tuple(rows[i][0] for rows in per_row), tuple(rows[i][1] for rows in per_row))
            for i in range(len(layer.inputs))
        )
    return cache[layer.name]


def actions(
    segment: Segment, place: Placement, heights: dict[str, int], cache: Windows, final_rows: int | None = None
) -> list[ChainAction]:
    """The chain's actions in program order (see the module docstring), or only those up to
    ``final_rows`` rows of its output."""
    costs = segment.costs
    first = costs[0]
    weighted = [c for c in costs if c.weight_bytes]
    result: list[ChainAction] = [
        (LOAD, weights_of(c.name), 0, 1, c.name) for c in weighted if weights_of(c.name) not in place.preloaded
    ]
    result += [(LOAD, w, 0, 1, first.name) for w in place.prefetch]
    add = result.append
    produced = [0] * len(costs)  # rows of each layer's output computed so far
    freed = [0] * len(costs)  # rows of each layer's output freed so far
    in_windows = _windows(first.layer, cache)
    # per input of the chain: (name, its first and stop rows per output row, its height); only the
    # streamed ones are loaded, only the streamed and the consumed ones freed
    streamed = [(t, his, heights[t]) for t, (_, his) in zip(first.layer.inputs, in_windows) if t not in place.whole]
    released = [
        (t, los, t in place.whole)
        for t, (los, _) in zip(first.layer.inputs, in_windows)
        if t not in place.whole or t in place.consumed
    ]
    loaded = {t: 0 for t in first.layer.inputs}
    in_freed = dict(loaded)
    windows = [_windows(c.layer, cache)[0] for c in costs[1:]]
    names = [c.name for c in costs]
    rows_of = [heights[n] for n in names]
    last = len(costs) - 1
    store_rows = not place.keep_output

    def free_inputs(r: int, final: bool) -> None:
        for t, los, whole in released:
            have = heights[t] if whole else loaded[t]
            keep = have if final else min(los[r + 1], have)
            if keep > in_freed[t]:
                add((FREE, t, in_freed[t], keep, names[0]))
                in_freed[t] = keep

    def produce(i: int, stop: int) -> None:
        """Rows of layer i's output up to ``stop``, each after the input rows it needs."""
        name, height = names[i], rows_of[i]
        if i:
            below, below_rows, (los, his) = i - 1, rows_of[i - 1], windows[i - 1]
        while produced[i] < stop:
            r = produced[i]
            final = r + 1 == height
            if i == 0:
                for t, his0, rows in streamed:
                    ahead = rows if final else his0[r + 1]  # one row ahead: loaded while row r computes
                    if loaded[t] < ahead:
                        add((LOAD, t, loaded[t], ahead, name))
                        loaded[t] = ahead
            else:
                produce(below, below_rows if final else his[r])
            add((ALLOC, name, r, r + 1, name))
            add((COMPUTE, name, r, r + 1, name))
            produced[i] = r + 1
            if i == 0:
                free_inputs(r, final)
            else:
                done = produced[below]
                keep = done if final else min(los[r + 1], done)
                if keep > freed[below]:
                    add((FREE, names[below], freed[below], keep, name))
                    freed[below] = keep
            if i == last and store_rows:
                add((STORE, name, r, r + 1, name))
                add((FREE, name, r, r + 1, name))

    produce(last, rows_of[last] if final_rows is None else min(final_rows, rows_of[last]))
    if final_rows is None:
        result += [(FREE, weights_of(c.name), 0, 1, c.name) for c in weighted]
    return result


def chain_heights(segment: Segment) -> dict[str, int]:
    """Rows of every map the chain touches."""
    heights = {c.name: c.layer.output_shape[0] for c in segment.costs}
    first = segment.costs[0].layer
    heights.update({t: shape[0] for t, shape in zip(first.inputs, first.input_shapes)})
    return heights


def chain_peak(program: Program, segment: Segment, place: Placement, acts: list[ChainAction]) -> int:
    """Resident bytes at the busiest point of the chain's actions ``acts``, on top of what was resident
    before it (its whole inputs and preloaded weights included): the exact check before emitting them."""
    heights = chain_heights(segment)
    size = {t: program.bytes(program.full(t)) for t in heights}
    # bytes per row of every map; weights are one row (0, 1) of all their bytes
    unit = {t: size[t] // heights[t] for t in heights}
    unit.update(
        {
            w: program.bytes(program.full(w))
            for w in (*(weights_of(c.name) for c in segment.costs if c.weight_bytes), *place.prefetch)
        }
    )
    resident = peak = sum(size[t] for t in place.whole) + sum(program.bytes(program.full(w)) for w in place.preloaded)
    for action, t, lo, hi, _ in acts:
        if action is FREE:
            resident -= (hi - lo) * unit[t]
        elif action is LOAD or action is ALLOC:
            resident += (hi - lo) * unit[t]
            if resident > peak:
                peak = resident
    return peak


class FirstRows:
    """The peaks of the first output rows of every chain that starts at one layer, each row of each layer
    replayed once, in byte counts.

    Per layer of the longest chain from the start, per output row so far: the most bytes resident
    above the chain's base (its whole inputs and weights) while the row is produced, the row counted
    but not the layer's earlier rows; and the bytes resident above the base once the row is done, the
    layer's own rows not counted. What happens while a layer's row is produced depends only on the
    layers below, and the layer's own earlier rows stay put meanwhile, so a chain one layer longer
    builds its rows from these and the line buffer it keeps of them, instead of listing its actions
    again. The chain ending at a layer stores each row at once, so :meth:`peak` equals
    :func:`chain_peak` of the first rows' :func:`actions`, with the output stored and the inputs whole
    (``whole``) or streamed (tested).
    A memo: the planner keeps one per start and boundary condition.
    """

    def __init__(self, program: Program, first: LayerCost, whole: bool, cache: Windows) -> None:
        self.program, self.whole, self.cache = program, whole, cache
        layer = first.layer
        heights = {t: shape[0] for t, shape in zip(layer.inputs, layer.input_shapes)}
        windows: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        for t, window in zip(layer.inputs, _windows(layer, cache)):
            windows.setdefault(t, window)  # an input read twice is loaded once
        # per input: bytes per row, the first and stop rows each output row reads, rows
        self.inputs = [
            (program.bytes(program.full(t)) // heights[t], los, his, heights[t]) for t, (los, his) in windows.items()
        ]
        self.loaded = [0] * len(self.inputs)
        self.in_freed = [0] * len(self.inputs)
        self.costs: list[LayerCost] = []
        self.units: list[int] = []
        """Per layer: bytes per row of its output."""
        self.weights: list[int] = []
        """Per layer: its weight bytes and those of the layers before it."""
        self.rows: list[list[tuple[int, int]]] = []
        # per layer: (rows of the layer below taken, rows of it freed, bytes above the base after the
        # latest of them); for the first layer, only the last
        self.state: list[tuple[int, int, int]] = []

    def floor(self, segment: Segment) -> int:
        """Bytes the chain ``segment`` (starting at this start) holds before it frees anything: its whole
        inputs and all its weights, loaded first. Its peak is at least this."""
        costs = segment.costs
        program = self.program
        for cost in costs[len(self.costs) :]:
            self.costs.append(cost)
            self.units.append(program.bytes(program.full(cost.name)) // cost.layer.output_shape[0])
            weights = program.bytes(program.full(weights_of(cost.name))) if cost.weight_bytes else 0
            self.weights.append(weights + (self.weights[-1] if self.weights else 0))
            self.rows.append([])
            self.state.append((0, 0, 0))
        whole = sum(size * height for size, _, _, height in self.inputs) if self.whole else 0
        return whole + self.weights[len(costs) - 1]

    def peak(self, segment: Segment, rows: int) -> int:
        """The peak of the chain ``segment`` (starting at this start) over its first ``rows`` output rows."""
        base = self.floor(segment)
        last = len(segment.costs) - 1
        count = min(rows, segment.costs[last].layer.output_shape[0])
        self._extend(last, count)
        return base + max([0, *(most for most, _ in self.rows[last][:count])])

    def _extend(self, i: int, count: int) -> None:
        """Replay layer ``i`` up to ``count`` rows of its output."""
        if len(self.rows[i]) < count:
            (self._extend_first if i == 0 else self._extend_layer)(i, count)

    def _extend_first(self, i: int, count: int) -> None:
        """The first layer's rows: for each, its streamed inputs loaded a row ahead, then the row, then
        the input rows it no longer needs freed."""
        produced, unit, height = self.rows[0], self.units[0], self.costs[0].layer.output_shape[0]
        above = self.state[0][2]
        for r in range(len(produced), count):
            final = r + 1 == height
            for k, (size, _, his, rows) in enumerate(self.inputs):
                ahead = rows if final else his[r + 1]
                if not self.whole and self.loaded[k] < ahead:
                    above += (ahead - self.loaded[k]) * size
                    self.loaded[k] = ahead
            most = above + unit
            for k, (size, los, _, rows) in enumerate(self.inputs):
                have = rows if self.whole else self.loaded[k]
                keep = have if final else min(los[r + 1], have)
                if keep > self.in_freed[k]:
                    above -= (keep - self.in_freed[k]) * size
                    self.in_freed[k] = keep
            produced.append((most, above))
        self.state[0] = (0, 0, above)

    def _extend_layer(self, i: int, count: int) -> None:
        """Layer ``i``'s rows: for each, the rows of the layer below under its window (each on top of
        the line buffer held of that layer), then the row, then the rows below no later row reads freed."""
        produced, height = self.rows[i], self.costs[i].layer.output_shape[0]
        below_height = self.costs[i - 1].layer.output_shape[0]
        los, his = _windows(self.costs[i].layer, self.cache)[0]
        self._extend(i - 1, below_height if count == height else his[count - 1])  # windows only move down
        below, size, unit = self.rows[i - 1], self.units[i - 1], self.units[i]
        taken, freed, after = self.state[i]
        for r in range(len(produced), count):
            final = r + 1 == height
            stop = below_height if final else his[r]
            held = taken - freed
            most = None  # not 0: bytes above the base go negative as a whole input is freed
            for q in range(taken, stop):
                below_most, after = below[q]
                if most is None or held * size + below_most > most:
                    most = held * size + below_most
                held += 1
            if stop > taken:
                taken = stop
            if most is None or after + held * size + unit > most:
                most = after + held * size + unit
            keep = taken if final or los[r + 1] > taken else los[r + 1]
            if keep > freed:
                freed = keep
            produced.append((most, after + (taken - freed) * size))
        self.state[i] = (taken, freed, after)


def emit(program: Program, segment: Segment, steps: list[int], acts: list[ChainAction], cache: Windows) -> None:
    """Write the chain's actions into ``program``; ``steps`` are the program's steps of its groups."""
    step_of = {c.name: steps[g] for g, group in enumerate(segment.groups) for c in group}
    costs = {c.name: c for c in segment.costs}
    # per map: its channels and its bytes per row
    maps = {
        t: (program.full(t).channels, program.bytes(program.full(t)) // rows)
        for t, rows in chain_heights(segment).items()
    }
    reads = {c.name: _row_reads(c, cache) for c in segment.costs}
    new = tuple.__new__  # Region's own constructor costs a Python call, and a chain writes thousands
    for action, t, lo, hi, layer in acts:
        step = step_of.get(layer, steps[0])
        if t not in maps:  # weights: all of them
            program.occupy(step, action, program.full(t)) if action is LOAD else program.free(step, program.full(t))
            continue
        channels, row_bytes = maps[t]
        if action is COMPUTE:
            program.compute(step, costs[t], (lo, hi), channels, reads[t](lo))
        else:
            program.add(step, action, new(Region, (t, (lo, hi), channels)), (hi - lo) * row_bytes)


def _row_reads(cost: LayerCost, cache: Windows) -> Callable[[int], tuple[Region, ...]]:
    """The reads of output row r of ``cost`` (what :func:`compute_reads` gives), from its row windows:
    per input, the rows under row r's window with the same channels for every row; then its weights."""
    layer = cost.layer
    first_row = compute_reads(cost, (0, 1), (0, layer.output_shape[2]))
    per_input = [
        (t, los, his, read.channels) for t, (los, his), read in zip(layer.inputs, _windows(layer, cache), first_row)
    ]
    weights = first_row[len(layer.inputs) :]

    new = tuple.__new__  # as in :func:`emit`

    def reads(r: int) -> tuple[Region, ...]:
        return (*[new(Region, (t, (los[r], his[r]), channels)) for t, los, his, channels in per_input], *weights)

    return reads
