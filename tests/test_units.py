from __future__ import annotations

import pytest

from hwsim.units import parse_quantity


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("1 MB", "bytes", 1e6),
        ("512 KiB", "bytes", 512 * 1024),
        ("2MiB", "bytes", 2 * 2**20),
        ("1 GB/s", "bandwidth", 1e9),
        ("25.6 GiB/s", "bandwidth", 25.6 * 2**30),
        ("10 GFLOPS", "throughput", 1e10),
        ("1 TFLOPS", "throughput", 1e12),
        ("4 TOPS", "throughput", 4e12),
        (1024, "bytes", 1024.0),
    ],
)
def test_parses_units_people_write(text, kind, value) -> None:
    assert parse_quantity(text, kind) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("-1 GB/s", "bandwidth", "must be positive"),
        ("0 MB", "bytes", "must be positive"),
        (0, "throughput", "must be positive"),
        ("1 GB", "bandwidth", "unknown unit 'GB'"),
        ("1 furlong", "bytes", "unknown unit"),
        ("fast", "throughput", "expected a throughput"),
        (True, "bytes", "expected a size"),
        ("1 MBB", "bytes", r"a size is a number and a unit: B, kB, MB, GB, TB, PB \(powers of 1000\) or KiB"),
        ("2 TFLOPs", "throughput", "FLOPS, kFLOPS, MFLOPS, GFLOPS, TFLOPS, PFLOPS"),
    ],
)
def test_rejects_bad_quantities(text, kind, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_quantity(text, kind)


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (float("inf"), "bandwidth", "must be finite"),
        (float("nan"), "throughput", "must be positive"),
        ("1e400 GB/s", "bandwidth", "must be finite"),
        (1.0e-320, "bandwidth", "must be at least 1 B/s"),
        ("0.5 B", "bytes", "must be at least 1 B"),
    ],
)
def test_rejects_quantities_no_machine_has(value, kind, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_quantity(value, kind)
