"""Plots: the files the commands write open as images of the right format."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from hwsim import api
from hwsim.cli import main
from hwsim.report import plots
from hwsim.studies import sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 300 and pixels.shape[1] > 300
    assert pixels.std() > 0.05  # something is drawn, not a blank canvas


def assert_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert any(element.tag.endswith("path") for element in root.iter())


@pytest.mark.parametrize("name, check", [("layers.png", assert_png), ("layers.svg", assert_svg)])
def test_estimate_plots_layers(runner, tmp_path, workdir, name, check):
    cwd = workdir
    result = runner.invoke(main, ["estimate", "hairnet", "--hw", "paper-accelerator", "--plot", name])
    assert result.exit_code == 0, result.output
    assert f"wrote {name}" in result.output and "total latency" in result.output
    check(Path(cwd) / name)
    if name.endswith(".svg"):
        assert "stage3.block2.pw" in (Path(cwd) / name).read_text()  # layer names are on the axis


def test_roofline_png(runner, tmp_path, workdir):
    cwd = workdir
    result = runner.invoke(main, ["roofline", "hairnet", "--hw", "paper-accelerator", "-o", "roofline.png"])
    assert result.exit_code == 0, result.output
    assert_png(Path(cwd) / "roofline.png")


def test_roofline_svg_names_a_roof_per_unit(runner, tmp_path, workdir):
    cwd = workdir
    assert runner.invoke(main, ["roofline", "alexnet", "--hw", "datacenter-gpu", "-o", "roof.svg"]).exit_code == 0
    text = (Path(cwd) / "roof.svg").read_text()
    assert "roof of matrix" in text and "roof of vector" in text and "memory roof" in text


def test_roofline_points_are_each_step_at_ops_over_bytes_moved():
    estimate = api.estimate(api.load_network("hairnet"), api.load_hardware("paper-accelerator"))
    axes = plots.roofline(estimate).axes[0]
    drawn = np.concatenate([c.get_offsets() for c in axes.collections])
    moving = [s for s in estimate.schedule.steps if s.ops and s.bytes_moved]
    expected = {(round(s.ops / s.bytes_moved, 6), round(s.ops / s.total_s)) for s in moving}
    assert expected <= {(round(x, 6), round(y)) for x, y in drawn}


@pytest.mark.parametrize(
    "varies",
    [
        ["memory.internal.capacity=256KB..8MB:log:6", "memory.external.bandwidth=0.5GB/s..32GB/s:log:7"],
        ["memory.external.bandwidth=0.5GB/s..32GB/s:log:7"],
    ],
)
def test_sweep_plots_heatmap_or_lines(runner, tmp_path, workdir, varies):
    args = ["sweep", "hairnet", "--plot", "sweep.png", "-o", "sweep.csv"]
    for vary in varies:
        args += ["--vary", vary]
    cwd = workdir
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert_png(Path(cwd) / "sweep.png")


def test_sweep_plot_of_three_axes_is_refused_before_writing(runner, tmp_path, workdir):
    args = [
        "sweep",
        "--plot",
        "s.png",
        "--vary",
        "memory.internal.capacity=1MB..2MB:2",
        "--vary",
        "memory.external.bandwidth=1GB/s..2GB/s:2",
        "--vary",
        "compute.matrix.throughput=1TFLOPS..2TFLOPS:2",
    ]
    cwd = workdir
    result = runner.invoke(main, [*args, "-o", "s.csv"])
    assert result.exit_code == 2 and "--plot: a sweep plot shows one or two axes, got 3" in result.output
    assert not list(Path(cwd).iterdir())


@pytest.mark.parametrize(
    "args",
    [
        ["estimate", "--plot", "layers.jpg"],
        ["roofline", "-o", "roofline.pdf"],
        ["sweep", "--vary", "memory.internal.capacity=1MB..2MB", "--plot", "sweep.gif"],
    ],
)
def test_unknown_image_suffix_is_one_line(runner, tmp_path, workdir, args):
    cwd = workdir
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "use a .png or .svg suffix" in result.output
    assert not list(Path(cwd).iterdir())


def numbers_in(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)]


def drawn_bars(axes, row: int) -> dict[str, list[tuple[float, float]]]:
    """The (start, width) bars of one row of the per-layer timeline: its spans, bus and compute segments."""
    lanes = {}
    for collection, lane in zip(axes.collections[3 * row : 3 * row + 3], ("span", "bus", "compute")):
        boxes = (path.get_extents().get_points() for path in collection.get_paths())
        lanes[lane] = [(float(x0), float(x1 - x0)) for (x0, _), (x1, _) in boxes]
    return lanes


def test_a_serial_timeline_adds_up_and_each_bar_is_the_step_itself():
    estimate = api.estimate(api.load_network("hairnet"), api.load_hardware("paper-accelerator"), "paper")
    s = estimate.schedule
    summary = plots.layer_bars_summary(estimate)
    total, transfer, compute = numbers_in(summary)
    assert summary.endswith("one after another") and total == pytest.approx(transfer + compute, abs=0.15)
    assert total == pytest.approx(s.total_s * 1e3, rel=5e-4) and transfer == pytest.approx(s.transfer_s * 1e3, rel=5e-4)
    axes = plots.layer_bars(estimate).axes[0]
    start = 0.0
    for row, step in enumerate(s.steps):
        lanes = drawn_bars(axes, row)
        assert lanes["span"] == [pytest.approx((start, step.total_s * 1e3), abs=1e-9)]  # one after another
        assert sum(w for _, w in lanes["bus"]) == pytest.approx(step.transfer_s * 1e3, rel=1e-9)
        assert sum(w for _, w in lanes["compute"]) == pytest.approx(step.compute_s * 1e3, rel=1e-9, abs=1e-12)
        if lanes["bus"] and lanes["compute"]:
            bus_end = max(x + w for x, w in lanes["bus"] if x < lanes["compute"][0][0] + 1e-12)
            assert bus_end <= lanes["compute"][0][0] + 1e-9  # its loads come before its compute
        start += step.total_s * 1e3


def test_an_overlapped_timeline_says_so_and_names_busy_shares_of_the_run():
    estimate = api.estimate(api.load_network("hairnet"), api.load_hardware("paper-accelerator"), "optimized")
    s = estimate.schedule
    summary = plots.layer_bars_summary(estimate)
    assert "overlapped" in summary and "=" not in summary
    shares = re.findall(r"(\w+) busy ([\d.]+) (ms|µs) \((\d+) %", summary)
    assert [name for name, *_ in shares] == ["bus", "matrix", "vector"]
    total = numbers_in(summary)[0]
    for _, busy, unit, percent in shares:
        busy_ms = float(busy) * (1e-3 if unit == "µs" else 1)
        assert int(percent) == round(busy_ms / total * 100)
    assert sum(float(b) for _, b, u, _ in shares if u == "ms") > total  # why the shares add up to over 100 %
    axes = plots.layer_bars(estimate).axes[0]
    overlapping = 0
    for row in range(len(s.steps)):
        lanes = drawn_bars(axes, row)
        overlapping += any(
            b < c + cw and c < b + bw for b, bw in lanes["bus"] for c, cw in lanes["compute"]
        )  # drawn side by side in time, not stacked one after the other
    assert overlapping > 0
    assert axes.get_xlim()[1] == pytest.approx(s.total_s * 1e3)


def test_roofline_units_follow_the_precision():
    estimate = api.estimate(api.load_network("hairnet"), api.load_hardware("edge-npu"), precision="int8")
    axes = plots.roofline(estimate).axes[0]
    labels = [text.get_text() for text in axes.get_legend().get_texts()] + [axes.get_ylabel(), axes.get_xlabel()]
    assert "roof of matrix: 4 TOPS" in labels and "attained performance (OPS)" in labels
    assert not any("FLOP" in label for label in labels)
    fp32 = plots.roofline(api.estimate(api.load_network("hairnet"), api.load_hardware("paper-accelerator"))).axes[0]
    assert fp32.get_ylabel() == "attained performance (FLOPS)"


@pytest.mark.parametrize("spacing, scale", [("log", "log"), ("lin", "linear")])
def test_a_one_axis_sweep_is_drawn_on_the_grid_s_own_scale(spacing, scale):
    hw = api.load_hardware("paper-accelerator")
    axis = sweep.parse_axis(f"memory.external.bandwidth=1GB/s..4GB/s:{spacing}:3", hw)
    result = sweep.run(api.load_network("hairnet-cifar10-small"), hw, [axis])
    assert plots.sweep_figure(result).axes[0].get_xscale() == scale


@pytest.mark.parametrize("metric", ["energy", "edp"])
def test_a_sweep_can_be_coloured_by_energy_and_its_knee_follows_that_metric(metric: str) -> None:
    graph, hardware = api.load_network("hairnet-cifar10-small"), api.load_hardware("paper-accelerator")
    axes = [sweep.parse_axis("memory.internal.capacity=16KB..4MB:log:6", hardware)]
    result = sweep.run(graph, hardware, axes, "paper", "exact", 1, None)
    shown = plots.SWEEP_METRICS[metric]
    figure = plots.sweep_figure(result, metric)
    ax = figure.axes[0]
    drawn = ax.lines[0].get_ydata()
    expected = result.rows[shown.column].to_numpy() * shown.scale
    assert np.allclose(drawn, expected, equal_nan=True) and ax.get_ylabel() == shown.label
    values = result.rows[axes[0].column].to_numpy()
    knee = [line for line in ax.lines if line.get_label().startswith("stops paying")][0].get_xdata()[0]
    assert knee == sweep.saturation(values, expected)
    assert f"best {shown.name};" in ax.get_title()
