"""Microarchitecture in the profile: arrays and clocks, fixed costs, int16, steady state, and what reports say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from schedule_helpers import graph_from, networks

from hwsim import api
from hwsim.cli import main
from hwsim.cost.cycles import layer_cycles
from hwsim.schedule import scheduled_costs
from hwsim.schedule.base import CapacityError, weights_of
from hwsim.schedule.validate import validate
from hwsim.spec.hardware import HardwareSpec, Precision

PLAIN = {
    "name": "plain",
    "memory": {"internal": {"capacity": "1 MB"}, "external": {"bandwidth": "1 GB/s"}},
    "compute": {"matrix": {"throughput": "128 GOPS"}, "vector": {"throughput": "10 GOPS"}},
}


def profile(**sections: dict) -> HardwareSpec:
    """PLAIN with fields merged into its units and memories: ``profile(matrix={"array": [8, 8]}, external={...})``."""
    spec = json.loads(json.dumps(PLAIN))
    for section, fields in sections.items():
        parent = spec["compute"] if section in spec["compute"] else spec["memory"]
        parent[section].update(fields)
    return HardwareSpec.model_validate(spec)


ARRAY = {"array": [8, 8], "dataflow": "ws", "clock": "1 GHz"}
SMALL = {
    "name": "small",
    "input": [16, 16, 8],
    "layers": [
        {"op": "conv", "kernel": 3, "filters": 16, "name": "conv"},
        {"op": "relu", "name": "relu"},
        {"op": "dwconv", "kernel": 3, "name": "dw"},
        {"op": "conv", "kernel": 1, "filters": 32, "name": "pw"},
    ],
}


def test_an_array_and_clock_give_the_throughput_and_a_given_one_must_agree() -> None:
    hw = profile(matrix={"array": [256, 256], "dataflow": "ws", "clock": "700 MHz", "throughput": None})
    assert hw.compute["matrix"].throughput == 2 * 256 * 256 * 700e6
    assert profile(matrix={"array": [256, 256], "dataflow": "ws", "clock": "700 MHz", "throughput": "92 TOPS"})
    assert profile(vector={"lanes": 16, "clock": "500 MHz", "throughput": None}).compute["vector"].throughput == 8e9


@pytest.mark.parametrize(
    ("unit", "line", "message"),
    [
        ("{array: [16, 16], dataflow: os, clock: 1 GHz, throughput: 1 TOPS}", 6, "disagrees with 2 x 16 x 16 x 1 GHz"),
        ("{array: [16, 16], clock: 1 GHz}", 6, "an array needs a dataflow (os, ws, is or rs)"),
        ("{array: [16, 16], dataflow: os}", 6, "array needs a clock"),
        ("{throughput: 1 TOPS, dataflow: os}", 6, "dataflow needs an array"),
        ("{array: [16, 16], dataflow: xs, clock: 1 GHz}", 6, "compute.matrix.dataflow"),
        ("{array: [16, 16], dataflow: rs, clock: 1 GHz}", 6, "dataflow rs needs a row_stationary section"),
        (
            "{array: [16, 16], dataflow: os, clock: 1 GHz, row_stationary: {ifmap_spad: 12, filter_spad: 224,"
            " psum_spad: 24, buffer: 100 KiB, bank: 4 KiB, ifmap_bus: 1, filter_bus: 4, psum_bus: 4}}",
            6,
            "row_stationary needs dataflow: rs",
        ),
        ("{array: [16, 0], dataflow: os, clock: 1 GHz}", 6, "compute.matrix.array"),
        ("{array: [16, 16], dataflow: os, clock: 1 GHz, dispatch: -1 us}", 6, "must not be negative"),
    ],
)
def test_bad_microarchitecture_is_one_located_error(runner, tmp_path: Path, unit: str, line: int, message: str) -> None:
    hw = tmp_path / "hw.yaml"
    hw.write_text(
        "name: hw\nmemory:\n  internal: {capacity: 1 MB}\n  external: {bandwidth: 1 GB/s}\ncompute:\n"
        f"  matrix: {unit}\n  vector: {{throughput: 10 GOPS}}\n"
    )
    result = runner.invoke(main, ["estimate", "--hw", str(hw)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {hw}:{line}: compute.matrix")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_int16_is_two_bytes_a_value() -> None:
    assert Precision("int16").bytes == 2
    graph = graph_from(SMALL)
    assert api.estimate(graph, profile(), precision="int16").costs[0].weight_bytes == 3 * 3 * 8 * 16 * 2 + 16 * 2


def test_on_an_array_a_step_computes_for_its_cycles_at_the_clock() -> None:
    graph, hw = graph_from(SMALL), profile(matrix={**ARRAY, "throughput": None})
    result = api.estimate(graph, hw, "paper")
    costs = {c.name: c for c in result.costs}
    for step in result.schedule.steps:
        if step.unit == "matrix":
            cycles = layer_cycles(costs[step.name], hw.compute["matrix"])
            assert step.compute_s == pytest.approx(cycles / 1e9, rel=1e-12)
            assert result.step_cycles[result.schedule.steps.index(step)] == cycles
    dw = next(s for s in result.schedule.steps if s.name == "dw")
    # a depthwise conv on a ws array maps its 1 filter onto 1 of the 8 columns
    assert 0 < result.step_utilization[result.schedule.steps.index(dw)] < 1 / 8


def test_dispatch_is_paid_once_per_step_and_setup_once_per_transfer() -> None:
    graph = graph_from(SMALL)
    base = api.estimate(graph, profile(), "paper")
    paying = api.estimate(graph, profile(matrix={"dispatch": "5 us"}, external={"setup": "2 us"}), "paper")
    matrix_steps = sum(s.unit == "matrix" for s in base.schedule.steps)
    transfers = sum(e.instances for s in base.schedule.steps for e in s.events if e.action.value in ("load", "store"))
    extra = paying.schedule.total_s - base.schedule.total_s
    assert extra == pytest.approx(matrix_steps * 5e-6 + transfers * 2e-6, rel=1e-9)
    assert validate(paying.schedule, paying.costs, paying.hardware) == base_violations(base)


def base_violations(result: api.Estimate) -> list:
    return validate(result.schedule, result.costs, result.hardware)


def test_transfers_attain_the_achievable_fraction_of_the_bandwidth() -> None:
    graph = graph_from(SMALL)
    full = api.estimate(graph, profile(), "strict")
    slowed = api.estimate(graph, profile(external={"achievable": 0.5}), "strict")
    assert slowed.schedule.transfer_s == pytest.approx(2 * full.schedule.transfer_s, rel=1e-12)
    assert slowed.summary()["lower_bound_s"] >= full.summary()["lower_bound_s"]


@pytest.mark.parametrize("policy", ["paper", "strict", "optimized"])
def test_steady_state_loads_no_kept_weight_and_the_schedule_stays_sound(policy: str) -> None:
    graph, hw = api.load_network("mobilenet-v1"), api.load_hardware("edge-npu")
    first = api.estimate(graph, hw, policy)
    steady = api.estimate(graph, hw, policy, steady_state=True)
    kept = {c.name for c in steady.costs if c.weights_resident}
    summary = steady.summary()
    assert summary["resident_weight_bytes"] == sum(c.weight_bytes for c in steady.costs if c.weights_resident) > 0
    assert summary["resident_weight_layers"] == len(kept)
    loaded = {e.region.tensor for s in steady.schedule.steps for e in s.events if e.action.value == "load"}
    assert not loaded & {weights_of(name) for name in kept}
    assert validate(steady.schedule, scheduled_costs(policy, steady.costs, hw, steady.schedule.steps), hw) == []
    assert steady.schedule.bytes_moved < first.schedule.bytes_moved
    assert summary["lower_bound_s"] <= summary["lower_bound_cut_s"] <= steady.schedule.total_s
    noted = [s for s in steady.schedule.steps if "on chip (steady state)" in s.note]
    assert noted and all(s.weight_loc == "internal" for s in noted)
    assert "steady_state" not in first.summary()


def test_steady_state_under_the_paper_policy_saves_exactly_the_kept_weights() -> None:
    """MobileNet v1's 4.25 MB of int8 weights all fit the Edge TPU class's 8 MB beside its largest layer, and
    the paper's placement of maps does not change in what is left: exactly those bytes are not moved."""
    graph, hw = api.load_network("mobilenet-v1"), api.load_hardware("edge-npu")
    first, steady = (api.estimate(graph, hw, "paper", steady_state=s) for s in (False, True))
    kept = steady.summary()["resident_weight_bytes"]
    assert kept == sum(c.weight_bytes for c in first.costs)
    assert first.schedule.bytes_moved - steady.schedule.bytes_moved == kept


def test_a_profile_can_ask_for_steady_state_and_the_flag_can_refuse_it(runner) -> None:
    on = runner.invoke(main, ["estimate", "mobilenet-v1", "--hw", "coral-edge-tpu", "--format", "json"])
    off = runner.invoke(
        main, ["estimate", "mobilenet-v1", "--hw", "coral-edge-tpu", "--no-steady-state", "--format", "json"]
    )
    assert json.loads(on.output)["summary"]["steady_state"] == 1
    assert "steady_state" not in json.loads(off.output)["summary"]
    assert json.loads(on.output)["summary"]["bytes_moved"] < json.loads(off.output)["summary"]["bytes_moved"]


@pytest.mark.parametrize("fmt", ["csv", "md", "json"])
def test_every_format_has_cycles_and_utilization_when_the_profile_has_an_array(runner, workdir, fmt: str) -> None:
    assert runner.invoke(main, ["estimate", "mobilenet-v1", "--hw", "tpu-v1", "-o", f"a.{fmt}"]).exit_code == 0
    assert runner.invoke(main, ["estimate", "mobilenet-v1", "--hw", "edge-npu", "-o", f"b.{fmt}"]).exit_code == 0
    with_array, without = (workdir / f"a.{fmt}").read_text(), (workdir / f"b.{fmt}").read_text()
    for column in ("compute_cycles", "utilization"):
        assert column in with_array and column not in without


def test_the_json_summary_has_the_runs_cycles() -> None:
    result = api.estimate(api.load_network("resnet18"), api.load_hardware("tpu-v1"), "paper")
    summary = result.summary()
    assert summary["compute_cycles"] == sum(result.step_cycles) > 0
    assert summary["cycles"] == round(result.schedule.total_s * 700e6) >= summary["compute_cycles"]
    assert 0 < summary["utilization_overall"] <= summary["utilization"] <= 1


def test_the_roofline_shows_each_array_steps_utilisation() -> None:
    from hwsim.report.plots import roofline

    graph = api.load_network("mobilenet-v1")
    with_array = roofline(api.estimate(graph, api.load_hardware("tpu-v1")))
    without = roofline(api.estimate(graph, api.load_hardware("edge-npu")))
    assert [ax.get_ylabel() for ax in with_array.axes][1].startswith("array utilisation")
    assert len(without.axes) == 1
    labels = [t.get_text() for t in with_array.axes[0].texts]
    assert any(label.endswith("%)") for label in labels)
    assert not any("%" in t.get_text() for t in without.axes[0].texts)


def _microarchitecture(capacity: float, rows: int, cols: int, dataflow: str) -> HardwareSpec:
    return HardwareSpec.model_validate(
        {
            "name": "generated",
            "memory": {"internal": {"capacity": capacity}, "external": {"bandwidth": 1e9, "setup": 1e-6}},
            "compute": {
                "matrix": {"array": [rows, cols], "dataflow": dataflow, "clock": 1e9, "dispatch": 2e-6},
                "vector": {"lanes": 4, "clock": 1e9},
            },
        }
    )


@settings(max_examples=40, deadline=None)
@given(
    networks(),
    st.sampled_from([8_000, 32_000, 1e6]),
    st.sampled_from([4, 16]),
    st.sampled_from([4, 16]),
    st.sampled_from(["os", "ws", "is"]),
    st.booleans(),
    st.sampled_from(["strict", "optimized"]),
)
@pytest.mark.slow
def test_arrays_overheads_and_steady_state_keep_every_schedule_sound(
    graph, capacity: float, rows: int, cols: int, dataflow: str, steady: bool, policy: str
) -> None:
    """On random networks: the validator passes, the bound holds, and every layer on the array computes for at
    least its cycles at the clock."""
    hw = _microarchitecture(capacity, rows, cols, dataflow)
    try:
        result = api.estimate(graph, hw, policy, steady_state=steady)
    except CapacityError:
        assume(False)
        raise
    assert validate(result.schedule, scheduled_costs(policy, result.costs, hw, result.schedule.steps), hw) == []
    summary = result.summary()
    assert summary["lower_bound_s"] <= summary["lower_bound_cut_s"] <= result.schedule.total_s * (1 + 1e-9)
    for step, cycles in zip(result.schedule.steps, result.step_cycles):
        assert step.compute_s >= cycles / 1e9 * (1 - 1e-9)
    if steady:
        kept = {weights_of(c.name) for c in result.costs if c.weights_resident}
        assert not kept & {t.tensor for s in result.schedule.steps for t in s.transfers}


def test_a_sweep_varies_an_arrays_clock_and_its_compute_time_follows() -> None:
    from hwsim.studies import sweep

    hw = api.load_hardware("tpu-v1")
    fields = sweep.numeric_fields(hw)
    assert fields["compute.matrix.clock"] == "frequency" and "compute.matrix.throughput" not in fields
    axis = sweep.parse_axis("compute.matrix.clock=350MHz..700MHz:lin:2", hw)
    rows = sweep.run(api.load_network("resnet18"), hw, [axis], "paper").rows
    matrix = sum(
        s.compute_s for s in api.estimate(api.load_network("resnet18"), hw).schedule.steps if s.unit == "matrix"
    )
    assert rows["compute_s"][0] - rows["compute_s"][1] == pytest.approx(matrix, rel=1e-9)
