"""The loop order of a step whose weights do not fit beside a band (hwsim/schedule/order.py): filter groups
outermost when they move fewer bytes than weight chunks streamed for every band, input passes when they move
fewer than either, with every byte accounted."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_helpers import graph_from, hardware, networks, run
from test_schedule_compact import _same_times

import hwsim.schedule.optimized as optimized
import hwsim.schedule.order as order
import hwsim.schedule.planner as planner
from hwsim import api
from hwsim.cost.inference import graph_costs
from hwsim.errors import InputError
from hwsim.model.graph import Graph
from hwsim.report.trace import trace_events
from hwsim.schedule.base import ALLOC, COMPUTE, FREE, LOAD, RESIDENT, STORE, CapacityError, Schedule, Step, map_of
from hwsim.schedule.order import FilterGroups, InputPasses, passable_step, passes_reread, write
from hwsim.schedule.order import peak as order_peak
from hwsim.schedule.program import Program, finish, unrolled_records
from hwsim.schedule.segment import _PLAN, Placement
from hwsim.schedule.validate import Rule, validate
from hwsim.spec.energy import energy_table
from hwsim.spec.hardware import Precision

WIDE = {  # 74 kB of weights, 33 kB of input: the weights are the tensor not to move again
    "name": "wide",
    "input": [16, 16, 32],
    "layers": [{"op": "conv", "kernel": 3, "filters": 64, "padding": "same"}],
}
DEPTHWISE = {  # a band of one output row reads 3 input rows of 256 channels: 49 kB
    "name": "dw",
    "input": [16, 16, 256],
    "layers": [{"op": "conv", "kernel": 3, "filters": 256, "groups": 256, "padding": "same"}],
}
GROUPS_OF_16 = {
    "name": "groups-of-16",
    "input": [16, 16, 64],
    "layers": [{"op": "conv", "kernel": 3, "filters": 128, "groups": 8, "padding": "same"}],
}
GROUPED = {  # 4 convolution groups of 24 output channels, fused with what follows under optimized
    "name": "grouped",
    "input": [16, 16, 32],
    "layers": [
        {"op": "conv", "kernel": 3, "filters": 96, "groups": 4, "padding": "same"},
        {"op": "relu"},
        {"op": "maxpool", "size": 2, "stride": 2},
    ],
}


@contextmanager
def bands_only() -> Iterator[None]:
    """The planner without the filter-group order (what it chose before)."""
    real = planner.filter_groups
    planner.filter_groups = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        planner.filter_groups = real  # type: ignore[assignment]


@contextmanager
def without_passes() -> Iterator[None]:
    """The planner without the input-pass order (what it chose before)."""
    real = planner.input_passes
    planner.input_passes = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        planner.input_passes = real  # type: ignore[assignment]


@contextmanager
def planner_menus_without_in_turn() -> Iterator[None]:
    """``optimized`` without its plan that loads filter groups and input passes in turn (what it did before)."""
    real = optimized.in_turn_saves
    optimized.in_turn_saves = lambda planner: False  # type: ignore[assignment]
    try:
        yield
    finally:
        optimized.in_turn_saves = real  # type: ignore[assignment]


def _conv(schedule: Schedule) -> Step:
    return next(s for s in schedule.steps if s.layers[0] == "conv")


def _groups(step: Step) -> int:
    return math.ceil(step.output_shape[2] / step.chunk_channels)


@pytest.mark.parametrize("policy", ["strict", "optimized"])
def test_weights_larger_than_the_input_are_loaded_once_and_the_input_once_per_filter_group(policy: str) -> None:
    """Of the two orders that hold a band of every input channel (input passes move fewer bytes still: below)."""
    graph, hw = graph_from(WIDE), hardware(12_000)
    with without_passes():
        schedule, violations = run(graph, hw, policy)
        with bands_only():
            before, _ = run(graph, hw, policy)
    assert violations == []
    step = _conv(schedule)
    assert "outermost" in step.note and _groups(step) > 1
    assert step.bytes_moved == step.weight_bytes + _groups(step) * step.input_bytes + step.output_bytes
    old = _conv(before)
    assert "chunks" in old.note
    bands = math.ceil(old.output_shape[0] / old.tile_rows)
    assert old.bytes_moved == bands * old.weight_bytes + old.input_bytes + old.output_bytes > step.bytes_moved


@pytest.mark.parametrize("policy", ["strict", "optimized"])
def test_a_depthwise_layer_no_band_of_which_fits_runs_in_filter_groups_moving_every_tensor_once(policy: str) -> None:
    """Its groups read their own input channels: a band of a group fits where a band of every channel does
    not, and the input is read once however many groups there are."""
    graph, hw = graph_from(DEPTHWISE), hardware(20_000)
    with bands_only(), pytest.raises(CapacityError):
        run(graph, hw, policy)
    schedule, violations = run(graph, hw, policy)
    assert violations == []
    step = _conv(schedule)
    assert "filter groups" in step.note and _groups(step) > 1
    assert step.bytes_moved == step.weight_bytes + step.input_bytes + step.output_bytes


WEIGHTLESS = {  # a band of one pooled row reads 3 rows of 256 channels: 49 kB, and the skip 16 kB more beside it
    "name": "weightless",
    "input": [16, 16, 256],
    "layers": [
        {"op": "maxpool", "size": 3, "stride": 1, "padding": 1, "name": "pool"},
        {"op": "relu", "name": "r"},
        {"op": "add", "inputs": ["r", "input"], "name": "sum"},
        {"op": "global_avg_pool", "name": "gap"},
    ],
}


@pytest.mark.parametrize("policy", ["strict", "optimized"])
def test_steps_without_weights_no_band_of_which_fits_run_in_groups_of_their_channels(policy: str) -> None:
    """A pooling layer, an activation, an add or a global pool reads only its own channels: once refused where a
    band of every channel did not fit (ResNet-18 at 64 kB, on its maxpool), it now runs in groups of channels,
    every map moving once."""
    graph, hw = graph_from(WEIGHTLESS), hardware(16_000)
    schedule, violations = run(graph, hw, policy)
    assert violations == []
    grouped = [s for s in schedule.steps if "channels outermost, each loading" in s.note]
    assert grouped and all(_groups(s) > 1 for s in grouped)
    assert sum(s.bytes_moved for s in schedule.steps) == sum(s.input_bytes + s.output_bytes for s in schedule.steps)
    real = order.groupable
    order.groupable = lambda segment: bool(segment.weight_bytes) and real(segment)  # type: ignore[assignment]
    try:
        with pytest.raises(CapacityError):  # what it did before
            run(graph, hw, policy)
    finally:
        order.groupable = real  # type: ignore[assignment]


def test_a_grouped_convolutions_filter_groups_hold_whole_convolution_groups_so_the_input_moves_once() -> None:
    schedule, violations = run(graph_from(GROUPED), hardware(24_000), "optimized")
    assert violations == []
    step = _conv(schedule)
    assert "filter groups" in step.note and step.chunk_channels % 24 == 0
    assert step.bytes_moved == step.weight_bytes + step.input_bytes + step.output_bytes


def test_narrow_filter_groups_of_a_grouped_convolution_read_its_groups_inputs_again_and_validate() -> None:
    """Filter groups narrower than a convolution group (a divisor of it) read that group's inputs once each."""
    schedule, violations = run(graph_from(GROUPED), hardware(12_000), "optimized")
    assert violations == []
    step = _conv(schedule)
    assert "filter groups" in step.note and 24 % step.chunk_channels == 0 and step.chunk_channels < 24
    assert step.bytes_moved == step.weight_bytes + 24 // step.chunk_channels * step.input_bytes + step.output_bytes


@pytest.mark.parametrize(
    ("spec", "capacity", "menu", "alike"),
    [
        (WIDE, 12_000, planner.STRICT, True),  # in input passes
        (GROUPS_OF_16, 20_000, planner.OPTIMIZED, True),
        (GROUPED, 12_000, planner.OPTIMIZED, False),  # groups narrower than a convolution group's: not alike
    ],
    ids=["strict", "optimized-ahead", "optimized-fused"],
)
def test_filter_groups_and_input_passes_are_priced_at_their_emitted_peak_written_compactly_and_time_as_unrolled(
    spec: dict, capacity: float, menu: planner.Menu, alike: bool
) -> None:
    graph, hw = graph_from(spec), hardware(capacity)
    costs = graph_costs(graph, hw)
    groups = [(c,) for c in costs] if menu is planner.STRICT else planner.fuse(costs)
    found, choices = planner.plan(costs, groups, {}, capacity, menu)
    (choice,) = [c for c in choices if isinstance(c.tiling, (FilterGroups, InputPasses))]
    program = planner.program_of(found, choices)
    assert program.peak == found.peak(choice.start, choice.stop, choice.placement, choice.tiling)
    segment = found.segment(choice.start, choice.stop)
    written = []
    for compact in (True, False):
        scratch = found.program.scratch(recording=True)
        write(
            scratch, segment, choice.placement, choice.tiling, [scratch.begin(_PLAN) for _ in segment.groups], compact
        )
        written.append(scratch)
    assert list(unrolled_records(written[0].items)) == list(unrolled_records(written[1].items))
    unrolled = len(list(unrolled_records(written[0].items)))
    assert (len(written[0].items) < unrolled / 5) is alike  # alike groups (and bands) written once
    for overlap in (False, True):
        _same_times(program, hw, overlap)


def test_the_energy_walk_and_the_trace_count_every_reload_of_the_input() -> None:
    run_ = api.estimate(graph_from(WIDE), hardware(12_000), "strict")
    assert "filter groups" in _conv(run_.schedule).note
    table = energy_table(run_.hardware, run_.schedule.precision)
    assert run_.energy.external_j == pytest.approx(run_.schedule.bytes_moved * table.external_j_per_byte, rel=1e-12)
    bus = [e for e in trace_events(run_.schedule)["traceEvents"] if e.get("cat") in (LOAD.value, STORE.value)]
    assert sum(e["args"]["bytes"] for e in bus) == run_.schedule.bytes_moved


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(networks(), st.sampled_from([2_000, 8_000, 32_000]))
def test_choosing_the_order_never_moves_more_bytes_than_bands_alone(graph: Graph, capacity: float) -> None:
    hw = hardware(capacity)
    for policy in ("strict", "optimized"):
        try:
            with bands_only():
                before, _ = run(graph, hw, policy)
        except CapacityError:
            continue
        after, violations = run(graph, hw, policy)
        assert violations == []
        assert after.bytes_moved <= before.bytes_moved


PASSED_OVER = {  # found by the property above (a hypothesis run): two branches added up, then a ceil-mode pool
    "name": "passed-over",
    "input": [24, 24, 1],
    "layers": [
        {"op": "relu", "name": "fork"},
        {"op": "conv", "kernel": 1, "filters": 8, "bias": False, "name": "b1"},
        {"op": "conv", "kernel": 1, "filters": 8, "bias": False, "name": "b2r", "inputs": ["fork"]},
        {"op": "relu", "name": "b2rr"},
        {"op": "conv", "kernel": 3, "filters": 8, "bias": False, "name": "b2"},
        {"op": "add", "inputs": ["b1", "b2"], "name": "add"},
        {"op": "maxpool", "size": 3, "stride": 3, "padding": 1, "ceil_mode": True, "name": "mp"},
        {"op": "global_avg_pool", "name": "gap"},
        {"op": "dense", "units": 2, "name": "fc"},
        {"op": "softmax", "name": "out"},
    ],
}


def test_a_segment_that_loads_in_turn_more_cheaply_makes_the_in_turn_plan_even_if_the_plan_passed_it_over() -> None:
    """At 8 kB the plan priced b2+add+mp, its output stored, in filter groups loading ahead (reloading more than
    loading in turn would), and so chose to keep mp resident instead (166 kB); loading in turn, it stores mp and the
    plan moves 100 kB. Whether to make the plan that loads in turn was asked of the chosen segments only: optimized
    then fell back to strict's program, with more bytes and slower than without the loop orders at all."""
    graph, hw = graph_from(PASSED_OVER), hardware(8_000)
    with bands_only():
        before, _ = run(graph, hw, "optimized")
    after, violations = run(graph, hw, "optimized")
    assert violations == []
    assert after.bytes_moved <= before.bytes_moved and after.total_s <= before.total_s


BRANCHES = {  # two branches added up: at 2 kB, b2+add fits in filter groups with loads ahead only if they are narrow
    "name": "branches",
    "input": [8, 8, 1],
    "layers": [
        {"op": "relu", "name": "fork"},
        {"op": "conv", "name": "b1", "kernel": 1, "filters": 8, "bias": False, "inputs": ["fork"]},
        {"op": "conv", "name": "b2_reduce", "kernel": 1, "filters": 8, "bias": False, "inputs": ["fork"]},
        {"op": "relu", "name": "b2_reduce_relu"},
        {"op": "conv", "name": "b2", "kernel": 3, "filters": 8, "padding": "same", "bias": False},
        {"op": "add", "name": "add", "inputs": ["b1", "b2"]},
    ],
}


def test_filter_groups_with_loads_ahead_do_not_keep_optimized_from_a_plan_that_loads_in_turn() -> None:
    """Narrow groups that fit with double buffers read the input again 8 times; wider ones loading in turn, 3:
    optimized plans both and keeps the faster (found by the bytes property above at 300 examples, seed 7: the
    orders made optimized move 23,104 B where bands alone moved 19,776 B, and take longer)."""
    graph, hw = graph_from(BRANCHES), hardware(2_000)
    with bands_only():
        before, _ = run(graph, hw, "optimized")
    with planner_menus_without_in_turn():
        ahead_only, _ = run(graph, hw, "optimized")
    after, violations = run(graph, hw, "optimized")
    assert violations == []
    assert ahead_only.bytes_moved > before.bytes_moved and ahead_only.total_s > before.total_s  # what it fixes
    assert after.bytes_moved < before.bytes_moved and after.total_s < before.total_s
    assert any("filter groups" in step.note for step in after.steps)


DEEP = {  # 590 kB of weights, 100 kB of input, 14 rows of 128 channels: VGG-16's conv4_2 in small
    "name": "deep",
    "input": [14, 14, 128],
    "layers": [{"op": "conv", "kernel": 3, "filters": 128, "padding": "same"}, {"op": "relu"}],
}


def _input_rows_loaded(step: Step) -> int:
    """Rows x channels of the input a step loads (every image), in input cells."""
    return sum(
        (e.region.rows[1] - e.region.rows[0]) * (e.region.channels[1] - e.region.channels[0]) * e.instances
        for e in step.events
        if e.action is LOAD and not e.region.tensor.weights
    )


@pytest.mark.parametrize("policy", ["strict", "optimized"])
def test_a_layer_whose_weights_and_maps_both_exceed_the_room_runs_in_input_passes_loading_its_weights_once_per_band(
    policy: str,
) -> None:
    """Neither a band of all 128 input channels beside a chunk of weights nor a filter group beside such a band
    comes close: groups of filters whose band of partial sums waits while the input channels pass by load the
    weights once per band and the input once per group (its halo rows once more per band)."""
    graph, hw = graph_from(DEEP), hardware(40_000)
    schedule, violations = run(graph, hw, policy)
    assert violations == []
    step = _conv(schedule)
    assert "passes over" in step.note
    groups = _groups(step)
    rows = step.tile_rows or 14  # one band: no tile rows reported
    bands = math.ceil(14 / rows)
    halo = sum(min(14, (b + 1) * rows + 1) - max(0, b * rows - 1) for b in range(bands))
    cells = _input_rows_loaded(step)
    assert cells == groups * halo * 128
    assert step.bytes_moved == bands * step.weight_bytes + groups * halo * step.input_bytes // 14 + step.output_bytes
    with without_passes():
        before, _ = run(graph, hw, policy)
    assert _conv(before).bytes_moved > 2 * step.bytes_moved


def test_the_validator_finds_a_pass_left_out_and_a_pass_whose_weights_were_not_loaded() -> None:
    """What the validator checks of passes can fail: an output cell whose last input channels are never added is
    never computed, and a pass whose weights were not loaded reads what is not resident."""
    graph, hw = graph_from(DEEP), hardware(40_000)
    schedule, violations = run(graph, hw, "strict")
    assert violations == []
    step = _conv(schedule)
    last_pass = [e for e in step.events if e.part is not None][-1]
    weights = next(e for e in step.events if e.action is LOAD and e.region.tensor.by_input)
    for dropped, rule, words in ((last_pass, Rule.ACCOUNTING, "never computed"), (weights, Rule.PLACEMENT, "reads")):
        events = tuple(e for e in step.events if e is not dropped)
        steps = tuple(replace(s, events=events) if s is step else s for s in schedule.steps)
        found = validate(replace(schedule, steps=steps), graph_costs(graph, hw), hw)
        assert any(v.rule is rule and words in v.message for v in found), found


GROWING = {  # two convs of a dense block: at 3 kB and a batch of 3, two images run in passes, the third whole
    "name": "growing",
    "input": [8, 8, 8],
    "layers": [
        {"op": "conv", "name": "grow0", "kernel": 3, "filters": 2, "padding": "same", "bias": False},
        {"op": "relu", "name": "grow0_relu"},
        {"op": "concat", "name": "cat0", "inputs": ["input", "grow0_relu"]},
        {"op": "conv", "name": "grow1", "kernel": 3, "filters": 2, "padding": "same", "bias": False},
        {"op": "relu", "name": "grow1_relu"},
        {"op": "concat", "name": "cat1", "inputs": ["cat0", "grow1_relu"]},
    ],
}


def test_sub_batches_that_run_a_layer_in_passes_and_whole_validate() -> None:
    """Each sub-batch is planned alone: one may run a layer in passes and the next compute it whole, each on its
    own images (the validator keeps the passes' sums per image, row and channel)."""
    schedule, violations = run(graph_from(GROWING), hardware(3_000), "strict", batch=3)
    assert violations == []
    computes = [e for e, step in schedule.events() if step == "grow0" and e.action is COMPUTE]
    assert {e.images for e in computes if e.part is not None} == {(0, 2)}
    assert {e.images for e in computes if e.part is None} == {(2, 3)}


def _a_conv(draw: st.DrawFn) -> dict:
    return {
        "name": "one-conv",
        "input": [draw(st.integers(3, 12)), draw(st.integers(3, 12)), draw(st.integers(2, 24))],
        "layers": [
            {
                "op": "conv",
                "kernel": draw(st.sampled_from([1, 3])),
                "stride": draw(st.sampled_from([1, 2])),
                "filters": draw(st.integers(2, 24)),
                "padding": "same",
                "bias": draw(st.booleans()),
            },
            *([{"op": "relu"}] if draw(st.booleans()) else []),
        ],
    }


@st.composite
def _passes(draw: st.DrawFn) -> tuple[dict, InputPasses, bool, bool]:
    spec = _a_conv(draw)
    height = -(-spec["input"][0] // spec["layers"][0]["stride"])
    tiling = InputPasses(
        draw(st.integers(1, height)),
        draw(st.integers(1, spec["layers"][0]["filters"])),
        draw(st.booleans()),
        input_channels=draw(st.integers(1, spec["input"][2])),
    )
    return spec, tiling, draw(st.booleans()), draw(st.booleans())


@settings(max_examples=60, deadline=None)
@given(_passes())
def test_input_passes_count_the_peak_and_bytes_their_records_hold_and_move_and_validate(
    drawn: tuple[dict, InputPasses, bool, bool],
) -> None:
    """Any band, group and pass width, loads ahead or not, the input streamed or resident, the output stored or
    kept: the peak the planner counts is the most its unrolled records hold, the records written compactly unroll
    to those written one by one, their loads are :func:`passes_reread` more than every tensor once, and the
    validator, replaying them, finds every byte accounted and every compute's inputs resident."""
    spec, tiling, resident, keep = drawn
    graph = graph_from(spec)
    hw = hardware(1e9)
    costs = graph_costs(graph, hw)
    steps = [(c,) for c in costs] if len(costs) == 1 else [tuple(costs)]
    found = planner.Planner(Program(costs), steps, {}, 1e9, planner.STRICT)
    segment = found.segment(0, 1)
    assert passable_step(segment)
    sink = segment.names[-1]
    placement = Placement(
        resident=frozenset({"input"}) if resident else frozenset(),
        consumed=frozenset({"input"}) if resident else frozenset(),
        kept=frozenset({sink}) if keep else frozenset(),
        stored=frozenset() if keep else frozenset({sink}),
    )
    plans = planner.describe(segment, planner.Choice(0, 1, placement, tiling, frozenset(), (), 0), 0)
    written = []
    for compact in (True, False):
        scratch = found.program.scratch(recording=True)
        steps = [scratch.begin(plan) for plan in plans]
        if resident:
            scratch.occupy(steps[0], RESIDENT, scratch.full(map_of("input")))
        write(scratch, segment, placement, tiling, steps, compact)
        written.append(scratch)
    records = list(unrolled_records(written[0].items))
    assert records == list(unrolled_records(written[1].items))
    held, most = 0, 0
    for r in records:
        held += r.bytes if r.action in (LOAD, ALLOC, RESIDENT) else -r.bytes if r.action is FREE else 0
        most = max(most, held)
    assert order_peak(found.program, segment, placement, tiling) == most
    once = sum(c.weight_bytes for c in costs) + (0 if resident else costs[0].input_bytes[0])
    loaded = sum(r.bytes for r in records if r.action is LOAD)
    assert loaded == once + passes_reread(found.program, segment, placement, tiling)
    program = written[0]
    if keep:  # the kept output stored at the end, so that the program ends empty and every cell is checked
        program.store(len(program.plans) - 1, program.full(map_of(sink)))
        program.free(len(program.plans) - 1, program.full(map_of(sink)))
    finished = tuple(finish(program, hw, False))
    schedule = Schedule("strict", graph.name, hw.name, "exact", 1, hw.precision.value, finished)
    assert [str(v) for v in validate(schedule, costs, hw)] == []


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(networks(), st.sampled_from([2_000, 8_000, 32_000]))
def test_choosing_input_passes_never_moves_more_bytes_than_without_them(graph: Graph, capacity: float) -> None:
    hw = hardware(capacity)
    try:
        with without_passes():
            before, _ = run(graph, hw, "strict")
    except CapacityError:
        return
    after, violations = run(graph, hw, "strict")
    assert violations == []
    assert after.bytes_moved <= before.bytes_moved


@st.composite
def _one_layer_deep(draw: st.DrawFn) -> dict:
    """A conv of any kernel from 1 to 7, stride, dilation and padding (maybe with a batch norm, an activation and a
    pool behind it), or a dense layer: shapes the orders were not written against."""
    channels = draw(st.integers(1, 48))
    if draw(st.integers(0, 4)) == 0:
        return {
            "name": "dense",
            "input": [1, 1, channels],
            "layers": [{"op": "dense", "units": draw(st.integers(1, 64))}],
        }
    kernel = draw(st.sampled_from([1, 2, 3, 5, 7]))
    conv = {
        "op": "conv",
        "kernel": kernel,
        "filters": draw(st.integers(1, 64)),
        "stride": draw(st.sampled_from([1, 2, 3])),
        "dilation": draw(st.sampled_from([1, 2])) if kernel > 1 else 1,
        "padding": draw(st.sampled_from(["same", "valid", 1, 3])),
        "bias": draw(st.booleans()),
    }
    behind = draw(st.lists(st.sampled_from([{"op": "batchnorm"}, {"op": "relu"}, {"op": "maxpool", "size": 2}])))
    size = draw(st.integers(7, 20))
    return {"name": "deep", "input": [size, draw(st.integers(1, 20)), channels], "layers": [conv, *behind[:2]]}


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(
    _one_layer_deep(),
    st.sampled_from(["strict", "optimized"]),
    st.sampled_from([1, 3]),
    st.booleans(),
    st.sampled_from([None, 0.7]),
)
def test_at_the_least_capacity_that_fits_and_just_above_every_order_validates(
    spec: dict, policy: str, batch: int, steady: bool, zeros: float | None
) -> None:
    """Found by bisection over the capacity: the least that fits (where the orders' groups, bands and passes are
    their narrowest), one byte more, and 5 % more; with batches, weights kept on chip and maps coded on the link.
    A larger capacity never refuses what a smaller one ran, and the validator finds every schedule sound."""
    try:
        graph = graph_from(spec)
    except InputError:
        return  # a window wider than its padded input

    def attempt(capacity: int) -> api.Estimate | None:
        hw = hardware(capacity).model_copy(update={"precision": Precision.INT16})
        coded = hw.memory.external.model_copy(update={"map_coding": "eyeriss-rlc"})
        hw = hw.model_copy(update={"memory": hw.memory.model_copy(update={"external": coded})})
        try:
            return api.estimate(graph, hw, policy, batch=batch, steady_state=steady, map_zeros=zeros)
        except CapacityError:
            return None

    lo, hi = 0, 1 << 24  # lo does not fit (or is 0), hi does
    assert attempt(hi) is not None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if attempt(mid) is not None else (mid, hi)
    for capacity in (hi, hi + 1, hi * 21 // 20 + 1):
        found = attempt(capacity)
        assert found is not None, capacity
        assert validate(found.schedule, found.scheduled_costs, found.hardware) == [], capacity
