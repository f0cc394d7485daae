"""Reports: JSON for scripts, CSV and Markdown with the same columns, the terminal table and its summary."""

from __future__ import annotations

import io
import json
import os
import stat

import pandas as pd
import pytest

from hwsim import api, files
from hwsim.cli import main
from hwsim.report import tables

SUMMARY_KEYS = {"total_time_s", "transfer_time_s", "compute_time_s", "params", "macs", "ops", "bytes_moved"}


def test_json_report_has_the_contracted_fields(runner, tmp_path) -> None:
    out = tmp_path / "tables.json"
    result = runner.invoke(main, ["estimate", "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert {"network", "hardware", "policy", "counting", "summary", "layers"} <= set(doc)
    assert (doc["network"], doc["hardware"], doc["policy"], doc["counting"]) == (
        "hairnet",
        "paper-accelerator",
        "paper",
        "exact",
    )
    assert SUMMARY_KEYS <= set(doc["summary"])
    s = doc["summary"]
    assert s["total_time_s"] == pytest.approx(s["transfer_time_s"] + s["compute_time_s"])
    assert s["params"] == 2431192
    assert s["total_time_s"] == pytest.approx(sum(row["total_s"] for row in doc["layers"]))
    assert doc["layers"][0]["layer"] == "stem" and doc["layers"][0]["input_shape"] == "224x224x3"
    assert set(doc["layers"][0]) == set(tables.COLUMNS)


def test_csv_and_markdown_carry_the_same_columns(runner, tmp_path) -> None:
    for name in ("r.csv", "r.md"):
        assert runner.invoke(main, ["estimate", "-o", str(tmp_path / name)]).exit_code == 0
    table = pd.read_csv(tmp_path / "r.csv")
    assert list(table.columns) == tables.COLUMNS
    markdown = (tmp_path / "r.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| layer"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == tables.COLUMNS
    assert len(table) == markdown.count("\n| ") - 1  # every data row appears in both
    keys = [line.split(":")[0] for line in markdown.splitlines() if line.startswith("- ")]
    assert len(keys) == len(set(keys)) and "- batch: 1" in markdown  # each setting once


def test_format_flag_overrides_the_suffix_and_prints_to_stdout(runner) -> None:
    result = runner.invoke(main, ["estimate", "--format", "csv"])
    assert result.exit_code == 0
    assert list(pd.read_csv(io.StringIO(result.output)).columns) == tables.COLUMNS


def test_terminal_table_shows_every_layer_and_the_summary(runner) -> None:
    result = runner.invoke(main, ["estimate", "networks/alexnet.yaml", "--hw", "hardware/paper-accelerator.yaml"])
    assert result.exit_code == 0, result.output
    for name in ("conv1", "lrn2", "fc8", "total latency", "parameters 60,965,224", "most expensive"):
        assert name in result.output


def test_summary_adds_up() -> None:
    estimate = api.estimate(api.load_network("alexnet"), api.load_hardware("paper-accelerator"), batch=4)
    summary = estimate.summary()
    assert summary["total_time_s"] == pytest.approx(sum(step.total_s for step in estimate.schedule.steps))
    assert summary["images_per_s"] == pytest.approx(4 / summary["total_time_s"])
    # weights are loaded once per step whatever the batch; maps scale with it
    single = api.estimate(estimate.graph, estimate.hardware).schedule.steps[0]
    assert estimate.schedule.steps[0].weight_bytes == single.weight_bytes
    assert estimate.schedule.steps[0].input_bytes == 4 * single.input_bytes


def test_paper_counting_overcounts_depthwise_by_its_channels() -> None:
    graph = api.load_network("hairnet")
    hardware = api.load_hardware("paper-accelerator")
    exact = {c.name: c for c in api.estimate(graph, hardware, counting="exact").costs}
    paper = {c.name: c for c in api.estimate(graph, hardware, counting="paper").costs}
    dw = "stage1.block1.dw"
    assert exact[dw].ops == 2 * 9 * 32 * 112 * 112 == 7225344  # DESIGN.md: 7.2e6
    assert paper[dw].ops == exact[dw].ops * 32  # 2.31e8
    assert paper["stem"].ops == exact["stem"].ops


def test_reports_get_the_usual_file_mode(tmp_path) -> None:
    previous = os.umask(0o022)
    try:
        files.write_atomically(tmp_path / "r.csv", "a,b\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "r.csv").stat().st_mode) == 0o644
