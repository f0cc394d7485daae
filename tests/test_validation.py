"""hwsim validate and hwsim calibrate: every figure with its source, held-out apart from fitted, every format."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import yaml

from hwsim import api
from hwsim.bundled import bundled_names
from hwsim.cli import main
from hwsim.cost.cycles import matrix_view
from hwsim.errors import InputError
from hwsim.model.graph import Graph
from hwsim.spec.hardware import HardwareSpec
from hwsim.studies import validation
from hwsim.studies.calibrate import Host, cache_sizes, host_profile


def test_every_published_figure_has_a_source_and_a_known_metric() -> None:
    cases = validation.load_cases()
    assert {c.case for c in cases} >= {
        "eyeriss-v1/alexnet",
        "eyeriss-v1/vgg16",
        "coral-edge-tpu/mobilenet-v1",
        "coral-edge-tpu/mobilenet-v2",
        "coral-edge-tpu/conv-stack-10",
        "coral-edge-tpu/conv-stack-50",
    }
    for case in cases:
        case.graph(), api.bundled_hardware(case.hardware)
        for m in case.metrics:
            assert m.metric in validation.METRICS and len(m.source) > 20


def test_the_eyeriss_predictions_follow_from_the_conv_steps_alone(published_rows) -> None:
    rows = {(r.case, r.metric): r for r in published_rows}
    zeros = next(c.map_zeros for c in validation.load_cases() if c.case == "eyeriss-v1/alexnet")
    alexnet = api.estimate(
        api.load_network("alexnet"), api.load_hardware("eyeriss-v1"), "strict", batch=4, map_zeros=zeros
    )
    conv = [s for s in alexnet.schedule.steps if s.op == "conv"]
    assert len(conv) == 5
    assert rows[("eyeriss-v1/alexnet", "frames_per_s")].predicted == pytest.approx(4 / sum(s.total_s for s in conv))
    dram = sum(s.bytes_moved for s in conv) / 2 / sum(s.macs for s in conv)
    assert rows[("eyeriss-v1/alexnet", "dram_accesses_per_mac")].predicted == pytest.approx(dram)
    assert sum(s.macs for s in conv) == 4 * 665_784_864
    energy = [e for s, e in zip(alexnet.schedule.steps, alexnet.step_energy) if s.op == "conv"]
    on_chip = sum(e.total_j - e.external_j for e in energy)
    assert rows[("eyeriss-v1/alexnet", "chip_energy_per_image_j")].predicted == pytest.approx(on_chip / 4)
    assert rows[("eyeriss-v1/alexnet", "chip_power_w")].predicted == pytest.approx(
        on_chip / sum(s.total_s for s in conv)
    )


def test_a_case_measured_on_the_conv_layers_schedules_them_alone() -> None:
    """Eyeriss ran VGG-16's conv layers at a batch of 3 and nothing after them. With the classifier scheduled too,
    its flatten runs the whole network image by image, and conv5's weights load once an image; without it, once."""
    case = next(c for c in validation.load_cases() if c.case == "eyeriss-v1/vgg16")
    hw = api.load_hardware(case.hardware)
    ran = case.graph()
    assert ran.output.name == case.up_to and all(layer.op.value != "dense" for layer in ran.layers)

    def conv5_weight_loads(graph: Graph) -> int:
        run = api.estimate(graph, hw, case.policy, batch=case.batch)
        (step,) = [s for s in run.schedule.steps if s.layers[0] == "conv5_1.conv"]
        return sum(t.bytes for t in step.transfers if t.tensor.weights)

    weights = next(layer.params for layer in ran.layers if layer.name == "conv5_1.conv") * 2  # int16
    assert conv5_weight_loads(ran) == weights
    assert conv5_weight_loads(validation.case_network(case.network)) == 3 * weights


def test_a_case_up_to_a_layer_its_network_lacks_is_not_predicted_and_says_why() -> None:
    case = next(c for c in validation.load_cases() if c.case == "eyeriss-v1/alexnet")
    broken = validation.Case.model_validate({**case.model_dump(), "up_to": "conv9", "given_mappings": None})
    rows = validation.published_rows([broken])
    assert all(math.isnan(r.predicted) and "up_to: alexnet has no layer 'conv9'" in r.note for r in rows)


def test_the_eyeriss_maps_move_coded_at_the_zeros_the_source_column_names(published_rows) -> None:
    """Eyeriss's link codes maps; the cases give the zeros Tables V and VI measured, and every row says so."""
    cases = {c.case: c for c in validation.load_cases() if c.hardware == "eyeriss-v1"}
    assert set(cases) == {"eyeriss-v1/alexnet", "eyeriss-v1/vgg16"}
    for row in (r for r in published_rows if r.case in cases):
        assert "zero fractions (an input, not fitted)" in row.source and "Table V" in row.source
    case = cases["eyeriss-v1/alexnet"]
    raw = api.estimate(api.load_network("alexnet"), api.load_hardware("eyeriss-v1"), "strict", batch=4)
    dram = {(r.case, r.metric): r.predicted for r in published_rows}[(case.case, "dram_accesses_per_mac")]
    conv = [s for s in raw.schedule.steps if s.op == "conv"]
    assert dram < sum(s.bytes_moved for s in conv) / 2 / sum(s.macs for s in conv)


@pytest.mark.slow  # validates every bundled case again (3 s)
def test_a_case_fitted_on_is_reported_apart_from_the_held_out_ones() -> None:
    coral = api.load_hardware("coral-edge-tpu")
    fitted_on = "coral-edge-tpu/mobilenet-v1"
    marked = HardwareSpec.model_validate(
        {**coral.model_dump(), "fitted": [{"field": "memory.external.bandwidth", "case": fitted_on}]}
    )
    cases = [c for c in validation.load_cases() if c.hardware == "coral-edge-tpu"]
    rows = validation.published_rows(cases, lambda name: marked)
    assert {r.case for r in rows if r.fitted} == {fitted_on}
    groups = {s.group: s for s in validation.summarise(rows)}
    figures = {case: sum(len(c.metrics) for c in cases if (c.case == fitted_on) == case) for case in (True, False)}
    assert groups["published (fitted)"].figures == figures[True] > 0
    assert groups["published (held out)"].figures == figures[False] > 0


def test_every_fitted_value_of_a_bundled_profile_names_a_case_of_the_table_on_that_profile() -> None:
    cases = {c.case: c for c in validation.load_cases()}
    for name in bundled_names("hardware"):
        for value in api.bundled_hardware(name).fitted:
            assert value.case in cases and cases[value.case].hardware == name, (name, value)


def test_the_edge_tpu_array_is_fitted_on_the_conv_stack_and_mobilenet_v2_stays_held_out(published_rows) -> None:
    """The issue's rule: what was fitted is reported as fitted; MobileNet v1 (the depthwise rate's case) is not
    counted held out, MobileNet v2 is."""
    coral = api.load_hardware("coral-edge-tpu")
    assert {(v.field, v.case) for v in coral.fitted} >= {
        ("compute.matrix.array", "coral-edge-tpu/conv-stack-10"),
        ("compute.matrix.array", "coral-edge-tpu/conv-stack-50"),
        ("compute.depthwise.throughput", "coral-edge-tpu/mobilenet-v1"),
    }
    fitted = {r.case: r.fitted for r in published_rows if r.case.startswith("coral-edge-tpu/")}
    assert fitted == {
        "coral-edge-tpu/mobilenet-v1": True,
        "coral-edge-tpu/conv-stack-10": True,
        "coral-edge-tpu/conv-stack-50": True,
        "coral-edge-tpu/mobilenet-v2": False,
    }


def test_the_edge_tpu_depthwise_rate_reproduces_mobilenet_v1_it_was_fitted_on(published_rows) -> None:
    """A change that moves MobileNet v1's time on coral-edge-tpu breaks the fit: refit it (benchmarks/coral.py)."""
    (v1,) = (r for r in published_rows if (r.case, r.metric) == ("coral-edge-tpu/mobilenet-v1", "latency_s"))
    assert abs(v1.rel_error) < 0.002


def test_the_conv_stack_workloads_are_the_published_models() -> None:
    """iwatake2222's Ops/model_generator_conv.py: 12 bytes in, 1 out, and N layers of 32 7x7 filters on 128x128."""
    for layers in (10, 50):
        graph = validation.case_network(f"conv-stack-{layers}")
        convs = [layer for layer in graph.layers if layer.op.value == "conv"]
        assert len(convs) == layers + 1
        assert all(c.input_shape[:2] == (128, 128) and c.output_shape == (128, 128, 32) for c in convs[:-1])
        assert graph.input_shape == (2, 2, 3) and convs[-1].output_shape == (1, 1, 1)
        windows = [view.window for view in (matrix_view(c, 1) for c in convs) if view is not None]
        assert windows == [7 * 7 * 3] + [7 * 7 * 32] * (layers - 1) + [32]


@pytest.mark.parametrize(
    ("field", "is_a_value"),
    [
        ("memory.external.speed", False),
        ("name", False),
        ("compute.matrix", False),
        ("compute.matrix.array.rows", False),
        # attributes that are not fields: a method, a derived property, the class (once taken as values)
        ("compute.matrix.model_copy", False),
        ("compute.matrix.macs_per_cycle", False),
        ("compute.matrix.__class__", False),
        ("memory.external.effective_bandwidth", False),
        ("memory.external.bandwidth", True),
        ("compute.matrix.array", True),
        ("compute.matrix.dataflow", True),
    ],
)
def test_a_fitted_value_must_name_a_value_of_the_profile(field: str, is_a_value: bool) -> None:
    """A number, an array's shape or a dataflow; not a field that is absent, free text or a whole section."""
    profile = {**api.load_hardware("eyeriss-v1").model_dump(), "fitted": [{"field": field, "case": "x"}]}
    if is_a_value:
        assert HardwareSpec.model_validate(profile).fitted[0].field == field
    else:
        with pytest.raises(ValueError, match="not a value of this profile"):
            HardwareSpec.model_validate(profile)


@pytest.mark.slow
def test_the_fit_in_benchmarks_coral_gives_the_profiles_depthwise_rate(monkeypatch) -> None:
    """The bisection benchmarks/coral.py states, rerun: the profile's rate is its result, rounded."""
    spec = importlib.util.spec_from_file_location(
        "coral", Path(__file__).resolve().parents[1] / "benchmarks" / "coral.py"
    )
    assert spec is not None and spec.loader is not None
    coral = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "coral", coral)  # its dataclasses look their module up
    spec.loader.exec_module(coral)
    profile = api.load_hardware("coral-edge-tpu")
    unit = profile.compute["matrix"]
    assert unit.dataflow is not None
    measured = next(c.metrics[0].measured for c in validation.load_cases() if c.case == "coral-edge-tpu/mobilenet-v1")
    rate = coral.fit_depthwise_rate(unit.dataflow, measured)
    assert rate == pytest.approx(profile.compute["depthwise"].throughput, rel=0.005)


def test_a_case_hwsim_cannot_schedule_says_why_and_counts_as_not_predicted() -> None:
    case = validation.Case(
        case="broken",
        network="hairnet",
        hardware="paper-accelerator",
        policy="nonsense",
        metrics=[validation.Measured(metric="latency_s", measured=1.0, source="a test")],
    )
    (row,) = validation.published_rows([case])
    assert math.isnan(row.predicted) and "unknown policy" in row.note
    (summary,) = validation.summarise([row])
    assert (summary.figures, summary.rows) == (1, 0)


@pytest.mark.parametrize("fmt", ["csv", "md", "json"])
def test_validate_writes_every_row_in_every_format(runner, workdir, validated_once, fmt: str) -> None:
    result = runner.invoke(main, ["validate", "-o", f"v.{fmt}"])
    assert result.exit_code == 0, result.output
    text = (workdir / f"v.{fmt}").read_text()
    for column in ("case", "metric", "measured", "predicted", "rel_error", "source", "fitted"):
        assert column in text
    if fmt == "csv":
        rows = list(csv.DictReader(text.splitlines()))
        eyeriss = next(r for r in rows if r["case"] == "eyeriss-v1/alexnet" and r["metric"] == "frames_per_s")
        assert float(eyeriss["measured"]) == 34.7 and "JSSC" in eyeriss["source"]
    if fmt == "json":
        document = json.loads(text)
        assert {g["group"] for g in document["summary"]} >= {"published (held out)"}


def test_validate_prints_each_published_figure_and_the_summary(runner, validated_once) -> None:
    result = runner.invoke(main, ["validate"])
    assert result.exit_code == 0
    assert "eyeriss-v1/vgg16" in result.output and "0.0035" in result.output
    assert "published (held out):" in result.output


def test_validate_refuses_an_unknown_format_before_any_work(runner, workdir) -> None:
    result = runner.invoke(main, ["validate", "-o", "v.txt"])
    assert result.exit_code == 2 and "cannot tell the format" in result.stderr
    assert not (workdir / "v.txt").exists()


def test_a_measured_host_becomes_a_profile_hwsim_loads() -> None:
    host = Host({"fp32": 5e10, "fp16": 1e9, "int8": 4e9}, 4e9, 1e10, 2e-5, {"L1d": 49152, "L2": 2**21})
    profile = HardwareSpec.model_validate(yaml.safe_load(host_profile(host)))
    assert profile.memory.internal.capacity == 2**21
    assert profile.compute["matrix"].throughput == 5e10 and profile.compute["vector"].dispatch == pytest.approx(2e-5)
    assert "fp16 1 GOPS" in host_profile(host)


def test_cache_sizes_are_read_as_linux_reports_them(tmp_path: Path) -> None:
    for index, (level, kind, size) in enumerate(
        [(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K")]
    ):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(f"{value}\n")
    assert cache_sizes(tmp_path) == {"L1d": 48 * 1024, "L2": 2048 * 1024}


@pytest.mark.slow
def test_calibrate_and_validate_on_this_machine(runner, workdir) -> None:
    """The measured part: seconds on any machine, so it runs with the slow tests."""
    assert runner.invoke(main, ["calibrate", "-o", "host.yaml"]).exit_code == 0
    assert api.load_hardware(workdir / "host.yaml").compute["matrix"].throughput > 1e8
    result = runner.invoke(main, ["validate", "--host", "-o", "v.csv"])
    assert result.exit_code == 0, result.output
    host = [r for r in csv.DictReader(open(workdir / "v.csv")) if r["kind"] == "host"]
    assert len(host) == len(validation.HOST_NETWORKS)
    assert all(float(r["measured"]) > 0 and float(r["predicted"]) > 0 for r in host)


def test_given_mappings_are_a_diagnostic_summarised_apart_from_the_held_out_figures() -> None:
    """Each Eyeriss case's processing time under the mappings its table gives: kind 'given mapping', never fitted,
    its own summary group; the held-out group keeps exactly the published figures."""
    cases = validation.load_cases()
    rows = validation.given_mapping_rows(cases)
    assert {(r.case, r.kind, r.fitted) for r in rows} == {
        ("eyeriss-v1/alexnet", validation.GIVEN, False),
        ("eyeriss-v1/vgg16", validation.GIVEN, False),
    }
    measured = {(c.case, m.metric): m.measured for c in cases for m in c.metrics}
    assert all(r.measured == measured[(r.case, "processing_s")] and "not held out" in r.note for r in rows)
    groups = {s.group: s for s in validation.summarise(rows)}
    assert set(groups) == {validation.GIVEN} and groups[validation.GIVEN].figures == 2


def test_alexnet_on_table_iii_mappings_costs_what_the_rs_search_picks() -> None:
    """eyeriss-v1-rs's search picks Table III's five mappings (tests/test_rowstationary.py), so costing the given
    ones must give the rs profile's own cycles for AlexNet's conv layers."""
    from hwsim.cost.cycles import layer_cycles
    from hwsim.cost.inference import graph_costs

    case = next(c for c in validation.load_cases() if c.case == "eyeriss-v1/alexnet")
    (row,) = validation.given_mapping_rows([case])
    hw = api.load_hardware("eyeriss-v1-rs")
    unit = hw.compute["matrix"]
    conv = [c for c in graph_costs(api.load_network("alexnet"), hw, batch=4) if c.layer.op.value == "conv"]
    assert row.predicted == pytest.approx(sum(layer_cycles(c, unit) for c in conv) / unit.clock)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hardware": "eyeriss-v1"}, "given mappings need an rs profile"),
        ({"drop": "conv3"}, "no given mapping for layer 'conv3'"),
    ],
)
def test_a_given_mapping_that_cannot_be_costed_is_one_clear_error(change: dict, message: str) -> None:
    case = next(c for c in validation.load_cases() if c.case == "eyeriss-v1/alexnet")
    assert case.given_mappings is not None
    given = case.given_mappings.model_dump()
    if "drop" in change:
        del given["layers"][change["drop"]]
    else:
        given.update(change)
    broken = validation.Case.model_validate({**case.model_dump(), "given_mappings": given})
    with pytest.raises(InputError, match=message):
        validation.given_mapping_rows([broken])
