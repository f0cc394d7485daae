"""hwsim compare: one row per network × hardware × policy, and two runs layer by layer."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from hwsim import api
from hwsim.cli import main
from hwsim.studies import compare


def test_rows_follow_networks_then_hardware_and_ratio_is_to_the_first(runner, tmp_path, workdir):
    result = runner.invoke(
        main, ["compare", "hairnet", "alexnet", "--hw", "paper-accelerator", "--hw", "edge-npu", "-o", "cmp.csv"]
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_csv("cmp.csv")
    assert list(rows.columns) == compare.SUMMARY_COLUMNS
    assert list(zip(rows.network, rows.hardware)) == [
        ("hairnet", "paper-accelerator"),
        ("hairnet", "edge-npu"),
        ("alexnet", "paper-accelerator"),
        ("alexnet", "edge-npu"),
    ]
    expected = api.estimate(api.load_network("alexnet"), api.load_hardware("edge-npu")).summary()
    assert rows.latency_s[3] == pytest.approx(expected["total_time_s"], rel=1e-12)
    assert rows.params[2] == 60_965_224
    assert rows.latency_vs_first.tolist() == pytest.approx((rows.latency_s / rows.latency_s[0]).tolist())
    assert rows.latency_vs_first[0] == 1


def test_lower_bound_and_efficiency_come_from_the_summary_or_are_missing():
    estimates = compare.run_grid(["hairnet"], ["paper-accelerator"], ["paper"])
    table = compare.summary_table(estimates).rows
    summary = estimates[0].summary()
    for column in ("lower_bound_s", "efficiency"):
        if column in summary:
            assert table[column][0] == summary[column]
        else:
            assert math.isnan(table[column][0])


@pytest.mark.parametrize("fmt", ["csv", "md", "json"])
def test_every_format_carries_every_row(runner, fmt):
    result = runner.invoke(main, ["compare", "hairnet", "hairnet-cifar10", "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        document = json.loads(result.output)
        assert [r["network"] for r in document["rows"]] == ["hairnet", "hairnet-cifar10"]
        assert document["rows"][0]["lower_bound_s"] is None or document["rows"][0]["lower_bound_s"] > 0
    elif fmt == "csv":
        assert pd.read_csv(io.StringIO(result.output)).network.tolist() == ["hairnet", "hairnet-cifar10"]
    else:
        assert "| hairnet-cifar10 " in result.output and result.output.startswith("# comparison")


def test_rich_table_shows_human_units(runner):
    result = runner.invoke(main, ["compare", "hairnet", "alexnet"])
    assert result.exit_code == 0, result.output
    assert "latency ms" in result.output and "images/s" in result.output and "60,965,224" in result.output


def test_per_layer_diff_keeps_layer_order_and_shows_layers_only_one_run_has(runner):
    result = runner.invoke(main, ["compare", "hairnet", "hairnet-dense", "--per-layer", "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.output))
    dense = api.estimate(api.load_network("hairnet-dense"), api.load_hardware("paper-accelerator"))
    assert table.layer.tolist()[0] == "stem"
    assert table.layer.tolist()[-1] == "head"  # only B has it: after A's layers
    head = table.set_index("layer").loc["head"]
    assert math.isnan(head.a_total_s) and head.b_total_s == pytest.approx(dense.schedule.steps[-2].total_s)
    same = table.dropna()
    assert (same.delta_s == same.b_total_s - same.a_total_s).all()


def test_per_layer_needs_exactly_two_runs(runner, tmp_path, workdir):
    result = runner.invoke(main, ["compare", "hairnet", "--per-layer", "-o", "diff.csv"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --per-layer compares exactly two runs, got 1 (networks × --hw × --policy)"
    assert not list(tmp_path.rglob("diff.csv"))


def test_bad_suffix_and_missing_network_are_one_line(runner, tmp_path, workdir):
    bad = runner.invoke(main, ["compare", "hairnet", "-o", "cmp.xlsx"])
    missing = runner.invoke(main, ["compare", "no-such-network.yaml"])
    for result in (bad, missing):
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


TINY_SRAM = """\
name: tiny-sram
memory:
  internal: {capacity: 2 KB}
  external: {bandwidth: 1 GB/s}
compute:
  matrix: {throughput: 1 TFLOPS}
  vector: {throughput: 10 GFLOPS}
"""


def test_a_run_no_schedule_fits_is_a_row_with_its_reason_and_the_others_still_compare(runner, workdir) -> None:
    (workdir / "tiny.yaml").write_text(TINY_SRAM)
    result = runner.invoke(
        main, ["compare", "hairnet", "--hw", "tiny.yaml", "--policy", "strict", "--policy", "paper", "-o", "c.csv"]
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_csv("c.csv", keep_default_na=False, na_values=[""])
    strict, paper = rows.iloc[0], rows.iloc[1]
    assert strict.policy == "strict" and np.isnan(strict.latency_s) and "capacity is 2,000 B" in strict.note
    assert paper.latency_s > 0 and pd.isna(paper.note) and paper.latency_vs_first == 1.0  # the first that ran


def test_a_comparison_where_nothing_can_be_scheduled_is_one_line(runner, workdir) -> None:
    (workdir / "tiny.yaml").write_text(TINY_SRAM)
    result = runner.invoke(main, ["compare", "hairnet", "--hw", "tiny.yaml", "--policy", "strict", "-o", "c.csv"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "capacity is 2,000 B" in result.stderr
    assert not (workdir / "c.csv").exists()
