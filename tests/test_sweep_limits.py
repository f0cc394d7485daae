"""hwsim sweep at the edges: only swept points scheduled, infeasible points recorded, grid limits,
non-finite ranges, the lower bound in every row, and no NumPy warning on the way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwsim import api
from hwsim.cli import main
from hwsim.errors import InputError
from hwsim.studies import sweep
from hwsim.units import MAX_QUANTITY

HW = api.load_hardware("paper-accelerator")
HAIRNET = api.load_network("hairnet")
TINY_SRAM = """\
name: tiny-sram
memory:
  internal: {capacity: 1 B}
  external: {bandwidth: 1 GB/s}
compute:
  matrix: {throughput: 1 TFLOPS}
  vector: {throughput: 10 GFLOPS}
"""


def _one_error_line(result, *parts: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("policy", ["paper", "strict"])
def test_the_profiles_own_value_is_never_scheduled(runner, tmp_path, workdir, policy):
    (tmp_path / "tiny.yaml").write_text(TINY_SRAM)
    result = runner.invoke(
        main,
        [
            "sweep",
            "--hw",
            str(tmp_path / "tiny.yaml"),
            "--policy",
            policy,
            "--vary",
            "memory.internal.capacity=1MB..2MB:lin:2",
            "-o",
            "s.csv",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_csv("s.csv")
    assert rows["memory.internal.capacity_bytes"].tolist() == [1e6, 2e6] and rows.total_s.notna().all()
    assert "infeasible" not in result.output


def test_an_infeasible_point_is_a_row_with_its_reason_and_the_sweep_goes_on(runner, tmp_path, workdir):
    result = runner.invoke(
        main,
        [
            "sweep",
            "--policy",
            "optimized",
            "--vary",
            "memory.internal.capacity=1B..2MB:lin:2",
            "-o",
            "s.csv",
            "--plot",
            "s.png",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_csv("s.csv", keep_default_na=False, na_values=[""])
    assert "wrote s.csv (2 points, 1 infeasible)" in result.output
    assert "infeasible: 1 of 2 points, no schedule fits; e.g. at memory.internal.capacity = 1 B: stem:" in result.output
    assert "best: memory.internal.capacity = 2 MB" in result.output
    bad, good = rows.iloc[0], rows.iloc[1]
    assert np.isnan(bad.total_s) and np.isnan(bad.bytes_moved) and np.isnan(bad.efficiency) and "capacity" in bad.note
    assert bad.lower_bound_s == pytest.approx(good.lower_bound_s)  # the bound does not depend on internal memory
    assert pd.isna(good.note) and good.total_s > 0  # an empty cell


def test_a_sweep_where_nothing_fits_is_one_line_and_no_file(runner, tmp_path, workdir):
    result = runner.invoke(
        main,
        [
            "sweep",
            "--policy",
            "strict",
            "--vary",
            "memory.internal.capacity=1B..100B:log:3",
            "-o",
            "s.csv",
            "--plot",
            "s.png",
        ],
    )
    _one_error_line(
        result,
        "error: --vary: every one of the 3 points is infeasible under policy strict; "
        "at memory.internal.capacity = 1 B: stem:",
    )
    assert not list(tmp_path.rglob("s.*"))


def test_external_capacity_refusals_on_the_fast_path_match_api_estimate():
    axes = [
        sweep.parse_axis("memory.external.capacity=1MB..1GB:log:7", HW),
        sweep.parse_axis("memory.internal.capacity=64KB..8MB:log:3", HW),
    ]
    result = sweep.run(HAIRNET, HW, axes)
    assert 0 < len(result.infeasible) < len(result.rows)
    for _, row in result.rows.iterrows():
        point = {axis.field: float(row[axis.column]) for axis in axes}
        if row.note:
            with pytest.raises(InputError) as refusal:
                api.estimate(HAIRNET, sweep.variant(HW, point))
            assert str(refusal.value) == row.note and np.isnan(row.total_s)
        else:
            assert row.total_s == api.estimate(HAIRNET, sweep.variant(HW, point)).schedule.total_s


def test_saturation_ignores_infeasible_points():
    values = np.array([1.0, 2.0, 4.0, 8.0])
    assert sweep.saturation(values, np.array([np.nan, 5.0, 4.1, 4.0])) == 4.0
    assert sweep.saturation(values, np.array([np.nan, 4.0, np.nan, 10.0])) == 2.0
    assert np.isnan(sweep.saturation(values, np.full(4, np.nan)))


@pytest.mark.parametrize(
    "varies, message",
    [
        (
            ["memory.internal.capacity=1MB..2MB:log:100000", "memory.external.bandwidth=1GB/s..2GB/s:log:100000"],
            "100,000 points on one axis; at most 10,000",
        ),
        (
            ["memory.internal.capacity=1MB..2MB:log:10000", "memory.external.bandwidth=1GB/s..2GB/s:log:1000"],
            "the grid has 10,000,000 points (10,000 x 1,000); the limit is 1,000,000: give fewer points",
        ),
        (["memory.internal.capacity=1MB..2MB:log:99999999999999999999999"], "points on one axis; at most 10,000"),
    ],
)
def test_huge_grids_are_refused_up_front(runner, tmp_path, workdir, monkeypatch, varies, message):
    """Refused before any work: no axis longer than the limit is ever drawn, no grid built, nothing costed."""

    def refuse(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} ran for a grid that should have been refused")

        return fail

    def capped(draw):
        def values(lo, hi, count, **kwargs):
            assert count <= sweep.MAX_AXIS_POINTS, f"an axis of {count:,} points was drawn"
            return draw(lo, hi, count, **kwargs)

        return values

    monkeypatch.setattr(sweep, "grid", refuse("grid"))
    monkeypatch.setattr(sweep, "cost_once", refuse("cost_once"))
    monkeypatch.setattr(sweep.np, "geomspace", capped(np.geomspace))
    monkeypatch.setattr(sweep.np, "linspace", capped(np.linspace))
    result = runner.invoke(main, ["sweep", *sum((["--vary", v] for v in varies), []), "-o", "s.csv"])
    _one_error_line(result, "error: --vary: ", message)
    assert not list(tmp_path.rglob("s.csv"))


@pytest.mark.parametrize(
    "vary, message",
    [
        ("memory.internal.capacity=1e400B..1e401B:lin:2", "must be finite"),
        ("memory.external.bandwidth=1GB/s..1e31B/s", "must be finite and at most"),
        ("memory.internal.capacity=0.5B..2B", "at least 1 B"),
        ("compute.matrix.throughput=0.1..1TFLOPS", "at least 1"),
    ],
)
@pytest.mark.filterwarnings("error", "default::DeprecationWarning", "default::PendingDeprecationWarning")
def test_non_finite_or_sub_unit_ranges_are_one_line(runner, vary, message):
    _one_error_line(runner.invoke(main, ["sweep", "--vary", vary]), f"error: --vary: {vary!r}: ", message)


@pytest.mark.filterwarnings("error", "default::DeprecationWarning", "default::PendingDeprecationWarning")
@pytest.mark.parametrize(
    "varies",
    [
        ["memory.internal.capacity=1B..1e30B:log:7"],
        ["memory.external.bandwidth=1B/s..1e30B/s:log:4", "compute.vector.throughput=1FLOPS..1e30FLOPS:log:4"],
        ["memory.external.capacity=1B..1e30B:log:4", "memory.internal.capacity=1B..1e30B:log:3"],
    ],
)
def test_extreme_but_valid_ranges_raise_no_warning(runner, tmp_path, workdir, varies):
    assert MAX_QUANTITY == 1e30
    result = runner.invoke(main, ["sweep", *sum((["--vary", v] for v in varies), []), "-o", "s.csv", "--plot", "s.png"])
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output and np.isfinite(pd.read_csv("s.csv").lower_bound_s).all()


@pytest.mark.parametrize("policy", ["strict", pytest.param("optimized", marks=pytest.mark.slow)])
def test_point_by_point_sweep_equals_api_estimate(policy):
    axes = [
        sweep.parse_axis("memory.internal.capacity=512KB..4MB:log:2", HW),
        sweep.parse_axis("memory.external.bandwidth=1GB/s..4GB/s:log:2", HW),
    ]
    result = sweep.run(HAIRNET, HW, axes, policy=policy)
    for _, row in result.rows.sample(2, random_state=3).iterrows():
        point = {axis.field: float(row[axis.column]) for axis in axes}
        expected = api.estimate(HAIRNET, sweep.variant(HW, point), policy).summary()
        assert row.bytes_moved == expected["bytes_moved"] and row.note == ""
        for metric, key in sweep.SUMMARY_KEYS.items():
            assert row[metric] == pytest.approx(expected[key], rel=1e-12), (metric, point)


def test_lower_bound_and_efficiency_are_columns_of_every_sweep():
    axes = [
        sweep.parse_axis("compute.matrix.throughput=100GFLOPS..10TFLOPS:log:3", HW),
        sweep.parse_axis("memory.external.bandwidth=0.1GB/s..100GB/s:log:4", HW),
    ]
    rows = sweep.run(HAIRNET, HW, axes).rows
    assert {"lower_bound_s", "efficiency"} <= set(rows.columns)
    assert (rows.lower_bound_s <= rows.total_s * (1 + 1e-12)).all() and (rows.efficiency <= 1 + 1e-12).all()
    for _, row in rows.iterrows():  # exactly the bound of hwsim.cost.bound at the point
        point = {axis.field: float(row[axis.column]) for axis in axes}
        assert row.lower_bound_s == api.estimate(HAIRNET, sweep.variant(HW, point)).summary()["lower_bound_s"]


def test_grid_order_is_the_last_axis_fastest():
    axes = [
        sweep.parse_axis("memory.internal.capacity=1MB..3MB:lin:3", HW),
        sweep.parse_axis("memory.external.bandwidth=1GB/s..2GB/s:lin:2", HW),
    ]
    points = sweep.grid(axes)
    assert points["memory.internal.capacity"].tolist() == [1e6, 1e6, 2e6, 2e6, 3e6, 3e6]
    assert points["memory.external.bandwidth"].tolist() == [1e9, 2e9] * 3


@pytest.mark.parametrize(
    "varies",
    [
        ["memory.internal.capacity=1MB..64MB:log:5000"],
        pytest.param(
            ["memory.internal.capacity=64KB..64MB:log:300", "memory.external.bandwidth=0.1GB/s..100GB/s:log:300"],
            marks=pytest.mark.slow,
        ),
    ],
)
def test_plots_of_large_grids_stay_small(runner, tmp_path, workdir, varies):
    """How long they take is measured by benchmarks/bench_sweep.py."""
    from PIL import Image

    result = runner.invoke(main, ["sweep", *sum((["--vary", v] for v in varies), []), "--plot", "s.png"])
    assert result.exit_code == 0, result.output
    width, height = Image.open("s.png").size
    assert width <= 16 * 120 and height <= 12 * 120
