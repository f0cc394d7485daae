"""The segment planner of ``strict`` and ``optimized``: which steps run together, and where every map lives.

The steps (layers, or layers fused into one) are cut into segments (:mod:`hwsim.schedule.segment`)
in the graph's order. At every cut some maps are alive: produced before it and read after it (a
skip, a branch point, the second input of an add or a concat). Each is either resident whole or in
external memory. A dynamic program over the cuts and the sets of maps resident at them finds the
schedule that moves the fewest bytes beyond the weights (each loaded once, unless a step streams
them in chunks again for every band, or its input again for every filter group: :mod:`hwsim.schedule.order`),
then the fewest segments. Between two cuts it tries every
segment the policy may build, and for the maps alive across it every choice that could pay:

- a map the segment produces and later segments read is kept resident or stored as it is produced;
- a resident map the segment reads stays resident, or, when the segment does not fit beside it,
  is spilled (stored and freed) and loaded back as the segment needs it;
- a resident map the segment does not read stays resident beside it, or is spilled (cheapest first).

So a map stays on chip while room allows and its readers come soon enough to pay for the room,
and is spilled by choice, not by rule. A segment fits when its busiest point, counted on the
records it writes (:func:`hwsim.schedule.segment.peak`), beside the resident maps it does not read,
is within capacity. ``optimized`` then loads later segments' weights during earlier segments,
as early as the room every segment in between leaves allows (the first segments' weights load
back to back while the first rows compute).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from typing import NamedTuple

from hwsim.cost.coding import link_bytes
from hwsim.cost.inference import LayerCost
from hwsim.model.graph import INPUT, consumers_of
from hwsim.model.regions import accumulates, has_halo, rows_read
from hwsim.ops import TRAITS
from hwsim.schedule.base import Location, map_of, weights_of
from hwsim.schedule.order import (
    FilterGroups,
    InputPasses,
    filter_groups,
    groupable,
    input_passes,
    largest,
    note,
    passable_step,
    peak,
    write,
)
from hwsim.schedule.program import Program, StepPlan
from hwsim.schedule.segment import (
    CapacityError,
    FirstRow,
    Group,
    Placement,
    Segment,
    Tiling,
    alike,
    least_final_peak,
    least_peak,
    placed,
    row_bounds,
    weight_part,
)

STATES_PER_CUT = 8
"""Sets of resident maps the plan carries on from each cut: the cheapest so far (keeping a map costs nothing
until it must be spilled, which costs later what it would now). A dense block has a map alive per layer
before it, and the sets of them grow without end; the bundled networks reach at most 16, all as cheap."""

MAX_SEGMENT_STEPS = 16
"""The most steps one segment streams row by row: pricing a segment counts its records, so the longest
are the dearest to price, and the bundled networks' plans stream at most 12 (DenseNet-121's blocks would
otherwise be tried whole at every cut)."""

STEADY_STEPS = 2
"""Driver steps of a segment run row by row after which its line buffers repeat: enough to estimate its
peak while planning (the plan's segments are then counted whole before they are written)."""


@dataclass(frozen=True)
class Menu:
    """What a policy may build."""

    rowwise: bool
    """Steps run row by row (a step alone: its input rows loaded ahead, its output rows stored as they come)."""
    chains: bool
    """Segments of several steps, run row by row through line buffers."""
    ahead: bool
    """Loads run ahead of the computes that need them (rows, bands, weight chunks)."""
    prefetch: bool
    """Later segments' weights load during earlier ones."""
    least_bands: int = 1
    """A step alone runs in at least this many row bands, so that loading its input and storing its output
    overlap its compute (where it fits whole, the fewest bands would be one)."""
    in_turn: bool = False
    """Filter groups or input passes load in turn, not ahead, where that reloads fewer bytes: double buffers
    leave them less room, so narrower groups, which read the input again more often."""


STRICT = Menu(rowwise=False, chains=False, ahead=False, prefetch=False)
OPTIMIZED = Menu(rowwise=True, chains=True, ahead=True, prefetch=True)
IN_TURN = Menu(rowwise=True, chains=True, ahead=True, prefetch=True, in_turn=True)
"""``optimized``'s plan beside its first where that one runs filter groups or input passes with loads ahead: one
that moves fewer bytes, at the cost of the overlap (which of the two is faster depends on the bus and the
compute: both are timed)."""
LAYERWISE = Menu(rowwise=False, chains=False, ahead=True, prefetch=True, least_bands=4)
"""``optimized``'s second plan, where every map fits: a plan moves the fewest bytes, then has the fewest
segments, so with room to spare it streams the network row by row, and a stream needs every weight before its
last step's first row; one step a segment, in bands, loads the next step's weights while one computes."""


def fuse(costs: tuple[LayerCost, ...]) -> list[Group]:
    """Each layer, with the layers that fuse (their trait: ReLUs, pools, add, concat) behind it: each
    reads the step's last output, which nothing else reads (an add or a concat reads its other inputs
    from wherever they are)."""
    consumers = consumers_of(c.layer for c in costs)
    groups: list[Group] = []
    for c in costs:
        previous = groups[-1][-1] if groups else None
        if (
            previous is not None
            and TRAITS[c.layer.op].fuses
            and consumers.get(previous.name) == (c.layer,)
            and previous.name in c.layer.inputs
            and (len(c.layer.inputs) == 1 or TRAITS[c.layer.op].many_inputs)
        ):
            groups[-1] = (*groups[-1], c)
        else:
            groups.append((c,))
    return groups


class Choice(NamedTuple):
    """How one segment (groups ``start`` to ``stop``) runs, and what it adds to the plan."""

    start: int
    stop: int
    placement: Placement
    tiling: Tiling
    beside: frozenset[str]
    """Resident maps it does not read, which stay resident beside it."""
    spilled: tuple[str, ...]
    """Resident maps stored and freed when it starts (to be loaded by their readers)."""
    cost: int
    """Bytes it moves beyond its weights once (and beyond the spills' loads by later segments)."""


@cache
def band_candidates(height: int) -> tuple[int, ...]:
    """Band heights (or chunk widths) to try, largest first: the whole, then halving down to one (worked out
    once per height: every placement of a step searches the same)."""
    sizes, b = [], height
    while b > 1:
        sizes.append(b)
        b = math.ceil(b / 2)
    return (*sizes, 1)


def _first_fitting(candidates: tuple[int, ...], fits: object) -> int | None:
    """The first (largest) candidate that fits, by bisection: a smaller band or chunk never needs more room.
    The whole is tried first: it is the one that fits wherever memory is not short."""
    if candidates and fits(candidates[0]):  # type: ignore[operator]
        return candidates[0]
    lo, hi = 1, len(candidates)
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(candidates[mid]):  # type: ignore[operator]
            hi = mid
        else:
            lo = mid + 1
    return candidates[lo] if lo < len(candidates) else None


class Planner:
    """Prices segments and finds the cheapest plan (one per schedule)."""

    def __init__(
        self, program: Program, groups: list[Group], folded: dict[str, str], capacity: float, menu: Menu
    ) -> None:
        self.program, self.groups, self.capacity, self.menu = program, groups, capacity, menu
        self.folded = [tuple(folded[c.name] for c in g if c.name in folded) for g in groups]
        self.group_of = {c.name: g for g, group in enumerate(groups) for c in group}
        readers: dict[str, list[int]] = {}
        for g, group in enumerate(groups):
            for c in group:
                for t in c.layer.inputs:
                    if self.group_of.get(t, -1) != g:
                        readers.setdefault(t, []).append(g)
        self.last_reader = {t: max(gs) for t, gs in readers.items()}
        self.output = groups[-1][-1].name
        self.sizes = {t: program.size(map_of(t)) for t in (*self.group_of, INPUT) if map_of(t) in program._full}
        self.refused: set[tuple[int, int, Placement, Tiling]] = set()
        self._segments: dict[tuple[int, int], Segment] = {}
        self._peaks: dict[tuple[int, int, Placement, Tiling, int | None], int] = {}
        self._peaks_alike: dict[tuple[int, tuple[frozenset[int], ...], Tiling, int | None], int] = {}
        """Peaks by what they read (:func:`alike`, :func:`placed`): a network's repeated blocks are counted once."""
        self._alike_ids: dict[tuple[object, ...], int] = {}
        self._alike_of: dict[tuple[int, int], int] = {}
        self._known: dict[tuple[int, int, Tiling], list[tuple[Placement, int]]] = {}
        """Per segment and tiling, the placements whose whole peak is counted, with it (:meth:`within`)."""
        self._least: dict[tuple[int, int, Placement], int] = {}
        self._weights: dict[tuple[int, int], int] = {}
        """Per segment, the weights it holds from its first row to its last (:meth:`least_final_peak`)."""
        self._bounds: dict[tuple[int, int, Placement, Tiling], tuple[int, int]] = {}
        self._rows_fit: dict[tuple[int, int, Placement, float, bool], bool] = {}
        self._firsts: dict[str, FirstRow] = {}
        self.programs: dict[tuple[Choice, ...], Program] = {}
        """The programs of its plans (:func:`program_of`)."""
        self.reloaded_ahead = False
        """Whether some segment was priced in filter groups or input passes loading ahead where loading in turn would
        load fewer bytes again (a menu without ``in_turn`` takes the first): there a plan that loads in turn may move
        fewer bytes, whichever segments this one ends up choosing (:func:`in_turn_saves`)."""

    def segment(self, start: int, stop: int) -> Segment:
        key = (start, stop)
        if key not in self._segments:
            self._segments[key] = Segment(tuple(self.groups[start:stop]), tuple(self.folded[start:stop]))
        return self._segments[key]

    def alive(self, t: str, cut: int) -> bool:
        """Whether map ``t`` is read by a step at or after cut ``cut``."""
        return self.last_reader.get(t, -1) >= cut

    def peak(self, start: int, stop: int, placement: Placement, tiling: Tiling, limit: int | None = None) -> int:
        if not tiling.band_rows:  # row by row, loads run ahead either way, and skew only moves a cross-unit read
            tiling = Tiling(0, 0, False, tiling.skew and self.segment(start, stop).skews)
        elif type(tiling) is Tiling and self._one_band(start, stop, tiling):
            placement = one_band_alike(placement, tiling)
        key = (start, stop, placement, tiling, limit)
        if key not in self._peaks:
            segment = self.segment(start, stop)
            where = placed(segment, placement)
            if where is None:
                self._peaks[key] = peak(self.program, segment, placement, tiling, limit)
            else:  # a segment alike (a repeated block) under a placement alike was counted: the same records
                same = (self._alike(start, stop), where, tiling, limit)
                if same not in self._peaks_alike:
                    self._peaks_alike[same] = peak(self.program, segment, placement, tiling, limit)
                self._peaks[key] = self._peaks_alike[same]
        return self._peaks[key]

    def _alike(self, start: int, stop: int) -> int:
        """The segment's :func:`alike`, numbered: segments alike share the number."""
        key = (start, stop)
        if key not in self._alike_of:
            self._alike_of[key] = self._alike_ids.setdefault(
                alike(self.program, self.segment(start, stop)), len(self._alike_ids)
            )
        return self._alike_of[key]

    def _one_band(self, start: int, stop: int, tiling: Tiling) -> bool:
        """Whether a one-step segment runs in bands of ``tiling`` as one band."""
        layer = self.segment(start, stop).output.layer
        return (
            stop == start + 1
            and tiling.band_rows >= (layer.input_shape if accumulates(layer) else layer.output_shape)[0]
        )

    def within(self, start: int, stop: int, placement: Placement, tiling: Tiling, room: float) -> bool:
        """Whether the segment's whole peak is within ``room``: answered from a placement counted already where
        one decides it (:func:`holds_more`: a placement that holds as much or more never peaks lower, nor higher
        by more than the maps it holds more of, :func:`more_held`), else counted. Same segment, same tiling:
        placements differ in a map resident or loaded, kept or stored."""
        known = self._known.setdefault((start, stop, tiling), [])
        for other, need in known:
            if holds_more(placement, other):
                if need > room:
                    return False
                if need + self._more(placement, other) <= room:
                    return True
            elif holds_more(other, placement):
                if need <= room:
                    return True
                if need - self._more(other, placement) > room:
                    return False
        need = self.peak(start, stop, placement, tiling)
        known.append((placement, need))
        return need <= room

    def _more(self, more: Placement, less: Placement) -> int:
        """Bytes of the maps ``more`` holds more of than ``less`` (:func:`holds_more`): its run never holds more
        than these beyond what the run with ``less`` holds."""
        return sum(self.sizes[t] for t in more_held(more, less))

    def least_peak(self, start: int, stop: int, placement: Placement) -> int:
        key = (start, stop, placement)
        if key not in self._least:
            self._least[key] = least_peak(self.program, self.segment(start, stop), placement, self._firsts)
        return self._least[key]

    def least_final_peak(self, start: int, stop: int, placement: Placement) -> int:
        """:func:`least_final_peak`, with the segment's weights added up once (pricing asks it of every placement
        the plan tries)."""
        if placement.preloaded or placement.preloaded_part:
            return least_final_peak(self.program, self.segment(start, stop), placement)
        key = (start, stop)
        if key not in self._weights:
            self._weights[key] = least_final_peak(self.program, self.segment(start, stop), Placement())
        return self._weights[key] + self._bytes(placement.resident - placement.consumed) + self._bytes(placement.kept)

    def row_bounds(self, start: int, stop: int, placement: Placement, tiling: Tiling) -> tuple[int, int]:
        """:func:`row_bounds` over the first :data:`STEADY_STEPS` driver steps, as :meth:`peak` counts the tiling."""
        tiling = Tiling(0, 0, False, tiling.skew and self.segment(start, stop).skews)
        key = (start, stop, placement, tiling)
        if key not in self._bounds:
            segment = self.segment(start, stop)
            self._bounds[key] = row_bounds(self.program, segment, placement, tiling, STEADY_STEPS)
        return self._bounds[key]

    # ---- pricing one segment -------------------------------------------------------------------

    def tiling(self, start: int, stop: int, placement: Placement, room: float) -> tuple[Tiling, int] | None:
        """The cheapest way to run the segment within ``room`` bytes, with the bytes it reloads (weight
        chunks once per band after the first, or the input once per filter group after the first); None if
        nothing fits. Loads run ahead where that fits too (in filter groups or input passes, under
        :attr:`Menu.in_turn`, only if loading in turn would not reload fewer bytes)."""
        ways = ((True, True), (True, False), (False, False)) if self.menu.ahead else ((False, False),)
        best: tuple[Tiling, int] | None = None
        for ahead, skew in ways:
            found = self._rows(start, stop, placement, room, ahead, skew)
            if found is None and stop == start + 1 and not skew:
                found = self._bands(start, placement, room, ahead)
            if found is not None and (best is None or found[1] < best[1]):
                best = found
                groups = found[1] and isinstance(found[0], (FilterGroups, InputPasses))
                if not (self.menu.in_turn and groups):
                    if groups and ahead and not self.reloaded_ahead:
                        in_turn = self._bands(start, placement, room, False)
                        self.reloaded_ahead = in_turn is not None and in_turn[1] < found[1]
                    break
        return best

    def _rows(
        self, start: int, stop: int, placement: Placement, room: float, ahead: bool, skew: bool
    ) -> tuple[Tiling, int] | None:
        segment = self.segment(start, stop)
        if not (segment.rowwise and self.menu.rowwise):
            return None
        rows = Tiling(0, 0, ahead, skew)
        if (start, stop, placement, rows) in self.refused:
            return None
        # the tries that differ only in ``ahead``, or in a ``skew`` no layer feels, peak alike (:meth:`peak`)
        key = (start, stop, placement, room, skew and segment.skews)
        fits = self._rows_fit.get(key)
        if fits is None:
            fits = self._rows_fit[key] = self._fits_rows(start, stop, placement, room, rows)
        return (rows, 0) if fits else None

    def _fits_rows(self, start: int, stop: int, placement: Placement, room: float, rows: Tiling) -> bool:
        """Whether the segment's first driver steps row by row fit ``room``: on bounds where they decide it."""
        if sum(self.sizes[t] for t in placement.resident) + self.segment(start, stop).weight_bytes > room:
            return False  # the peak is at least these: no need to count the records
        # estimated with every output stored, then the kept ones added whole (where they end)
        stored = replace(placement, kept=frozenset(), stored=placement.stored | placement.kept)
        kept = sum(self.sizes[t] for t in placement.kept)
        if self.least_peak(start, stop, stored) > room or self.least_final_peak(start, stop, placement) > room:
            return False  # the peak is at least these (at its first rows, at its last): no need to count the records
        lower, upper = self.row_bounds(start, stop, stored, rows)
        if lower > room:
            return False  # its first driver steps, every output stored, peak at least this
        if upper + kept <= room:
            return True  # and at most this, the kept outputs added whole: no need to count them either
        if lower + kept <= room or upper > room:  # the bounds do not decide: the first driver steps counted
            estimate = self.peak(start, stop, stored, rows, STEADY_STEPS)
            if estimate + kept <= room:
                return True
            if estimate > room:
                return False
        # within the room with every output stored, over it with the kept ones added whole: they grow as the inputs
        # read for the last time shrink, so the run's busiest point and its end, where they are whole, are far
        # apart, and it is counted whole (only there: elsewhere the estimate is close, and counting those runs whole
        # found no faster plan on the bundled networks)
        return bool(kept) and bool(placement.consumed) and self.within(start, stop, placement, rows, room)

    def _bands(self, start: int, placement: Placement, room: float, ahead: bool) -> tuple[Tiling, int] | None:
        segment = self.segment(start, start + 1)
        height = segment.output.layer.output_shape[0]
        if accumulates(segment.output.layer):
            height = segment.output.layer.input_shape[0]
        floor = sum(self.sizes[t] for t in placement.resident) + sum(self.sizes[t] for t in placement.kept)

        def fits(tiling: Tiling) -> bool:
            if (start, start + 1, placement, tiling) in self.refused:
                return False
            if floor + (0 if tiling.chunk_channels else segment.weight_bytes) > room:
                return False  # the peak is at least these: no need to count the records
            return self.within(start, start + 1, placement, tiling, room)

        heights = band_candidates(height)
        if self.menu.least_bands > 1:
            heights = tuple(b for b in heights if math.ceil(height / b) >= self.menu.least_bands) or heights[-1:]
        band = _first_fitting(heights, lambda b: fits(Tiling(b, 0, ahead)))
        if band is not None:
            return Tiling(band, 0, ahead), 0
        if not segment.chunkable:
            return None
        band = _first_fitting(heights, lambda b: fits(Tiling(b, 1, ahead)))
        bands: tuple[Tiling, int] | None = None
        if band is not None:
            channels = segment.output.layer.output_shape[2]
            chunk = _first_fitting(band_candidates(channels), lambda c: fits(Tiling(band, c, ahead)))
            assert chunk is not None
            bands = Tiling(band, chunk, ahead), (math.ceil(height / band) - 1) * segment.weight_bytes
            if not bands[1]:
                return bands
        # the other loop order: filter groups outermost, the input read again instead of the weights (a
        # depthwise layer's groups, which read their own channels, may fit where no band of all of them does)
        groups = filter_groups(
            segment,
            ahead,
            room - sum(self.sizes[t] for t in placement.resident),
            {t: self.sizes[t] for t in segment.inputs if t not in placement.resident},
            bands[1] if bands else math.inf,
            fits,
            lambda fits_band: _first_fitting(heights, fits_band),
        )
        best = groups if groups is not None and (bands is None or groups[1] < bands[1]) else bands
        # and the third: each group's bands in passes over the input channels, partial sums held between them
        passes = input_passes(
            self.program,
            segment,
            placement,
            ahead,
            room - sum(self.sizes[t] for t in placement.resident),
            heights,
            best[1] if best else math.inf,
            fits,
        )
        return passes or best

    # ---- the plan ------------------------------------------------------------------------------

    def options(
        self, start: int, resident: frozenset[str], worth: Callable[[int, frozenset[str], int], bool]
    ) -> Iterator[tuple[Choice, frozenset[str]]]:
        """Every segment from cut ``start`` with maps ``resident`` there, and the maps resident after it;
        none that ``worth`` (the cut and maps after it, and the fewest bytes it could move) says cannot
        improve on a plan found already, which is not priced."""
        n = len(self.groups)
        capacity = self.capacity
        for stop in range(start + 1, min(n, start + MAX_SEGMENT_STEPS) + 1):
            segment = self.segment(start, stop)
            if stop > start + 1 and not (self.menu.chains and segment.rowwise):
                break
            if segment.weight_bytes > capacity and stop > start + 1:
                break
            inputs = [t for t in segment.inputs]
            reading = [t for t in inputs if t in resident]
            beside_all = sorted(resident - set(inputs), key=self._spill_cost)
            produced = [t for t in segment.names if self.alive(t, stop)]
            stored_always = frozenset(t for t in segment.names if t == self.output)
            fitted = False
            # Spills of the maps it reads are tried fewest first and stop at the first that runs the segment
            # without reloading weights: a map spilled later costs the bytes it costs now (the maps beside it
            # are all tried: which of them stay decides what later segments can keep).
            for spill_in in _prefixes(sorted(reading, key=self._spill_cost)):
                settled = False
                for spill_beside in _prefixes(beside_all):
                    for kept in _subsets(produced):
                        still = frozenset(reading) - set(spill_in)
                        placement = Placement(
                            resident=still,
                            consumed=frozenset(t for t in still if not self.alive(t, stop)),
                            kept=kept,
                            stored=frozenset(produced) - kept | stored_always,
                        )
                        beside = frozenset(beside_all) - set(spill_beside)
                        after = frozenset((still - placement.consumed) | beside | kept)
                        streamed = [t for t in inputs if t not in still]
                        moved = (
                            sum(self.sizes[t] for t in streamed)
                            + sum(self.sizes[t] for t in (*spill_in, *spill_beside))
                            + sum(self.sizes[t] for t in placement.stored)
                        )
                        if not worth(stop, after, moved):
                            fitted = True  # not priced: a longer segment may still pay
                            continue
                        priced = self.tiling(start, stop, placement, capacity - sum(self.sizes[t] for t in beside))
                        if priced is None:
                            continue
                        fitted = True
                        tiling, reloads = priced
                        settled = settled or not reloads
                        spilled = (*spill_in, *spill_beside)
                        yield Choice(start, stop, placement, tiling, beside, spilled, moved + reloads), after
                if settled:
                    break
            if not fitted and stop > start + 1:
                break  # a longer segment only needs more room

    def _bytes(self, maps: frozenset[str]) -> int:
        return sum(self.sizes[t] for t in maps)

    def _spill_cost(self, t: str) -> tuple[int, str]:
        return (self.sizes[t], t)

    def cheapest(self) -> list[Choice]:
        """The plan that moves the fewest bytes, then has the fewest segments, then holds the fewest bytes of maps
        resident at its cuts (room they hold is room later weights cannot load into while a segment computes): a
        dynamic program over the cuts and the maps resident at each, forward from the first cut."""
        n = len(self.groups)
        best: dict[
            tuple[int, frozenset[str]], tuple[int, int, int, tuple[int, frozenset[str]] | None, Choice | None]
        ] = {(0, frozenset()): (0, 0, 0, None, None)}
        by_cut: list[list[frozenset[str]]] = [[] for _ in range(n + 1)]
        by_cut[0].append(frozenset())
        for start in range(n):
            if len(by_cut[start]) > STATES_PER_CUT:  # the cheapest so far: keeping more costs nothing yet
                by_cut[start].sort(key=lambda resident: (*best[(start, resident)][:2], -len(resident)))  # noqa: B023
                del by_cut[start][STATES_PER_CUT:]
            for resident in by_cut[start]:
                cost, segments, held, _, _ = best[(start, resident)]

                def worth(stop: int, after: frozenset[str], moved: int) -> bool:
                    found = best.get((stop, after))
                    if found is None:
                        return True
                    reached = (cost + moved, segments + 1)  # noqa: B023
                    if reached != found[:2]:
                        return reached < found[:2]
                    return held + self._bytes(after) < found[2]  # noqa: B023  (a tie: the fewer map bytes held)

                for choice, after in self.options(start, resident, worth):
                    key = (choice.stop, after)
                    candidate = (cost + choice.cost, segments + 1, held + self._bytes(after), (start, resident), choice)
                    if key not in best:
                        by_cut[choice.stop].append(after)
                        best[key] = candidate
                    elif candidate[:3] < best[key][:3]:
                        best[key] = candidate
        if (n, frozenset()) not in best:
            raise self._refusal()
        plan: list[Choice] = []
        at: tuple[int, frozenset[str]] | None = (n, frozenset())
        while at is not None:
            _, _, _, back, last = best[at]
            if last is not None:
                plan.append(last)
            at = back
        return plan[::-1]

    def _refusal(self) -> CapacityError:
        """The error for a network no plan fits: the first step that does not fit even alone, loading every
        input as it goes, one row at a time and one channel of weights at a time."""
        for g, group in enumerate(self.groups):
            segment = self.segment(g, g + 1)
            placement = Placement(
                stored=frozenset(t for t in segment.names if self.alive(t, g + 1) or t == self.output)
            )
            tiling = Tiling(1, 1 if segment.chunkable else 0, False)
            need = self.peak(g, g + 1, placement, tiling)
            if groupable(segment):  # or one output channel at a time, in filter groups
                need = min(need, self.peak(g, g + 1, placement, FilterGroups(1, 1, False)))
            if passable_step(segment):  # or in input passes, one input channel at a time
                need = min(need, self.peak(g, g + 1, placement, InputPasses(1, 1, False)))
            if need > self.capacity:
                return CapacityError(
                    f"{group[0].name}: one row per band needs {need:,} B of internal memory; "
                    f"capacity is {self.capacity:,.0f} B"
                )
        return CapacityError(
            f"{self.groups[0][0].name}: no plan of the network fits {self.capacity:,.0f} B of internal memory"
        )


def one_band_alike(placement: Placement, tiling: Tiling) -> Placement:
    """A placement whose run of one step as one band (in ``tiling``'s chunks or not) peaks where ``placement``'s
    does, shared by more placements: an input resident and consumed as one streamed (its rows are all loaded
    before the first compute; from there on the two runs hold the same, and before it the resident one holds
    nothing the streamed one does not come to hold), and, with resident weights, an output kept as one stored
    (stored and freed after the band, when nothing is allocated any more; in chunks, each chunk's rows are
    freed as they are stored, which a kept output's are not; nor when weights for later segments load after
    the band, beside the kept output but not the stored one)."""
    consumed = placement.consumed
    stays = tiling.chunk_channels or placement.prefetch
    if not consumed and (stays or not placement.kept):
        return placement
    kept = placement.kept if stays else frozenset()
    return replace(
        placement,
        resident=placement.resident - consumed,
        consumed=frozenset(),
        kept=kept,
        stored=placement.stored | (placement.kept - kept),
    )


def holds_more(more: Placement, less: Placement) -> bool:
    """Whether a segment run with ``more`` holds at least what it holds with ``less`` at every record, so
    never peaks lower (in bands, in either loop order): every input ``less`` has resident, ``more`` has too,
    and keeps it whole where ``less`` does (a streamed input's rows are loaded before they are read and freed
    when a resident one's are: never more than it); every output ``less`` keeps whole, ``more`` keeps (a
    stored output's rows are allocated when a kept one's are, then freed); the same outputs written, the same
    weights preloaded and prefetched. A property test checks it on counted peaks."""
    return (
        more.prefetch == less.prefetch
        and more.preloaded == less.preloaded
        and more.preloaded_part == less.preloaded_part
        and more.kept | more.stored == less.kept | less.stored
        and more.kept >= less.kept
        and more.resident >= less.resident
        and more.resident - more.consumed >= less.resident - less.consumed
    )


def more_held(more: Placement, less: Placement) -> frozenset[str]:
    """The maps ``more`` holds more of than ``less`` (where :func:`holds_more`): an input resident that ``less``
    streams, or keeps whole where ``less`` frees it as it is consumed; an output kept that ``less`` stores. At
    every record, the run with ``more`` holds at most all of these beyond what the run with ``less`` holds."""
    return (
        (more.resident - less.resident)
        | ((more.resident - more.consumed) - (less.resident - less.consumed))
        | (more.kept - less.kept)
    )


def _prefixes(items: list[str]) -> Iterator[tuple[str, ...]]:
    """None of ``items``, the first, the first two, ... all (spilled cheapest first)."""
    for k in range(len(items) + 1):
        yield tuple(items[:k])


def _subsets(items: list[str]) -> Iterator[frozenset[str]]:
    """Every subset of a few ``items`` (maps a segment may keep); of many, none, all, or all but one."""
    if len(items) <= 3:
        for mask in range(1 << len(items)):
            yield frozenset(t for i, t in enumerate(items) if mask >> i & 1)
        return
    yield frozenset()
    yield frozenset(items)
    for t in items:
        yield frozenset(items) - {t}


def least_moved(costs: tuple[LayerCost, ...], groups: list[Group], capacity: float) -> int:
    """Bytes any plan of ``groups`` one per segment (a menu without row-by-row segments) moves at least, without
    planning: every weight not kept on chip, loaded once, and every step output larger than the capacity
    and read by a later step, which no room holds whole: stored as it is produced, and loaded by each step
    that reads it (at its bytes on the link, where the link codes maps), the rows its readers read
    (:func:`hwsim.model.regions.rows_read`: a strided 1x1 conv skips rows)."""
    producer = {group[-1].name: g for g, group in enumerate(groups)}
    by_name = {c.name: c for c in costs}
    # per map larger than the capacity: of its rows, how many each later step that reads it reads at least
    read: dict[str, dict[int, int]] = {}
    for g, group in enumerate(groups):
        for c in group:
            for i, t in enumerate(c.layer.inputs):
                if producer.get(t, g) != g and by_name[t].output_bytes > capacity:
                    steps = read.setdefault(t, {})
                    steps[g] = max(steps.get(g, 0), rows_read(c.layer) if i == 0 else c.layer.input_shapes[i][0])
    moved = sum(c.weight_bytes for c in costs if not c.weights_resident)
    for t, steps in read.items():
        size, link = by_name[t].output_bytes, by_name[t].output_link
        row_bytes = size // by_name[t].layer.output_shape[0]
        moved += link_bytes(size, link) + sum(link_bytes(row_bytes * rows, link) for rows in steps.values())
    return moved


# ---- writing the plan --------------------------------------------------------------------------


def _prefetched(planner: Planner, plan: list[Choice], peaks: list[int]) -> list[Choice]:
    """The plan with later segments' weights loaded during earlier segments, each as early as the room
    left beside every segment in between allows (their weights are then held through them)."""
    capacity = planner.capacity
    slack = [capacity - p for p in peaks]
    prefetch: list[list[tuple[str, int]]] = [[] for _ in plan]
    preloaded: list[list[str]] = [[] for _ in plan]
    for j, choice in enumerate(plan):
        if j == 0 or choice.tiling.chunk_channels:
            continue
        for c in planner.segment(choice.start, choice.stop).costs:
            if not c.weight_bytes:
                continue
            i = j
            while i > 0 and slack[i - 1] >= c.weight_bytes:
                i -= 1
            if i == j:
                continue
            for k in range(i, j):
                slack[k] -= c.weight_bytes
            prefetch[i].append((c.name, planner.program.full(weights_of(c.name)).channels[1]))
            preloaded[j].append(c.name)
    whole = [
        c._replace(placement=replace(c.placement, prefetch=tuple(prefetch[k]), preloaded=frozenset(preloaded[k])))
        for k, c in enumerate(plan)
    ]
    return _parts(planner, whole, slack)


PART_STEPS = 16
"""Weights loaded in part during the segment before theirs are a whole number of sixteenths of their output
channels: finding how many fit counts that segment's records a few times, not once per channel."""


def _parts(planner: Planner, plan: list[Choice], slack: list[float]) -> list[Choice]:
    """The plan with, where a segment has no room for all of a weight tensor of the next segment, its first
    output channels loaded during it, as many as its counted peak allows (``slack``: the room known to be left
    beside each segment): the bus loads them while the segment computes, instead of after it ends. Only
    during a segment that loads and stores no maps: a busy bus gains nothing from them."""
    plan, held = list(plan), _held(plan, planner)
    for j in range(1, len(plan)):
        choice, before = plan[j], plan[j - 1]
        if choice.tiling.chunk_channels:
            continue  # its weights stream in chunks for every band
        if (
            before.placement.stored
            or set(planner.segment(before.start, before.stop).inputs) - before.placement.resident
        ):
            continue
        layer = next(
            (
                c.name
                for c in planner.segment(choice.start, choice.stop).costs
                if c.weight_bytes and c.name not in choice.placement.preloaded
            ),
            None,
        )
        if layer is None:
            continue
        channels = _part(planner, before, layer, planner.capacity - held[j - 1], slack[j - 1])
        if channels is None:
            continue
        plan[j - 1] = _loading(before, layer, channels)
        if channels == planner.program.full(weights_of(layer)).channels[1]:
            plan[j] = choice._replace(
                placement=replace(choice.placement, preloaded=choice.placement.preloaded | {layer})
            )
        else:
            plan[j] = choice._replace(placement=replace(choice.placement, preloaded_part=((layer, channels),)))
    return plan


def _part(planner: Planner, choice: Choice, layer: str, room: float, slack: float) -> int | None:
    """The most output channels of ``layer``'s weights (in sixteenths of them) that segment ``choice`` can load
    within ``room`` (None: not one sixteenth); as many as ``slack`` bytes hold fit without counting."""
    channels = planner.program.full(weights_of(layer)).channels[1]
    known = slack // planner.program.bytes(weight_part(layer, 1))

    def fits(sixteenths: int) -> bool:
        k = channels * sixteenths // PART_STEPS
        if not k or k <= known:
            return bool(k)
        ahead = _loading(choice, layer, k)
        return planner.peak(ahead.start, ahead.stop, ahead.placement, ahead.tiling) <= room

    sixteenths = largest(PART_STEPS, fits)
    return None if sixteenths is None else channels * sixteenths // PART_STEPS


def _loading(choice: Choice, layer: str, channels: int) -> Choice:
    """``choice`` loading the first ``channels`` output channels of ``layer``'s weights for the next segment."""
    return choice._replace(
        placement=replace(choice.placement, prefetch=(*choice.placement.prefetch, (layer, channels)))
    )


def _held(plan: list[Choice], planner: Planner) -> list[int]:
    """Per segment, the bytes resident beside it that it neither reads nor loads: the resident maps it
    does not read, and weights loaded during an earlier segment for a later one."""
    owner = {c.name: k for k, choice in enumerate(plan) for c in planner.segment(choice.start, choice.stop).costs}
    # Weights loaded during segment i for segment j are held through i+1 .. j-1: each is added where its span
    # starts and taken off where it ends, and one running sum adds them up (a loop over every segment each spans
    # took minutes on a chain of 10,000 small layers, whose weights all load during the first segment).
    change = [0] * (len(plan) + 1)
    for i, choice in enumerate(plan):
        for name, channels in choice.placement.prefetch:
            if i + 1 < owner[name]:
                size = planner.program.bytes(weight_part(name, channels))
                change[i + 1] += size
                change[owner[name]] -= size
    held, spanning = [], 0
    for choice, starting in zip(plan, change):
        spanning += starting
        held.append(sum(planner.sizes[t] for t in choice.beside) + spanning)
    return held


def _exact(planner: Planner, plan: list[Choice]) -> list[int] | Choice:
    """Every segment's peak with what is held beside it, counted on its records; or the first over capacity."""
    peaks = []
    for choice, held in zip(plan, _held(plan, planner)):
        need = held + planner.peak(choice.start, choice.stop, choice.placement, choice.tiling)
        if need > planner.capacity:
            return choice
        peaks.append(need)
    return peaks


SHARED_PLANS = 8
"""Plans kept for the next schedules within :func:`plans_shared` (the latest): the points of a sweep that share
a plan come one after another (the last axis varies fastest), and each makes a plan or two per sub-batch size
(optimized's, and strict's it compares with). HairNet's optimized plan with its programs holds about 5 MB."""

Plans = OrderedDict[object, tuple[Planner, list[Choice]]]
"""Where shared plans are kept, by the value of what each reads."""

_shared: Plans | None = None


@contextmanager
def plans_shared(kept: Plans | None = None) -> Iterator[None]:
    """Within it, a plan is made once for each value of what it reads (the layers' costs, the steps, the
    capacity and the policy's menu) and kept for the schedules after, with its programs: a sweep's points
    that differ only in fields no plan reads (bandwidth, throughput, setup, ...) then only time them.
    ``kept``: where to keep them, to share them with later scopes (a sweep keeps one store for all its
    chunks of points); a new one by default. Within another such scope, that one's store is used."""
    global _shared
    outer = _shared
    if outer is None:
        _shared = kept if kept is not None else OrderedDict()
    try:
        yield
    finally:
        _shared = outer


def plan(
    costs: tuple[LayerCost, ...], groups: list[Group], folded: dict[str, str], capacity: float, menu: Menu
) -> tuple[Planner, list[Choice]]:
    """The cheapest plan, re-planned without any segment whose records turn out over capacity (made once
    per value of its arguments within :func:`plans_shared`)."""
    shared = _shared
    if shared is None:
        return _plan(costs, groups, folded, capacity, menu)
    key = (costs, tuple(groups), tuple(sorted(folded.items())), capacity, menu)
    found = shared.get(key)
    if found is None:
        found = shared[key] = _plan(costs, groups, folded, capacity, menu)
        if len(shared) > SHARED_PLANS:
            shared.popitem(last=False)
    else:
        shared.move_to_end(key)
    return found


def _plan(
    costs: tuple[LayerCost, ...], groups: list[Group], folded: dict[str, str], capacity: float, menu: Menu
) -> tuple[Planner, list[Choice]]:
    planner = Planner(Program(costs), groups, folded, capacity, menu)
    while True:
        choices = planner.cheapest()
        refused = _exact(planner, choices)
        if not isinstance(refused, Choice):
            return planner, choices
        planner.refused.add((refused.start, refused.stop, refused.placement, refused.tiling))


def in_turn_saves(planner: Planner) -> bool:
    """Whether :data:`IN_TURN`'s plan could move fewer bytes: some segment, chosen or not (with other placements
    around it, one the plan passed over may be the cheaper choice), was priced in filter groups or input passes
    loading ahead where loading in turn would load fewer bytes again (:attr:`Planner.reloaded_ahead`)."""
    return planner.reloaded_ahead


def prefetched(planner: Planner, choices: list[Choice]) -> list[Choice] | None:
    """The plan with later segments' weights loaded during earlier segments (None: none can be)."""
    peaks = _exact(planner, choices)
    assert not isinstance(peaks, Choice)
    ahead = _prefetched(planner, choices, peaks)
    if all(not c.placement.prefetch for c in ahead) or isinstance(_exact(planner, ahead), Choice):
        return None
    return ahead


def program_of(planner: Planner, choices: list[Choice]) -> Program:
    """The program of a plan (written once per plan: timing only reads it)."""
    key = tuple(choices)
    program = planner.programs.get(key)
    if program is None:
        program = planner.programs[key] = planner.program.scratch(recording=True)
        for index, choice in enumerate(choices):
            _emit(program, planner, choice, index)
    return program


def plan_program(
    costs: tuple[LayerCost, ...], groups: list[Group], folded: dict[str, str], capacity: float, menu: Menu
) -> Program:
    """The program of the cheapest plan."""
    return program_of(*plan(costs, groups, folded, capacity, menu))


def _emit(program: Program, planner: Planner, choice: Choice, index: int) -> None:
    segment = planner.segment(choice.start, choice.stop)
    steps = [program.begin(plan) for plan in describe(segment, choice, index)]
    for t in choice.spilled:
        program.store(steps[0], program.full(map_of(t)))
        program.free(steps[0], program.full(map_of(t)))
    write(program, segment, choice.placement, choice.tiling, steps)


def describe(segment: Segment, choice: Choice, index: int) -> list[StepPlan]:
    """The report's view of a segment: one plan per step, saying why each tensor is where it is."""
    place, tiling = choice.placement, choice.tiling
    height = segment.output.layer.output_shape[0]
    bands = math.ceil(height / tiling.band_rows) if tiling.band_rows else 0
    plans = []
    for g, (group, folded) in enumerate(zip(segment.groups, segment.folded or ((),) * len(segment.groups))):
        first_inputs = group[0].layer.inputs
        inputs_at = tuple(
            Location.INTERNAL if t in place.resident or t in segment.produced else Location.EXTERNAL
            for t in first_inputs
        )
        last = group[-1].name
        output_at = Location.EXTERNAL if last in place.stored else Location.INTERNAL
        notes = []
        if folded:
            notes.append("folded " + ", ".join(f.rsplit(".", 1)[-1] for f in folded))
        if len(group) > 1:
            notes.append("fused " + "+".join(c.layer.op.value for c in group))
        if g == 0:
            if any(t in place.resident for t in segment.inputs):
                notes.append("input kept internal by the step before")
            if any(t in choice.spilled for t in segment.inputs):
                notes.append("input spilled: it does not fit beside this step")
            beside = sorted(t for t in choice.spilled if t not in segment.inputs)
            if beside:
                notes.append("spilled " + ", ".join(beside) + " to make room")
            if choice.beside:
                notes.append("kept beside it: " + ", ".join(sorted(choice.beside)))
        if not tiling.band_rows:
            notes.append("streamed row by row through line buffers")
        elif bands > 1:
            halo = any(has_halo(c.layer) for c in segment.costs)
            notes.append(f"{bands} bands of {tiling.band_rows} rows" + (" with halo" if halo else ""))
        if len(segment.groups) > 1:
            rest = len(segment.groups) - 1 - g
            notes.append(f"streamed with {rest} more steps" if rest else "end of a streamed segment")
        if last in place.kept:
            notes.append("output kept internal for its readers")
        elif last in place.stored:
            notes.append("output stored")
        if tiling.chunk_channels:
            notes.append(note(tiling, segment))
        if any(c.name in place.preloaded for c in group):
            notes.append("weights loaded during an earlier step")
        part = dict(place.preloaded_part)
        for c in group:
            if c.name in part:
                channels = c.layer.output_shape[2]
                notes.append(
                    f"weights of {part[c.name]} of its {channels} output channels loaded during the step before"
                )
        plans.append(
            StepPlan(
                group,
                inputs_at,
                output_at,
                "; ".join(notes),
                tiling.band_rows if bands > 1 else (1 if not tiling.band_rows else 0),
                tiling.chunk_channels,
                index,
                folded,
            )
        )
    return plans
