"""Every policy on every bundled network: validated, bounded, and HairNet's numbers against the issue's targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from schedule_helpers import hardware

from hwsim import api
from hwsim.cli import main
from hwsim.cost.bound import lower_bound
from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import graph_costs
from hwsim.report.trace import trace_events
from hwsim.schedule import POLICIES, scheduled_costs
from hwsim.schedule.base import Action
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.planner import OPTIMIZED, STRICT, fuse, least_moved, plan, plan_program, plans_shared
from hwsim.schedule.program import timing
from hwsim.schedule.validate import Rule, validate
from hwsim.studies import sweep

NETWORKS = sorted(p.stem for p in (Path(__file__).parents[1] / "networks").glob("*.yaml"))


def _network_policy_cases() -> list:
    return [
        pytest.param(network, policy, id=f"{policy}-{network}") for network in NETWORKS for policy in sorted(POLICIES)
    ]


@pytest.fixture(scope="module")
def accelerator():
    return api.load_hardware("paper-accelerator")


@pytest.fixture(scope="module")
def hairnet() -> dict[str, api.Estimate]:
    graph, hw = api.load_network("hairnet"), api.load_hardware("paper-accelerator")
    return {p: api.estimate(graph, hw, p) for p in POLICIES}


@pytest.mark.parametrize(("network", "policy"), _network_policy_cases())
def test_every_policy_passes_the_validator_on_every_bundled_network(network: str, policy: str, accelerator) -> None:
    estimate = api.estimate(api.load_network(network), accelerator, policy)
    violations = validate(
        estimate.schedule, scheduled_costs(policy, estimate.costs, accelerator, estimate.schedule.steps), accelerator
    )
    if policy == "paper":  # erratum 6: the paper's placement ignores co-residency, and nothing else is wrong
        assert {v.rule for v in violations} <= {Rule.CAPACITY}
    else:
        assert violations == [], [str(v) for v in violations[:3]]
        assert max(s.peak_internal_bytes for s in estimate.schedule.steps) <= accelerator.memory.internal.capacity
    assert estimate.summary()["lower_bound_s"] <= estimate.schedule.total_s or policy == "paper"


def test_the_validator_catches_the_papers_co_residency_overflow(hairnet) -> None:
    e = hairnet["paper"]
    overflowing = {v.step for v in validate(e.schedule, e.costs, e.hardware) if v.rule is Rule.CAPACITY}
    # stage4.block2.pw alone: 401 KB in + 401 KB out + 1.05 MB of weights > 1 MB
    assert "stage4.block2.pw" in overflowing
    assert all(s.name in overflowing for s in e.schedule.steps if s.peak_internal_bytes > 1e6)


def test_hairnet_lower_bound_is_the_compulsory_traffic_design_md_quotes(hairnet) -> None:
    bound = lower_bound(hairnet["paper"].costs, hairnet["paper"].hardware)
    assert bound.limit == "bus"
    assert bound.total_s == pytest.approx(10.3e-3, rel=0.01)  # DESIGN.md: weights ~9.7 MB plus the image
    # the matrix unit alone needs ~1.2 ms (ops / 1 TFLOPS), well under the traffic
    assert bound.compute_s["matrix"] == pytest.approx(1.2e-3, rel=0.05)


def test_policies_improve_in_order_on_hairnet(hairnet) -> None:
    paper, strict, optimized = (hairnet[p].schedule.total_s for p in ("paper", "strict", "optimized"))
    assert optimized < strict and optimized < paper / 5
    # strict is slower than the paper: honest capacity costs traffic the paper's rule never paid
    assert strict > paper


def test_optimized_need_not_plan_strict_on_hairnet(hairnet) -> None:
    # what strict must move at least (its maps over 1 MB stored and loaded back) already takes the bus longer
    # than optimized's whole run, and strict's plan moves at least that
    e = hairnet["strict"]
    groups = paper_steps(e.graph, e.costs)
    least = least_moved(e.costs, groups, e.hardware.memory.internal.capacity)
    assert least <= e.schedule.bytes_moved
    assert least / e.hardware.memory.external.bandwidth >= hairnet["optimized"].schedule.total_s


def test_optimized_is_within_1_25x_of_the_bound_on_hairnet(hairnet) -> None:
    summary = hairnet["optimized"].summary()
    assert summary["efficiency"] >= 1 / 1.25
    assert hairnet["optimized"].schedule.bytes_moved < 12e6  # compulsory 10.3 MB, and the pool3 and pool4 maps spilled
    assert summary["total_time_s"] < 0.177 / 10


def test_optimized_keeps_mobilenet_v1s_maps_and_loads_part_of_the_next_weights_during_a_segment(accelerator) -> None:
    """Issue 12's MobileNet v1 target: a segment that reads a kept map for the last time frees its rows as it
    keeps its own output, so no map is spilled (only the compulsory bytes cross the bus); sep6.pw's weights,
    which do not fit whole beside the segment before, load in part during it."""
    estimate = api.estimate(api.load_network("mobilenet-v1"), accelerator, "optimized")
    summary = estimate.summary()
    compulsory = summary["lower_bound_s"] * accelerator.memory.external.bandwidth
    assert estimate.schedule.bytes_moved == pytest.approx(compulsory, rel=1e-9)
    assert any("output channels loaded during the step before" in s.note for s in estimate.schedule.steps)
    costs = scheduled_costs("optimized", estimate.costs, accelerator, estimate.schedule.steps)
    assert validate(estimate.schedule, costs, accelerator) == []
    assert summary["total_time_s"] <= 0.0177


def test_optimized_never_holds_more_than_capacity_at_any_instant_of_its_timeline(hairnet) -> None:
    # overlap lets an allocation start before earlier frees; the simulation must still keep the
    # resident bytes within capacity in time order, not only in program order (what validate checks)
    events = [e for e, _ in hairnet["optimized"].schedule.events()]
    change = {Action.LOAD: 1, Action.ALLOC: 1, Action.FREE: -1}
    # at equal times frees (-1) come first; the times of repeated work (start + k periods) carry rounding,
    # so "equal" is within a picosecond
    timeline = sorted(
        (e.end_s - 1e-12 if e.action is Action.FREE else e.start_s, change[e.action], e.bytes)
        for e in events
        if e.action in change
    )
    resident = peak = 0
    for _, sign, size in timeline:
        resident += sign * size
        peak = max(peak, resident)
    assert resident == 0
    assert peak <= hairnet["optimized"].hardware.memory.internal.capacity
    assert any(
        a.start_s < f.end_s for a, f in zip(events[1:], events) if a.action is Action.ALLOC and f.action is Action.FREE
    )


def test_optimized_report_says_what_was_folded_fused_and_tiled(hairnet) -> None:
    steps = {s.name: s for s in hairnet["optimized"].schedule.steps}
    stem = steps["stem+stem_relu+pool1"]
    assert "stem_bn" in stem.layers and "folded stem_bn" in stem.note and "fused conv+relu+maxpool" in stem.note
    assert stem.tile_rows > 0  # 224x224x32 does not fit 1 MB: it streams in bands
    assert any(s.chunk_channels for s in steps.values())  # stage 5's 4 MB of weights stream in chunks
    assert all(s.note for s in steps.values())


@pytest.mark.slow
def test_batch_loads_weights_once_per_sub_batch(accelerator) -> None:
    graph = api.load_network("hairnet")
    four = api.estimate(graph, accelerator, "optimized", batch=4)
    size = four.schedule.sub_batch
    sub = api.estimate(graph, accelerator, "optimized", batch=size)

    def weight_bytes(e: api.Estimate) -> int:
        return sum(t.bytes for s in e.schedule.steps for t in s.transfers if t.tensor.weights)

    # on 1 MB four images' maps spill more than their shared weights save: the batch runs in
    # sub-batches (docs/schedulers.md), each loading the weights as a batch of its size does
    assert size < 4
    assert weight_bytes(four) == 4 // size * weight_bytes(sub)
    assert four.summary()["images_per_s"] == pytest.approx(4 / four.schedule.total_s)


@pytest.mark.slow
def test_batching_pays_when_the_batch_fits_internal_memory() -> None:
    # on 1 MB, four images' maps spill more than the shared weights save; on 64 MB they do not
    graph, big = api.load_network("hairnet"), hardware(64e6)
    one, four = (api.estimate(graph, big, "optimized", batch=b).summary() for b in (1, 4))
    assert four["latency_per_image_s"] < one["latency_per_image_s"]
    assert four["latency_per_image_s"] == pytest.approx(four["total_time_s"] / 4)


def test_lower_precision_moves_fewer_bytes(accelerator) -> None:
    graph = api.load_network("hairnet")
    fp32, int8 = (api.estimate(graph, accelerator, "optimized", precision=p) for p in ("fp32", "int8"))
    assert int8.summary()["lower_bound_s"] == pytest.approx(fp32.summary()["lower_bound_s"] / 4, rel=0.01)
    assert int8.schedule.bytes_moved < fp32.schedule.bytes_moved / 3


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_trace_has_a_track_per_unit_and_the_bus_without_overlap(hairnet, policy: str) -> None:
    document = json.loads(json.dumps(trace_events(hairnet[policy].schedule)))
    names = {e["tid"]: e["args"]["name"] for e in document["traceEvents"] if e.get("name") == "thread_name"}
    assert set(names.values()) == {"bus", "matrix", "vector"}
    spans = [e for e in document["traceEvents"] if e["ph"] == "X"]
    for tid in names:
        track = sorted((e["ts"], e["ts"] + e["dur"]) for e in spans if e["tid"] == tid)
        assert track, names[tid]
        assert all(end <= next_start + 1e-6 for (_, end), (next_start, _) in zip(track, track[1:]))
    last = max(e["ts"] + e["dur"] for e in spans)
    assert last == pytest.approx(hairnet[policy].schedule.total_s * 1e6, rel=1e-6)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_the_energy_counter_climbs_to_the_runs_energy_by_the_end_of_the_run(hairnet, policy: str) -> None:
    estimate = hairnet[policy]
    counters = [e for e in trace_events(estimate.schedule, estimate.step_energy)["traceEvents"] if e["ph"] == "C"]
    assert len(counters) == len(estimate.schedule.steps) + 1 and counters[0]["args"]["external"] == 0
    times = [c["ts"] for c in counters]
    assert times == sorted(times) and times[-1] == pytest.approx(estimate.schedule.total_s * 1e6, rel=1e-9)
    for part in ("compute", "internal", "external", "static"):
        values = [c["args"][part] for c in counters]
        assert all(a <= b for a, b in zip(values, values[1:])), part  # energy is only ever spent
    total_mj = sum(counters[-1]["args"].values())
    assert total_mj == pytest.approx(estimate.summary()["energy_j"] * 1e3, rel=1e-9)


def test_optimized_overlaps_the_bus_with_compute(hairnet) -> None:
    s = hairnet["optimized"].schedule
    assert s.total_s < s.transfer_s + s.compute_s
    loads = [e for step in s.steps for e in step.events if e.action is Action.LOAD]
    computes = [e for step in s.steps for e in step.events if e.action is Action.COMPUTE]
    assert any(layer.start_s < c.end_s and c.start_s < layer.end_s for layer, c in zip(loads[1:200], computes[:200]))


def test_cli_writes_a_trace_and_the_json_summary_has_the_bound(runner, tmp_path) -> None:
    trace, report = tmp_path / "t.json", tmp_path / "r.json"
    result = runner.invoke(main, ["estimate", "--policy", "optimized", "--trace", str(trace), "-o", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(trace.read_text())["traceEvents"]
    summary = json.loads(report.read_text())["summary"]
    assert 0 < summary["efficiency"] <= 1
    assert summary["lower_bound_s"] == pytest.approx(summary["efficiency"] * summary["total_time_s"])


def test_a_kept_output_of_chunked_weights_counts_the_earlier_chunks_beside_the_last() -> None:
    # conv (chunked weights) + relu + 2x2 pool, output kept for the next conv: the last chunk's
    # conv and relu rows sit beside the pool output of every chunk before it (was 2,256 B > 2,000 B)
    from schedule_helpers import graph_from, run

    graph = graph_from(
        {
            "name": "chunks",
            "input": [8, 8, 1],
            "layers": [
                {"op": "conv", "kernel": 3, "filters": 16, "padding": "same", "bias": False},
                {"op": "batchnorm"},
                {"op": "relu"},
                {"op": "maxpool", "size": 2, "padding": "same"},
                {"op": "conv", "kernel": 1, "filters": 4, "padding": "same", "bias": False, "name": "conv_2"},
            ],
        }
    )
    schedule, violations = run(graph, hardware(2_000, 1e8), "optimized")
    assert violations == [], [str(v) for v in violations[:3]]


@pytest.mark.parametrize("enabled", [True, False])
def test_scheduling_leaves_the_garbage_collector_as_it_found_it(enabled: bool) -> None:
    import gc

    graph = api.load_network("hairnet-cifar10-small")
    hw = api.load_hardware("paper-accelerator")
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        api.estimate(graph, hw, "optimized")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


@pytest.mark.slow  # HairNet's sweep points scheduled twice (2 s)
def test_schedules_that_share_plans_are_the_schedules_made_alone() -> None:
    # a sweep's points that differ only in bandwidth share one plan per policy and its programs, and time them
    # (timing keeps the loop iterations it simulated: a bandwidth timed again after others, the slowest after the
    # fastest, reads them back)
    graph, hw = api.load_network("hairnet"), api.load_hardware("paper-accelerator")
    bandwidths = (0.2e9, 20e9, 2e9, 0.2e9, 100e9)
    profiles = [sweep.variant(hw, {"memory.external.bandwidth": bandwidth}) for bandwidth in bandwidths]
    runs = [(profile, policy) for profile in profiles for policy in ("strict", "optimized")]
    alone_runs = [api.estimate(graph, profile, policy) for profile, policy in runs]
    alone = [run.schedule for run in alone_runs]
    costs = graph_costs(graph, hw)
    with plans_shared():
        shared_runs = [api.estimate(graph, profile, policy) for profile, policy in runs]
        shared = [run.schedule for run in shared_runs]
        assert [run.summary() for run in shared_runs] == [run.summary() for run in alone_runs]
        first = plan(costs, paper_steps(graph, costs), {}, hw.memory.internal.capacity, STRICT)
        assert plan(costs, paper_steps(graph, costs), {}, hw.memory.internal.capacity, STRICT) is first
    assert shared == alone
    assert plan(costs, paper_steps(graph, costs), {}, hw.memory.internal.capacity, STRICT) is not first


def _two_residual_blocks(side: int, channels: int) -> dict:
    conv = {"op": "conv", "kernel": 3, "filters": channels, "padding": "same"}
    block = [conv, {"op": "batchnorm"}, {"op": "relu"}, conv, {"op": "batchnorm"}]
    return {
        "name": "two-blocks",
        "input": [side, side, channels],
        "layers": [
            {**conv, "name": "stem"},
            {"op": "relu", "name": "skip0"},
            *block,
            {"op": "add", "inputs": ["batchnorm2", "skip0"]},
            {"op": "relu", "name": "skip1"},
            *block,
            {"op": "add", "inputs": ["batchnorm4", "skip1"]},
            {"op": "relu"},
        ],
    }


@pytest.mark.parametrize(
    ("side", "channels", "bandwidth", "matrix"),
    [(16, 32, 10e9, 1e12), (16, 32, 1e9, 1e11), (8, 16, 100e9, 1e12), (28, 128, 10e9, 1e12)],
)
def test_two_residual_blocks_that_fit_on_chip_run_within_1_3x_of_the_bound(
    side: int, channels: int, bandwidth: float, matrix: float
) -> None:
    # issue 12's target, where the bus and the matrix unit take about as long: streaming both blocks row by row
    # (the fewest segments) needs every weight before the last conv's first row and ran at 1.35x to 1.73x; one
    # step a segment loads the next step's weights while one computes
    from schedule_helpers import graph_from, run

    graph, hw = graph_from(_two_residual_blocks(side, channels)), hardware(16e6, bandwidth, matrix)
    schedule, violations = run(graph, hw, "optimized")
    assert violations == [], [str(v) for v in violations[:3]]
    bound = lower_bound(graph_costs(graph, hw), hw).total_s
    assert schedule.total_s <= 1.3 * bound


@pytest.mark.parametrize("bandwidth", [0.2e9, 20e9])
def test_a_timing_limit_refuses_only_programs_that_take_longer(bandwidth: float) -> None:
    # optimized keeps a candidate only if it is faster than the best so far: timing it stops once its bus alone
    # (free no sooner than now plus the loads and stores still to come) outlasts that
    graph = api.load_network("hairnet")
    hw = sweep.variant(api.load_hardware("paper-accelerator"), {"memory.external.bandwidth": bandwidth})
    costs = graph_costs(graph, hw)
    folded, into = fold_batchnorm(costs, hw)
    programs = [
        plan_program(costs, paper_steps(graph, costs), {}, hw.memory.internal.capacity, STRICT),
        plan_program(folded, fuse(folded), into, hw.memory.internal.capacity, OPTIMIZED),
    ]
    for program in programs:
        assert program.bus_after()[0][0] == program.moved  # every byte loaded or stored, loops unrolled
        full = timing(program, hw, overlap=True)
        assert timing(program, hw, True, full.total_s) == full  # as fast as the limit: not refused
        assert timing(program, hw, True, full.total_s * 1.5) == full
        assert timing(program, hw, True, program.moved / bandwidth * 0.99) is None  # its bus alone takes longer


@pytest.mark.parametrize("policy", ["strict", "optimized"])
def test_a_refusal_names_a_layer_that_fits_nowhere_not_the_first_of_a_fused_step(policy: str) -> None:
    """A relu fused into the maxpool after it: the fused step does not fit, nor does the maxpool alone (its last
    band also loads the row no window reads), but the relu alone does. The refusal must name the maxpool, as
    strict's does; optimized named the relu, the fused step's first layer."""
    from schedule_helpers import graph_from

    from hwsim.schedule.base import CapacityError

    layers = [{"op": "relu", "name": "act"}, {"op": "maxpool", "size": 2, "stride": 2, "name": "pool"}]
    hw = hardware(100)

    def alone(layer: dict) -> bool:
        try:
            api.estimate(graph_from({"name": "one", "input": [5, 8, 4], "layers": [layer]}), hw, policy)
        except CapacityError:
            return False
        return True

    with pytest.raises(CapacityError) as refused:
        api.estimate(graph_from({"name": "two", "input": [5, 8, 4], "layers": layers}), hw, policy)
    named = str(refused.value).split(":")[0]
    assert [alone(layer) for layer in layers] == [True, False]
    assert named == "pool"
