"""Feature maps run-length coded over the external link (hwsim.cost.coding): the size formula against a direct count,
and what a coded link changes in a schedule (only map bytes on the link) and what it leaves (capacity, weights)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from schedule_helpers import graph_from

from hwsim import api
from hwsim.cli import main
from hwsim.cost.coding import RUN_BITS, coded_ratio, link_bytes, pairs_per_value
from hwsim.errors import InputError
from hwsim.schedule.validate import Rule, validate
from hwsim.spec.hardware import HardwareSpec

NETWORK = """\
name: coded
input: [32, 32, 8]
layers:
  - {op: conv, kernel: 3, filters: 32, name: conv1}
  - {op: batchnorm, name: bn1}
  - {op: relu, name: relu1}
  - {op: conv, kernel: 3, filters: 32, name: conv2}
  - {op: relu, name: relu2}
  - {op: maxpool, size: 2, stride: 2, name: pool}
"""

HARDWARE = """\
name: coded-link
memory:
  internal: {capacity: 40 KB}
  external: {bandwidth: 1 GB/s, map_coding: eyeriss-rlc}
compute:
  matrix: {throughput: 100 GOPS}
  vector: {throughput: 10 GOPS}
precision: int16
"""


def eyeriss_pairs(values: np.ndarray) -> int:
    """Pairs Eyeriss's code writes for ``values``, coded one by one: a run of up to 31 zeros and the value after
    it; a 32nd zero in a row is written as a pair's value."""
    pairs, run = 0, 0
    longest = 2**RUN_BITS - 1
    for v in values.tolist():
        if v == 0 and run < longest:
            run += 1
        else:
            pairs, run = pairs + 1, 0
    return pairs + (run > 0)  # a trailing run is closed by one more pair


@pytest.mark.parametrize("zeros", [0.3, 0.6, 0.9, 0.98])
def test_coded_size_is_the_direct_count_on_random_maps(zeros: float) -> None:
    values = np.random.default_rng(7).random(200_000)
    sparse = np.where(values < zeros, 0, 1 + (values * 1000).astype(np.int64))
    counted = eyeriss_pairs(sparse)
    words = -(-counted // 3)  # three pairs a 64-bit word
    assert counted / sparse.size == pytest.approx(pairs_per_value(zeros), rel=0.01)
    assert words * 8 / (sparse.size * 2) == pytest.approx(coded_ratio(zeros, 2), rel=0.01)


def test_a_map_the_code_would_grow_crosses_raw() -> None:
    assert coded_ratio(0.0, 2) == 1.0 and coded_ratio(0.2, 2) == 1.0  # 4/3 x 0.8 > 1
    assert coded_ratio(0.3, 2) < 1.0
    assert coded_ratio(1.0, 2) == pytest.approx(4 / 3 / 32)
    assert link_bytes(1000, 0.5) == 500 and link_bytes(1001, 0.5) == 501 and link_bytes(7, 1.0) == 7


def run(policy: str, zeros: object, hardware: str = HARDWARE, batch: int = 2) -> api.Estimate:
    graph, profile = graph_from(yaml.safe_load(NETWORK)), HardwareSpec.model_validate(yaml.safe_load(hardware))
    return api.estimate(graph, profile, policy, batch=batch, map_zeros=zeros)  # type: ignore[arg-type]


def moved(result: api.Estimate, weights: bool) -> int:
    return sum(t.bytes for s in result.schedule.steps for t in s.transfers if t.tensor.weights is weights)


@pytest.mark.parametrize("policy", ["paper", "strict", "optimized"])
def test_a_coded_link_moves_fewer_map_bytes_and_nothing_else_changes(policy: str) -> None:
    raw, coded = run(policy, None), run(policy, 0.7)
    violations = validate(coded.schedule, coded.scheduled_costs, coded.hardware)
    # the paper's policy ignores the capacity by design (tests/test_schedule_policies.py); every byte is accounted
    assert {v.rule for v in violations} <= ({Rule.CAPACITY} if policy == "paper" else set())
    assert moved(coded, weights=True) == moved(raw, weights=True)  # weights are not coded
    ratio = coded_ratio(0.7, 2)
    assert moved(coded, weights=False) <= moved(raw, weights=False) * ratio + 64 * len(coded.schedule.steps)
    assert moved(coded, weights=False) < moved(raw, weights=False)
    assert coded.summary()["energy_external_j"] < raw.summary()["energy_external_j"]
    assert coded.schedule.total_s >= coded.summary()["lower_bound_cut_s"]
    if policy != "optimized":  # optimized may plan otherwise when maps cost less
        assert coded.schedule.transfer_s < raw.schedule.transfer_s
        # internal memory holds maps decoded: the same bytes resident
        assert [s.peak_internal_bytes for s in coded.schedule.steps] == [
            s.peak_internal_bytes for s in raw.schedule.steps
        ]


def test_only_the_maps_named_are_coded() -> None:
    result = run("strict", {"relu1": 0.8}, batch=1)
    coded = {c.name for c in result.costs if c.output_link < 1.0}
    assert coded == {"relu1"}
    assert validate(result.schedule, result.scheduled_costs, result.hardware) == []


def test_a_conv_that_folds_its_batch_norm_writes_the_batch_norms_coded_map() -> None:
    result = run("optimized", {"bn1": 0.8}, batch=1)
    links = {c.name: c.output_link for c in result.scheduled_costs}
    assert "bn1" not in links and links["conv1"] == coded_ratio(0.8, 2)
    assert validate(result.schedule, result.scheduled_costs, result.hardware) == []


def test_the_validator_counts_coded_bytes() -> None:
    result = run("strict", 0.7, batch=1)
    costs = tuple(replace(c, output_link=1.0, input_link=1.0) for c in result.scheduled_costs)
    violations = validate(result.schedule, costs, result.hardware)
    assert violations and all(v.rule is Rule.ACCOUNTING for v in violations)


def test_without_coding_or_zeros_maps_move_raw_and_the_report_says_so() -> None:
    plain = HARDWARE.replace(", map_coding: eyeriss-rlc", "")
    raw = run("strict", None, plain)
    assert raw.link_note == ""
    ignored = run("strict", 0.9, plain)
    assert moved(ignored, weights=False) == moved(raw, weights=False)
    assert "does not code maps" in ignored.link_note
    assert "no zero fractions" in run("strict", None).link_note


def test_unknown_layer_or_bad_fraction_is_refused() -> None:
    with pytest.raises(InputError, match="no layer 'conv9'"):
        run("strict", {"conv9": 0.5})
    with pytest.raises(InputError, match="from 0 to 1"):
        run("strict", 1.5)


def test_a_per_layer_file_drives_the_cli(runner, tmp_path: Path) -> None:
    (tmp_path / "net.yaml").write_text(NETWORK)
    (tmp_path / "hw.yaml").write_text(HARDWARE)
    zeros = "\ufefflayer,zeros\r\nrelu1,0.8\r\ninput,0.5\r\n"  # as a spreadsheet saves it: a BOM, CRLF
    (tmp_path / "zeros.csv").write_text(zeros, encoding="utf-8")
    args = ["estimate", str(tmp_path / "net.yaml"), "--hw", str(tmp_path / "hw.yaml"), "--policy", "strict"]
    coded = runner.invoke(main, [*args, "--map-zeros", str(tmp_path / "zeros.csv"), "-o", str(tmp_path / "r.json")])
    assert coded.exit_code == 0, coded.output
    assert "run-length coded" in (tmp_path / "r.json").read_text()


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (None, "1.5", r"^error: --map-zeros: a zero fraction is a number from 0 to 1, not 1\.5$"),
        ("z.csv", "layer,zeros\nrelu1,0.8\nconv9,0.5\n", r"^error: .*z\.csv:3: layer: no layer 'conv9'"),
        ("z.csv", "layer,zeros\nrelu1,lots\n", r"^error: .*z\.csv:2: relu1: a zero fraction is a number"),
        ("z.csv", "name,value\n", r"^error: .*z\.csv:1: the header must be 'layer,zeros'"),
        ("z.yaml", "relu1: 0.5\nconv1: -0.1\n", r"^error: .*z\.yaml:2: conv1: a zero fraction is a number"),
        ("z.yaml", "relu1: 0.5\nbogus: 0.1\n", r"^error: .*z\.yaml:2: layer: no layer 'bogus'"),
        ("z.txt", "0.5\n", r"^error: --map-zeros takes a fraction from 0 to 1 or a \.yaml/\.yml/\.csv file"),
        (None, "", r"^error: --map-zeros takes a fraction from 0 to 1 or a \.yaml/\.yml/\.csv file"),
        # a file naming no map once ran every map raw, as if --map-zeros had not been given
        ("z.yaml", "", r"^error: .*z\.yaml: names no map's zero fraction"),
        ("z.yaml", "# nothing yet\n", r"^error: .*z\.yaml: names no map's zero fraction"),
        ("z.csv", "layer,zeros\n\n", r"^error: .*z\.csv: names no map's zero fraction"),
        # once a traceback from the csv module; an unclosed quote once read as the rest of the file
        ("z.csv", "layer,zeros\nrelu1," + "1" * 200_000 + "\n", r"^error: .*z\.csv:2: not CSV: field larger"),
        ("z.csv", 'layer,zeros\nrelu1,"0.5\n', r"^error: .*z\.csv:2: not CSV: unexpected end of data"),
    ],
)
def test_bad_map_zeros_is_one_line_exit_2(runner, tmp_path: Path, name: str | None, text: str, expected: str) -> None:
    (tmp_path / "net.yaml").write_text(NETWORK)
    (tmp_path / "hw.yaml").write_text(HARDWARE)
    value = text
    if name is not None:
        (tmp_path / name).write_text(text)
        value = str(tmp_path / name)
    out = tmp_path / "report.json"
    args = ["estimate", str(tmp_path / "net.yaml"), "--hw", str(tmp_path / "hw.yaml"), "--map-zeros", value]
    result = runner.invoke(main, [*args, "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert re.search(expected, result.stderr.strip()), result.stderr
    assert not out.exists()


OTHER_NETWORK = NETWORK.replace("name: coded", "name: other").replace("name: conv2", "name: conv_b")


def test_compare_gives_each_network_the_zeros_that_name_its_maps(runner, tmp_path: Path) -> None:
    """A file naming one network's layer codes that map in its rows only; a fraction codes every network's maps."""
    (tmp_path / "a.yaml").write_text(NETWORK)
    (tmp_path / "b.yaml").write_text(OTHER_NETWORK)
    (tmp_path / "hw.yaml").write_text(HARDWARE)
    (tmp_path / "zeros.yaml").write_text("conv2: 0.9\n")  # only network a has a conv2
    nets = [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]

    def moved(*zeros: str) -> list[float]:
        out = tmp_path / "cmp.csv"
        result = runner.invoke(
            main, ["compare", *nets, "--hw", str(tmp_path / "hw.yaml"), "--policy", "strict", *zeros, "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        return [float(line.split(",")[5]) for line in out.read_text().splitlines()[1:]]

    raw, per_map, every = moved(), moved("--map-zeros", str(tmp_path / "zeros.yaml")), moved("--map-zeros", "0.9")
    assert per_map[0] < raw[0] and per_map[1] == raw[1]
    assert every[0] < raw[0] and every[1] < raw[1]


@pytest.mark.parametrize("command", ["compare", "roofline"])
def test_compare_and_roofline_refuse_a_map_no_network_has(runner, tmp_path: Path, command: str) -> None:
    (tmp_path / "net.yaml").write_text(NETWORK)
    (tmp_path / "hw.yaml").write_text(HARDWARE)
    (tmp_path / "z.csv").write_text("layer,zeros\nrelu1,0.8\nconv9,0.5\n")
    out = tmp_path / ("cmp.csv" if command == "compare" else "roof.png")
    args = [command, str(tmp_path / "net.yaml"), "--hw", str(tmp_path / "hw.yaml"), "--map-zeros"]
    result = runner.invoke(main, [*args, str(tmp_path / "z.csv"), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert re.search(r"^error: .*z\.csv:3: layer: no layer 'conv9'", result.stderr.strip()), result.stderr
    assert not out.exists()


def test_the_trace_bus_carries_the_bytes_on_the_link(runner, tmp_path: Path) -> None:
    """With coded maps, a bus event's bytes are what crosses the link (they add up to the run's bytes moved) and
    its size on chip is beside them."""
    import json

    (tmp_path / "net.yaml").write_text(NETWORK)
    (tmp_path / "hw.yaml").write_text(HARDWARE)
    args = ["estimate", str(tmp_path / "net.yaml"), "--hw", str(tmp_path / "hw.yaml"), "--policy", "strict"]
    trace, report = tmp_path / "t.json", tmp_path / "r.json"
    result = runner.invoke(main, [*args, "--map-zeros", "0.7", "--trace", str(trace), "-o", str(report)])
    assert result.exit_code == 0, result.output
    bus = [e["args"] for e in json.loads(trace.read_text())["traceEvents"] if e.get("cat") in ("load", "store")]
    assert sum(b["bytes"] for b in bus) == json.loads(report.read_text())["summary"]["bytes_moved"]
    coded = [b for b in bus if "bytes_on_chip" in b]
    assert coded and all(b["bytes"] < b["bytes_on_chip"] for b in coded)
