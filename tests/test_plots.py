"""Plots: the files the commands write open as images of the right format."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from hwsim import api
from hwsim.cli import main
from hwsim.report import plots

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
