"""hwsim sweep: --vary parsing, the grid, the fast path against api.estimate, CSV out, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwsim import api
from hwsim.cli import main
from hwsim.errors import InputError
from hwsim.spec.hardware import HardwareSpec
from hwsim.studies import sweep
from tests.schedule_helpers import assert_sweep_metric

HW = api.load_hardware("paper-accelerator")
HAIRNET = api.load_network("hairnet")


def test_log_and_lin_ranges_with_units():
    log = sweep.parse_axis("memory.internal.capacity=256KB..8MB:log:6", HW)
    assert log.kind == "bytes" and log.column == "memory.internal.capacity_bytes"
    assert log.values[0] == 256e3 and log.values[-1] == pytest.approx(8e6)
    assert np.allclose(np.diff(np.log(log.values)), np.log(8e6 / 256e3) / 5)
    lin = sweep.parse_axis("compute.vector.throughput=1GFLOPS..10GFLOPS:lin:10", HW)
    assert lin.values == pytest.approx([i * 1e9 for i in range(1, 11)])
    assert sweep.parse_axis("memory.external.bandwidth=0.5GB/s..32GB/s", HW).values == pytest.approx(
        [0.5e9, 1.414e9, 4e9, 11.31e9, 32e9], rel=1e-3
    )  # default: log, 5 points


def test_every_numeric_field_is_sweepable_and_only_those():
    assert sweep.numeric_fields(HW) == {
        "memory.internal.capacity": "bytes",
        "memory.external.bandwidth": "bandwidth",
        "memory.external.capacity": "bytes",
        "compute.matrix.throughput": "throughput",
        "compute.vector.throughput": "throughput",
    }


def test_variant_changes_only_the_named_fields_and_revalidates():
    changed = sweep.variant(HW, {"memory.internal.capacity": 2e6, "compute.matrix.throughput": 5e12})
    assert changed.memory.internal.capacity == 2e6 and changed.compute["matrix"].throughput == 5e12
    assert changed.memory.external == HW.memory.external and HW.memory.internal.capacity == 1e6
    with pytest.raises(ValueError):
        sweep.variant(HW, {"memory.internal.capacity": -1.0})


def _check_against_estimate(result: sweep.SweepResult, graph, hardware, sample: int, **options) -> None:
    rng = np.random.default_rng(5)
    for index in rng.choice(len(result.rows), size=min(sample, len(result.rows)), replace=False):
        row = result.rows.iloc[index]
        point = {axis.field: float(row[axis.column]) for axis in result.axes}
        expected = api.estimate(graph, sweep.variant(hardware, point), result.policy, **options).summary()
        assert row.bytes_moved == expected["bytes_moved"], point
        for metric, key in sweep.SUMMARY_KEYS.items():
            assert_sweep_metric(metric, row[metric], expected[key], point)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"batch": 4, "precision": "int8"},
        {"counting": "paper"},
    ],
)
def test_fast_path_equals_api_estimate_on_sampled_points(options):
    axes = [
        sweep.parse_axis(text, HW)
        for text in (
            "memory.internal.capacity=64KB..16MB:log:9",
            "memory.external.bandwidth=0.1GB/s..100GB/s:log:5",
            "compute.vector.throughput=1GFLOPS..1TFLOPS:log:4",
        )
    ]
    result = sweep.run(HAIRNET, HW, axes, **options)
    assert len(result.rows) == 9 * 5 * 4
    _check_against_estimate(result, HAIRNET, HW, sample=25, **options)


def test_fast_path_handles_merges_and_more_compute_units():
    alexnet = api.load_network("alexnet")
    hardware = api.load_hardware("datacenter-gpu")
    axes = [
        sweep.parse_axis("memory.internal.capacity=1MB..64MB:log:7", hardware),
        sweep.parse_axis("compute.matrix.throughput=100TFLOPS..1000TFLOPS:lin:3", hardware),
    ]
    _check_against_estimate(sweep.run(alexnet, hardware, axes), alexnet, hardware, sample=21)


def _coding(hardware: HardwareSpec) -> HardwareSpec:
    """``hardware`` with a link that run-length codes maps, as Eyeriss's does."""
    data = hardware.model_dump()
    data["memory"]["external"]["map_coding"] = "eyeriss-rlc"
    return HardwareSpec.model_validate(data)


@pytest.mark.parametrize("zeros", [0.6, {"input": 0.05, "stem_relu": 0.5, "stage1.block1.pw_relu": 0.7}])
def test_the_fast_path_moves_coded_maps_as_api_estimate_does(zeros):
    coded = _coding(HW)
    assert sweep.is_fast("paper", coded)
    axes = [
        sweep.parse_axis("memory.internal.capacity=64KB..16MB:log:6", coded),
        sweep.parse_axis("memory.external.bandwidth=0.1GB/s..100GB/s:log:3", coded),
    ]
    result = sweep.run(HAIRNET, coded, axes, map_zeros=zeros)
    _check_against_estimate(result, HAIRNET, coded, sample=18, map_zeros=zeros)
    raw = sweep.run(HAIRNET, coded, axes).rows
    fewer = result.rows.bytes_moved.to_numpy() < raw.bytes_moved.to_numpy()
    assert (result.rows.bytes_moved <= raw.bytes_moved).all() and fewer.any()


def test_points_scheduled_one_by_one_move_coded_maps_as_api_estimate_does():
    eyeriss = api.load_hardware("eyeriss-v1")
    axes = [sweep.parse_axis("memory.external.bandwidth=0.2GB/s..2GB/s:log:3", eyeriss)]
    result = sweep.run(HAIRNET, eyeriss, axes, policy="strict", map_zeros=0.5)
    _check_against_estimate(result, HAIRNET, eyeriss, sample=3, map_zeros=0.5)
    raw = sweep.run(HAIRNET, eyeriss, axes, policy="strict").rows
    assert (result.rows.bytes_moved < raw.bytes_moved).all()


@pytest.mark.parametrize(("zeros", "message"), [("1.5", "zero fraction"), ("", "takes a fraction from 0 to 1")])
def test_sweep_refuses_a_bad_zero_fraction_in_one_line(runner, workdir, zeros: str, message: str):
    args = ["sweep", "hairnet", "--map-zeros", zeros, "--vary", "memory.external.bandwidth=1GB/s..2GB/s:lin:2"]
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and result.output.count("\n") == 1 and message in result.output


def test_point_by_point_path_agrees_with_the_fast_path():
    axes = [
        sweep.parse_axis("memory.internal.capacity=256KB..4MB:log:4", HW),
        sweep.parse_axis("memory.external.bandwidth=1GB/s..8GB/s:log:3", HW),
    ]
    fast = sweep.run(HAIRNET, HW, axes)
    slow, notes = sweep.schedule_points(sweep.cost_once(HAIRNET, HW, "paper", "exact", 1, None), sweep.grid(axes))
    for metric in set(slow) & set(fast.rows.columns):
        assert fast.rows[metric].tolist() == pytest.approx(slow[metric].tolist(), rel=1e-12)
    assert notes == [""] * 12


@pytest.mark.parametrize("enabled", [True, False])
def test_points_are_scheduled_with_the_collector_paused_and_left_as_they_were_found(monkeypatch, enabled):
    import gc

    seen = []
    estimate = sweep.estimate

    def watched(*args, **kwargs):
        seen.append(gc.isenabled())
        return estimate(*args, **kwargs)

    monkeypatch.setattr(sweep, "estimate", watched)
    axes = [sweep.parse_axis("memory.external.bandwidth=1GB/s..8GB/s:log:3", HW)]
    (gc.enable if enabled else gc.disable)()
    try:
        sweep.schedule_points(sweep.cost_once(HAIRNET, HW, "strict", "exact", 1, None), sweep.grid(axes))
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
    assert seen == [False] * 3


def test_progress_is_reported_for_every_point():
    done = []
    axes = [sweep.parse_axis("memory.internal.capacity=256KB..8MB:log:5000", HW)]
    sweep.run(HAIRNET, HW, axes, on_progress=done.append)
    assert sum(done) == 5000 and len(done) > 1


def test_saturation_is_the_smallest_value_within_five_percent_of_the_best():
    values = np.array([1.0, 2.0, 4.0, 8.0])
    assert sweep.saturation(values, np.array([10.0, 5.0, 4.1, 4.0])) == 4.0  # 4.1 <= 4.2
    assert sweep.saturation(values, np.array([10.0, 5.0, 4.3, 4.0])) == 8.0  # still paying at the end
    assert sweep.saturation(values[::-1], np.array([4.0, 4.1, 5.0, 10.0])) == 4.0  # order of points does not matter


def test_cli_writes_the_full_grid_as_csv(runner, tmp_path, workdir):
    result = runner.invoke(
        main,
        [
            "sweep",
            "hairnet",
            "--hw",
            "paper-accelerator",
            "--vary",
            "memory.internal.capacity=256KB..8MB:log:6",
            "--vary",
            "memory.external.bandwidth=0.5GB/s..32GB/s:log:7",
            "-o",
            "sweep.csv",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_csv("sweep.csv")
    assert "wrote sweep.csv (42 points)" in result.output and "best: memory.internal.capacity = 8 MB" in result.output
    assert list(rows.columns) == [
        "memory.internal.capacity_bytes",
        "memory.external.bandwidth_bytes_per_s",
        *sweep.METRICS,
        "note",
    ]
    assert len(rows) == 42 and rows.iloc[:, :2].drop_duplicates().shape[0] == 42
    at_paper = rows[(rows.iloc[:, 0] == 256e3) & (rows.iloc[:, 1] == 0.5e9)].iloc[0]
    expected = api.estimate(
        HAIRNET, sweep.variant(HW, {"memory.internal.capacity": 256e3, "memory.external.bandwidth": 0.5e9})
    )
    assert at_paper.total_s == pytest.approx(expected.schedule.total_s, rel=1e-12)
    assert rows.images_per_s.tolist() == pytest.approx((1 / rows.total_s).tolist())


@pytest.mark.parametrize(
    "vary, message",
    [
        (
            "memory.internal.size=1MB..2MB",
            "no numeric field 'memory.internal.size' in paper-accelerator; choose one of memory.internal.capacity,",
        ),
        ("compute.tensor.throughput=1TFLOPS..2TFLOPS", "choose one of"),
        ("memory.internal.capacity=1MB..-2MB", "must be positive"),
        ("memory.internal.capacity=0MB..2MB", "must be positive"),
        ("memory.internal.capacity=1GB/s..2MB", "unknown unit 'GB/s'"),
        ("memory.internal.capacity=4MB..2MB", "from low to high"),
        ("memory.internal.capacity=1MB..2MB:cubic", "unknown option 'cubic'"),
        ("memory.internal.capacity=1MB..2MB:0", "unknown option '0'"),
        ("memory.internal.capacity", "expected FIELD=LO..HI"),
        ("name=a..b", "no numeric field 'name'"),
    ],
)
def test_bad_vary_is_one_line_exit_2_and_no_file(runner, tmp_path, workdir, vary, message):
    result = runner.invoke(main, ["sweep", "--vary", vary, "-o", "out.csv", "--plot", "out.png"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --vary: {vary!r}: ") and message in lines[0], lines
    assert not list(tmp_path.rglob("out.*"))


def test_grid_values_are_written_as_the_user_wrote_them(runner, tmp_path, workdir):
    """No float noise of the spacing (2000000000.0000002), and a capacity is whole bytes."""
    result = runner.invoke(
        main,
        [
            "sweep",
            "hairnet-cifar10-small",
            "--vary",
            "memory.internal.capacity=256KB..8MB:log:6",
            "--vary",
            "memory.external.bandwidth=0.5GB/s..32GB/s:log:7",
            "-o",
            "sweep.csv",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "sweep.csv").read_text().splitlines()[1:]
    bandwidths = sorted({int(line.split(",")[1]) for line in lines})
    assert [line.split(",")[1] for line in lines[:7]] == [str(b) for b in bandwidths]
    assert bandwidths == [500_000_000 * 2**k for k in range(7)]
    capacities = [line.split(",")[0] for line in lines[::7]]
    assert capacities[0] == "256000" and capacities[-1] == "8000000" and all(c.isdigit() for c in capacities)


def test_same_field_twice_and_wrong_output_suffix_are_errors(runner):
    twice = runner.invoke(
        main, ["sweep", "--vary", "memory.internal.capacity=1MB..2MB", "--vary", "memory.internal.capacity=1MB..3MB"]
    )
    assert twice.exit_code == 2 and "varied twice" in twice.output
    suffix = runner.invoke(main, ["sweep", "--vary", "memory.internal.capacity=1MB..2MB", "-o", "out.json"])
    assert suffix.exit_code == 2 and "use a .csv suffix" in suffix.output
    with pytest.raises(InputError):
        sweep.run(HAIRNET, HW, [])
