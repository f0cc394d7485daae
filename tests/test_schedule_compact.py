"""Compact programs give what the long way gives: repeated rows, bands and chunks written once unroll to
the records written one by one, time as they do, and a segment's price is the peak its records reach."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from schedule_helpers import graph_from, hardware, networks

from hwsim import api
from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import LayerCost, graph_costs
from hwsim.model.graph import Graph
from hwsim.model.regions import accumulates
from hwsim.schedule.base import ALLOC, FREE, LOAD, RESIDENT, CapacityError, map_of
from hwsim.schedule.order import FilterGroups, InputPasses, groupable, passable_step, write
from hwsim.schedule.order import peak as order_peak
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.planner import (
    OPTIMIZED,
    STEADY_STEPS,
    STRICT,
    Choice,
    Menu,
    Planner,
    _emit,
    _held,
    _loading,
    _part,
    fuse,
    holds_more,
    more_held,
    one_band_alike,
    plan,
    prefetched,
)
from hwsim.schedule.program import Loop, Program, Record, finish, time_items, unrolled_records
from hwsim.schedule.segment import (
    Placement,
    Segment,
    Tiling,
    alike,
    held_before,
    least_final_peak,
    least_peak,
    peak,
    placed,
    row_bounds,
)
from hwsim.schedule.validate import validate_steps
from hwsim.spec.hardware import HardwareSpec

capacities = st.sampled_from([2_000, 8_000, 32_000, 1e6])


def _plans(graph: Graph, hw: HardwareSpec) -> list[tuple[Planner, list]]:
    """The strict and the optimized plan of ``graph`` (none that does not fit)."""
    costs = graph_costs(graph, hw)
    folded, into = fold_batchnorm(costs, hw)
    capacity = hw.memory.internal.capacity
    found = []
    for menu, layers, groups, names in (
        (STRICT, costs, paper_steps(graph, costs), {}),
        (OPTIMIZED, folded, fuse(folded), into),
    ):
        try:
            found.append(plan(layers, groups, names, capacity, menu))
        except CapacityError:
            pass
    return found


def _written(planner: Planner, choice, compact: bool) -> Program:  # type: ignore[no-untyped-def]
    scratch = planner.program.scratch(recording=True)
    segment = planner.segment(choice.start, choice.stop)
    steps = [scratch.begin(plan) for plan in _scratch_plans(segment)]
    write(scratch, segment, choice.placement, choice.tiling, steps, compact)
    return scratch


def _scratch_plans(segment):  # type: ignore[no-untyped-def]
    from hwsim.schedule.segment import _PLAN

    return [_PLAN for _ in segment.groups]


def _top_records(items: list[Record | Loop]):  # type: ignore[no-untyped-def]
    """The records written, each repeated block's once."""
    for item in items:
        if isinstance(item, Loop):
            yield from _top_records(item.body)
        else:
            yield item


def _loops(items: list[Record | Loop]) -> int:
    return sum(1 + _loops(item.body) if isinstance(item, Loop) else 0 for item in items)


def _assert_compact_unrolls(graph: Graph, capacity: float) -> None:
    for planner, choices in _plans(graph, hardware(capacity)):
        for choice in choices:
            compact, long = _written(planner, choice, True), _written(planner, choice, False)
            assert list(unrolled_records(compact.items)) == list(unrolled_records(long.items)), choice
            assert (compact.peak, compact.resident, compact.moved) == (long.peak, long.resident, long.moved)


@given(networks(), capacities)
def test_compact_records_unroll_to_the_records_written_one_by_one(graph: Graph, capacity: float) -> None:
    _assert_compact_unrolls(graph, capacity)


@given(networks(having="gconv"), st.sampled_from([4_000, 8_000, 16_000]))
def test_the_chunks_of_a_grouped_conv_unroll_to_the_chunks_written_one_by_one(graph: Graph, capacity: float) -> None:
    """A chunk of a grouped conv's filters reads its groups' input channels: chunks repeat one another only
    while those move as the filters do (they stop, or jump, at a group's edge)."""
    _assert_compact_unrolls(graph, capacity)


def test_a_grouped_convs_chunks_repeat_within_its_groups_only() -> None:
    """Chunks of 3 of 48 filters in 3 groups of 16 (strict and optimized chunk them so at 8 kB): the first
    chunks of a group read its input channels alike, the chunk across a group's edge reads two groups."""
    graph = graph_from(
        {
            "name": "grouped",
            "input": [8, 8, 24],
            "layers": [{"op": "conv", "kernel": 3, "filters": 48, "groups": 3, "padding": "same", "bias": False}],
        }
    )
    plans = _plans(graph, hardware(8_000))
    chunked = [(p, c) for p, choices in plans for c in choices if c.tiling.chunk_channels % 16]
    assert len(chunked) == 2  # both policies' chunks cross the groups' edges
    for planner, choice in chunked:
        compact, long = _written(planner, choice, True), _written(planner, choice, False)
        assert list(unrolled_records(compact.items)) == list(unrolled_records(long.items))
        assert _loops(compact.items) and len(list(_top_records(compact.items))) < len(long.items) / 2


def _resident_peaks(
    records: list[Record], starts: dict[int, int], ends: dict[int, int]
) -> tuple[dict[int, int], dict[int, int]]:
    """Per segment (its first and last step), the bytes resident before its records, and the most bytes
    resident in program order during them."""
    resident, before, peaks = 0, {}, {}
    for r in records:
        for first, last in zip(starts.values(), ends.values()):
            if first <= r.step <= last:
                before.setdefault(first, resident)
        if r.action in (LOAD, ALLOC, RESIDENT):
            resident += r.bytes
        elif r.action is FREE:
            resident -= r.bytes
        for first, last in zip(starts.values(), ends.values()):
            if first <= r.step <= last:
                peaks[first] = max(peaks.get(first, 0), resident)
    return before, peaks


@given(networks(), capacities)
def test_a_segments_price_is_the_peak_its_records_reach_in_the_program(graph: Graph, capacity: float) -> None:
    """What the planner counts a segment at (with what it holds beside it) is what the program holds at
    the busiest point of that segment's records: one model of memory. So too with later segments' weights
    loaded during earlier ones, whole or in part (:func:`prefetched`)."""
    for planner, plain in _plans(graph, hardware(capacity)):
        ahead = prefetched(planner, plain)
        for choices in (plain, *([ahead] if ahead else [])):
            _priced_is_emitted(planner, choices, capacity)


@given(networks(), capacities)
def test_weights_loaded_in_part_during_the_segment_before_are_priced_as_emitted_and_pass_the_validator(
    graph: Graph, capacity: float
) -> None:
    """A segment that loads the first output channels of the next segment's weights (as many as :func:`_part`
    finds room for, after every segment, whatever its bus does) holds what it is priced at, and the program,
    run, passes the validator: the part loaded once, the rest by its own segment, none of it twice."""
    hw = hardware(capacity)
    for planner, choices in _plans(graph, hw):
        parted, held = list(choices), _held(choices, planner)
        for j in range(1, len(parted)):
            if parted[j].tiling.chunk_channels:
                continue
            segment = planner.segment(parted[j].start, parted[j].stop)
            layer = next((c.name for c in segment.costs if c.weight_bytes), None)
            channels = None if layer is None else _part(planner, parted[j - 1], layer, capacity - held[j - 1], 0)
            if layer is None or channels is None:
                continue
            parted[j - 1] = _loading(parted[j - 1], layer, channels)
            parted[j] = parted[j]._replace(placement=replace(parted[j].placement, preloaded_part=((layer, channels),)))
        _priced_is_emitted(planner, parted, capacity)
        program = planner.program.scratch(recording=True)
        for index, choice in enumerate(parted):
            _emit(program, planner, choice, index)
        steps = finish(program, hw, overlap=True)
        assert validate_steps(steps, tuple(program.costs.values()), hw) == []


def _priced_is_emitted(planner: Planner, choices: list[Choice], capacity: float) -> None:
    program = planner.program.scratch(recording=True)
    firsts, lasts = {}, {}
    for index, choice in enumerate(choices):
        firsts[index] = len(program.plans)
        _emit(program, planner, choice, index)
        lasts[index] = len(program.plans) - 1
    before, measured = _resident_peaks(list(unrolled_records(program.items)), firsts, lasts)
    held = _held(choices, planner)
    for index, choice in enumerate(choices):
        priced = planner.peak(choice.start, choice.stop, choice.placement, choice.tiling) + held[index]
        # maps it spills are resident until it stores them, as they were before it
        assert measured[firsts[index]] == max(priced, before[firsts[index]]), (index, choice)
        assert priced <= capacity


@given(networks(), st.sampled_from([0, 1, 2, 3]), st.booleans(), st.booleans())
def test_the_bounds_the_planner_refuses_on_are_never_above_the_counted_peak(
    graph: Graph, which: int, skew: bool, keep: bool
) -> None:
    """The bounds the planner prices row-by-row segments on without counting their records are bounds, for any
    placement (the segment's output stored or kept): from below (a layer's first row; every map's rows once a driver
    step is done), at most the peak their records reach over the first driver steps and over the whole run, and the
    last row's over the whole run; from above (every map's rows reached by the end of a step above those freed by
    the end of the step before), at least the first driver steps' peak."""
    costs = graph_costs(graph, hardware(1e6))
    folded, into = fold_batchnorm(costs, hardware(1e6))
    groups = fuse(folded)
    planner = Planner(Program(folded), groups, into, 1e6, OPTIMIZED)
    for start in range(len(groups)):
        for stop in range(start + 1, min(len(groups), start + 4) + 1):
            segment = planner.segment(start, stop)
            if not segment.rowwise:
                break
            inputs = frozenset(segment.inputs)
            resident = inputs if which & 1 else frozenset()
            written = frozenset(segment.names if which & 2 else segment.names[-1:])
            kept = frozenset(segment.names[-1:]) if keep else frozenset()
            placement = Placement(
                resident=resident,
                consumed=resident if which & 2 else frozenset(),
                kept=kept,
                stored=written - kept,
            )
            tiling = Tiling(0, 0, False, skew)
            least = least_peak(planner.program, segment, placement, {})
            lower, upper = row_bounds(planner.program, segment, placement, tiling, STEADY_STEPS)
            estimate = peak(planner.program, segment, placement, tiling, STEADY_STEPS)
            whole = peak(planner.program, segment, placement, tiling)
            assert least <= estimate and least <= whole
            assert lower <= estimate <= upper, (segment.names, placement)
            assert lower <= whole, (segment.names, placement)
            assert least_final_peak(planner.program, segment, placement) <= whole


def _times(
    items: list[Record | Loop], hw: HardwareSpec, overlap: bool, costs: dict[str, LayerCost]
) -> list[tuple[int, float, float]]:
    """Every record's place and times, repeated blocks unrolled."""
    import itertools

    found = []
    for t in time_items(items, hw, overlap, costs):
        counts = [range(p.count) for p in t.periods]
        for ks in itertools.product(*counts):
            shift = sum(k * p.period_s for k, p in zip(ks, t.periods))
            seq = t.seq + sum(k * p.seq_stride for k, p in zip(ks, t.periods))
            found.append((seq, t.start + shift, t.end + shift))
    return sorted(found)


def _same_times(compact: Program, hw: HardwareSpec, overlap: bool) -> int:
    unrolled = list(unrolled_records(compact.items))
    a = _times(compact.items, hw, overlap, compact.costs)
    b = _times(unrolled, hw, overlap, compact.costs)  # type: ignore[arg-type]
    assert [s for s, _, _ in a] == list(range(len(unrolled)))
    scale = max(end for _, _, end in b) or 1.0
    for (_, start, end), (_, start_b, end_b) in zip(a, b):
        assert start == pytest.approx(start_b, abs=1e-9 * scale) and end == pytest.approx(end_b, abs=1e-9 * scale)
    return _loops(compact.items)


@given(networks(), capacities, st.sampled_from([1e8, 1e9, 1e11]))
def test_timing_a_compact_program_gives_the_times_of_the_unrolled_one(
    graph: Graph, capacity: float, bandwidth: float
) -> None:
    hw = hardware(capacity, bandwidth)
    for planner, choices in _plans(graph, hw):
        from hwsim.schedule.planner import _emit

        for index, choice in enumerate(choices):
            _emit(planner.program, planner, choice, index)
        for overlap in (False, True):
            _same_times(planner.program, hw, overlap)


def test_hairnets_programs_are_compact_and_time_as_unrolled() -> None:
    from hwsim.schedule.planner import plan_program

    hw = api.load_hardware("paper-accelerator")
    costs = graph_costs(api.load_network("hairnet"), hw)
    folded, into = fold_batchnorm(costs, hw)
    program = plan_program(folded, fuse(folded), into, hw.memory.internal.capacity, OPTIMIZED)
    records = sum(1 for _ in unrolled_records(program.items))
    assert _same_times(program, hw, overlap=True) >= 10  # repeated rows and chunks, written once each
    assert len(list(_top_records(program.items))) < records / 3


@pytest.mark.parametrize("policy", ["strict", "optimized"])
@pytest.mark.parametrize(
    ("shape", "filters"),
    [((100_000, 100_000, 3), 8), ((32, 32, 3), 1_000_000), ((16, 1_000_000, 3), 64)],
    ids=["tall", "filters", "wide"],
)
def test_huge_valid_sizes_schedule_in_a_few_records(policy: str, shape: tuple[int, int, int], filters: int) -> None:
    """Issue 11's huge sizes within the limits: repeated rows, bands and chunks are one record each, so the
    schedule's events grow with its layers, not with its rows (these took minutes and gigabytes before)."""
    graph = graph_from(
        {
            "name": "huge",
            "input": list(shape),
            "layers": [{"op": "conv", "kernel": 3, "filters": filters, "padding": "same"}, {"op": "relu"}],
        }
    )
    hw = hardware(64e6)
    try:
        run = api.estimate(graph, hw, policy)
    except CapacityError as error:  # refused in one line, naming the step and the bytes it needs
        refusal = r"(conv|relu): one row per band needs [\d,]+ B of internal memory; capacity is [\d,]+ B"
        assert re.fullmatch(refusal, str(error))
        return
    assert sum(len(step.events) for step in run.schedule.steps) < 200
    assert run.schedule.total_s >= run.summary()["lower_bound_s"] * (1 - 1e-9)


def _single_step_runs(segment: Segment, height: int) -> list[Tiling]:
    """Tilings of one step to compare placements under: band heights whole to one row, weights resident or
    in chunks, bands or filter groups outermost, or input passes, loads ahead or not."""
    channels = segment.output.layer.output_shape[2]
    chunks = (0, 1, max(1, channels // 2)) if segment.chunkable else (0,)
    tilings: list[Tiling] = [
        Tiling(rows, chunk, ahead)
        for rows in {height, max(1, height // 2), 1}
        for chunk in chunks
        for ahead in (True, False)
    ]
    if groupable(segment):
        tilings += [FilterGroups(rows, max(1, channels // 2), ahead) for rows in (height, 1) for ahead in (True, False)]
    if passable_step(segment):
        inputs = segment.costs[0].layer.input_shape[2]
        tilings += [
            InputPasses(rows, max(1, channels // 2), ahead, input_channels=max(1, inputs // 3))
            for rows in (height, 1)
            for ahead in (True, False)
        ]
    return tilings


def _planner(graph: Graph, folding: bool, menu: Menu) -> Planner:
    """A planner of ``graph`` on 1 MB: its batch norms folded and its steps fused (optimized's groups), or not."""
    costs = graph_costs(graph, hardware(1e6))
    if folding:
        costs, into = fold_batchnorm(costs, hardware(1e6))
        groups = fuse(costs)
    else:
        groups, into = paper_steps(graph, costs), {}
    return Planner(Program(costs), groups, into, 1e6, menu)


@pytest.mark.slow  # 5.5 s at the default run's 10 examples; CI runs it with its 200
@given(networks(), st.booleans())
def test_a_placement_that_holds_more_peaks_no_lower_nor_higher_by_more_than_it_holds_and_one_band_peaks_alike(
    graph: Graph, folding: bool
) -> None:
    """The planner answers a band search, and whether a segment run row by row fits beside the maps it keeps,
    from a placement counted already (:func:`holds_more`), and prices a one-band run under a placement that
    peaks alike (:func:`one_band_alike`): both as counted on the records."""
    planner = _planner(graph, folding, STRICT)
    program, groups = planner.program, planner.groups
    for start, stop in itertools.product(range(len(groups)), range(1, len(groups) + 1)):
        if not start < stop <= start + 3 or stop > start + 1 and not planner.segment(start, stop).rowwise:
            continue
        segment = planner.segment(start, stop)
        layer = segment.output.layer
        height = (layer.input_shape if accumulates(layer) else layer.output_shape)[0]
        placements = _placements(segment)
        rows = [Tiling(0, 0, True, skew) for skew in (False, True)] if segment.rowwise else []
        for tiling in rows + (_single_step_runs(segment, height) if stop == start + 1 else []):
            peaks = {p: order_peak(program, segment, p, tiling) for p in placements}
            for more, less in itertools.product(placements, repeat=2):
                if holds_more(more, less):
                    extra = sum(program.size(map_of(t)) for t in more_held(more, less))
                    assert peaks[less] <= peaks[more] <= peaks[less] + extra, (segment.names, tiling, more, less)
            if type(tiling) is Tiling and planner._one_band(start, start + 1, tiling):
                for p in placements:
                    alike = one_band_alike(p, tiling)
                    assert order_peak(program, segment, alike, tiling) == peaks[p], (segment.names, tiling, p)


@pytest.mark.slow
@given(networks(), st.booleans(), st.data())
def test_a_run_in_bands_priced_without_its_records_peaks_as_counted_on_them(
    graph: Graph, folding: bool, data: st.DataObject
) -> None:
    """The planner prices a step's run in bands without writing its records (:func:`peak`): the same peak as the
    program counts on them, for every placement, band height, loads ahead or not, weights loaded before in whole or
    in part or kept on chip across images, outputs kept, stored or summed row by row."""
    planner = _planner(graph, folding, STRICT)
    costs = tuple(replace(c, weights_resident=data.draw(st.booleans())) for c in planner.program.costs.values())
    program, groups = Program(costs), planner.groups
    for g in range(len(groups)):
        segment = planner.segment(g, g + 1)
        layer = segment.output.layer
        height = (layer.input_shape if accumulates(layer) else layer.output_shape)[0]
        weighted = [c for c in segment.costs if c.weight_bytes]
        loaded = data.draw(
            st.sampled_from(
                [
                    {},
                    {"preloaded": frozenset(c.name for c in weighted)},
                    {"preloaded_part": tuple((c.name, c.layer.output_shape[2] // 2) for c in weighted[:1])},
                ]
            )
        )
        for tiling in _single_step_runs(segment, height):
            for placement in _placements(segment):
                p = replace(placement, **loaded)
                priced = order_peak(program, segment, p, tiling)
                assert priced == _counted_on_records(program, segment, p, tiling), (segment.names, tiling, p)


def _counted_on_records(program: Program, segment: Segment, placement: Placement, tiling: Tiling) -> int:
    """A segment's peak as the program counts it on the run's records, written into a scratch program."""
    scratch = program.scratch()
    base = held_before(scratch, placement)
    scratch.resident = base
    write(scratch, segment, placement, tiling, [scratch.begin(plan) for plan in _scratch_plans(segment)])
    return max(scratch.peak, base)


def _placements(segment: Segment) -> list[Placement]:
    """Every input resident and consumed, resident and kept, or streamed; the output kept or stored."""
    inputs, sink = list(segment.inputs), segment.names[-1]
    return [
        Placement(
            resident=frozenset(t for t, level in zip(inputs, levels) if level),
            consumed=frozenset(t for t, level in zip(inputs, levels) if level == 1),
            kept=frozenset([sink]) if keep else frozenset(),
            stored=frozenset() if keep else frozenset([sink]),
        )
        for levels in itertools.product((0, 1, 2), repeat=len(inputs))
        for keep in (False, True)
    ]


@pytest.mark.slow
@given(networks(), st.booleans())
def test_segments_alike_under_placements_alike_peak_alike(graph: Graph, folding: bool) -> None:
    """The planner counts one of a network's repeated blocks: segments that read the same layers, shapes and bytes
    but for names (:func:`alike`), under placements alike (:func:`placed`), peak alike as counted on their
    records: in bands (every tiling the band searches try) and row by row, over the first driver steps or all."""
    planner = _planner(graph, folding, OPTIMIZED)
    program, groups, seen = planner.program, planner.groups, {}
    for start in range(len(groups)):
        for stop in range(start + 1, min(len(groups), start + 2) + 1):
            segment = planner.segment(start, stop)
            if stop > start + 1 and not segment.rowwise:
                break
            layer = segment.output.layer
            height = (layer.input_shape if accumulates(layer) else layer.output_shape)[0]
            runs = [(t, None) for t in _single_step_runs(segment, height)] if stop == start + 1 else []
            if segment.rowwise:
                runs += [(Tiling(0, 0, False, skew), limit) for skew in (False, True) for limit in (STEADY_STEPS, None)]
            for placement in _placements(segment):
                for tiling, limit in runs:
                    counted = order_peak(program, segment, placement, tiling, limit)
                    key = (alike(program, segment), placed(segment, placement), tiling, limit)
                    assert seen.setdefault(key, counted) == counted, (segment.names, placement, tiling, limit)


@pytest.mark.parametrize("menu", [STRICT, OPTIMIZED])
def test_hairnets_plans_count_each_repeated_block_once_and_price_it_as_counted(menu) -> None:  # type: ignore[no-untyped-def]
    """HairNet repeats its blocks: the planner counts fewer peaks than it prices, and every peak it priced is the
    peak the segment's own records reach."""
    hw = api.load_hardware("paper-accelerator")
    graph = api.load_network("hairnet")
    costs = graph_costs(graph, hw)
    if menu is OPTIMIZED:
        costs, into = fold_batchnorm(costs, hw)
        groups = fuse(costs)
    else:
        groups, into = paper_steps(graph, costs), {}
    planner, _ = plan(costs, groups, into, hw.memory.internal.capacity, menu)
    priced = planner._peaks
    assert len(planner._peaks_alike) < len(priced)
    for (start, stop, placement, tiling, limit), need in priced.items():
        assert need == order_peak(planner.program, planner.segment(start, stop), placement, tiling, limit)
