"""hwsim verify and hwsim ops: executed counts equal modelled ones; golden files catch drift."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from reference_helpers import SMALL_NET

from hwsim.cli import main
from hwsim.model.execution import Pass
from hwsim.model.expand import build_graph, load_network
from hwsim.spec.network import load_network_document
from hwsim.studies.verify import verify

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ROOT / "networks"
BUNDLED = sorted(path.stem for path in NETWORKS.glob("*.yaml"))
SECONDS_TO_EXECUTE = {
    "alexnet",
    "hairnet",
    "hairnet-cifar10",
    "hairnet-dense",
    "hairnet-standard",
    "mobilenet-v1",
    "mobilenet-v2",
    "resnet18",
}
"""Bundled networks whose forward, backward and Adam step take seconds in the reference: run by CI (-m slow)."""
OVER_THE_MEMORY_BUDGET = {"vgg16"}
"""Bundled networks whose training step at 224x224 needs more than the reference's default 4 GB (VGG-16: 4.05 GB);
their layers are verified on a smaller input below."""
GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize(
    "network",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in SECONDS_TO_EXECUTE else n
        for n in BUNDLED
        if n not in OVER_THE_MEMORY_BUDGET
    ],
)
def test_verify_passes_on_every_bundled_network(runner, network):
    result = runner.invoke(main, ["verify", str(NETWORKS / f"{network}.yaml")])
    assert result.exit_code == 0, result.output
    assert "counts agree" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("network", sorted(OVER_THE_MEMORY_BUDGET))
def test_verify_passes_on_the_largest_networks_at_32x32(network):
    """The same layers on a 32x32 image (VGG-16's five pools leave 1x1x512 for its dense head)."""
    spec, doc = load_network_document(NETWORKS / f"{network}.yaml")
    graph = build_graph(spec.model_copy(update={"input": (32, 32, 3)}), doc)
    assert verify(graph).differences == ()


def test_verify_covers_every_op_and_pass_at_batch_three(tmp_path):
    """Residual add, concat, overlapping pools, lrn, dropout and dense, with gradients summed from several readers."""
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_NET)
    graph = load_network(path)
    result = verify(graph, batch=3)
    assert result.differences == ()
    assert {layer.op for layer in graph.layers} >= {c.op for c in result.checks}
    assert all(result.total(pass_, executed=True) > 0 for pass_ in Pass)


def test_softmax_over_a_map_counts_a_max_and_a_sum_per_pixel(runner, tmp_path):
    """Softmax runs per pixel over its channels: 5N - 2·H·W per image, not 5N - 2 (58 ≠ 52 before)."""
    path = tmp_path / "pixel-softmax.yaml"
    path.write_text(
        "name: pixel-softmax\ninput: [2, 2, 3]\nlayers:\n"
        "  - {op: softmax, name: per_pixel}\n  - {op: global_avg_pool}\n  - {op: softmax}\n"
    )
    result = runner.invoke(main, ["verify", str(path), "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "counts agree" in result.output
    checks = {(c.layer, c.pass_): c for c in verify(load_network(path), batch=1).checks}
    assert (
        checks[("per_pixel", Pass.FORWARD)].executed == checks[("per_pixel", Pass.FORWARD)].modelled == 5 * 12 - 2 * 4
    )


@pytest.mark.slow
def test_paper_counting_is_caught_by_execution(runner):
    result = runner.invoke(main, ["verify", str(NETWORKS / "hairnet-paper.yaml"), "--counting", "paper"])
    assert result.exit_code == 1
    assert "counts differ" in result.output
    dw_row = next(line for line in result.output.splitlines() if "stage1.block1.dw " in line)
    assert "231,211,008 ≠ 7,225,344" in dw_row  # 2*9*32*32*112*112 counted (erratum 1), 2*9*32*112*112 executed


@pytest.mark.parametrize("network", BUNDLED)
def test_golden_op_counts_are_current(runner, network):
    source, golden = NETWORKS / f"{network}.yaml", GOLDEN / f"{network}.ops.csv"
    assert golden.exists(), f"no golden op counts for {network}: run hwsim ops {source} --write {golden}"
    result = runner.invoke(main, ["ops", str(source), "--check", str(golden)])
    assert result.exit_code == 0, result.output


def test_a_changed_count_fails_with_a_readable_diff(runner, tmp_path):
    rows = list(csv.DictReader(open(GOLDEN / "hairnet.ops.csv")))
    rows[4]["backward"] = str(int(rows[4]["backward"]) + 5)
    del rows[-1]
    golden = tmp_path / "hairnet.ops.csv"
    with open(golden, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = runner.invoke(main, ["ops", "hairnet", "--check", str(golden)])
    assert result.exit_code == 1
    assert f"{rows[4]['layer']} backward: golden {int(rows[4]['backward']):,}" in result.output
    assert "(-5)" in result.output
    assert "softmax: new layer (softmax), not in the golden file" in result.output
    assert "2 differences" in result.output


def test_write_then_check_round_trips(runner, tmp_path):
    golden = tmp_path / "alexnet.ops.csv"
    assert runner.invoke(main, ["ops", "alexnet", "--write", str(golden)]).exit_code == 0
    assert runner.invoke(main, ["ops", "alexnet", "--check", str(golden)]).output.startswith("matches")


def test_bad_golden_file_is_one_line(runner, tmp_path):
    golden = tmp_path / "bad.csv"
    golden.write_text("layer,ops\nstem,1\n")
    result = runner.invoke(main, ["ops", "hairnet", "--check", str(golden)])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {golden}: expected columns layer,op,forward")


def test_batch_norm_over_one_value_is_an_input_error(runner, tmp_path):
    path = tmp_path / "flat_bn.yaml"
    path.write_text(
        "name: flat_bn\ninput: [1, 1, 4]\nlayers:\n  - {op: dense, units: 3}\n  - {op: batchnorm}\n  - {op: softmax}\n"
    )
    result = runner.invoke(main, ["verify", str(path)])
    assert result.exit_code == 2
    assert "at least 2 values per channel" in result.output
    assert runner.invoke(main, ["verify", str(path), "--batch", "2"]).exit_code == 0


@pytest.mark.parametrize(
    "command, batch, maximum", [("verify", 1_000_000, 64), ("verify", 65, 64), ("ops", 5000, 4096)]
)
def test_batch_is_capped_before_anything_runs(runner, command, batch, maximum):
    result = runner.invoke(main, [command, "hairnet", "--batch", str(batch)])
    assert result.exit_code == 2
    assert result.stderr == f"error: Invalid value for '--batch': {batch} is not in the range 1<=x<={maximum}.\n"


def golden_lines() -> list[str]:
    return (GOLDEN / "hairnet.ops.csv").read_text().splitlines()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lines: lines + [lines[2]], "layer 'stem_bn' again (first on line 3)"),
        (lambda lines: [*lines[:3], lines[3] + ",7", *lines[4:]], "7 values, the header has 6 columns"),
        (
            lambda lines: [*lines[:3], ",".join(lines[3].split(",")[:3]), *lines[4:]],
            "3 values, the header has 6 columns",
        ),
    ],
)
def test_a_golden_file_with_a_duplicated_row_or_a_wrong_number_of_values_is_one_line(runner, tmp_path, edit, message):
    golden = tmp_path / "hairnet.ops.csv"
    lines = edit(golden_lines())
    golden.write_text("\n".join(lines) + "\n")
    line = len(lines) if "again" in message else 4
    result = runner.invoke(main, ["ops", "hairnet", "--check", str(golden)])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {golden}:{line}: {message}\n"


def test_ops_writes_golden_files_only_as_csv(runner, tmp_path):
    result = runner.invoke(main, ["ops", "hairnet", "--write", str(tmp_path / "x.md")])
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: {tmp_path / 'x.md'}: golden op counts are written as CSV; use a .csv suffix, not 'x.md'\n"
    )
    assert not (tmp_path / "x.md").exists()
