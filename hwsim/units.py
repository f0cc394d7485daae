"""Quantities as people write them (``1 MB``, ``512 KiB``, ``1 GB/s``, ``10 GFLOPS``), parsed to SI numbers.

Decimal prefixes are powers of 1000 and binary ones (KiB, MiB, GiB) powers of 1024, as in the
paper's appendix, where 1 MB = 10^6 bytes. A bare number is taken in the base unit.
"""

from __future__ import annotations

import math
import re

_PREFIX = {
    "": 1.0,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}

# quantity kind -> accepted unit suffixes (after the prefix)
_UNITS = {
    "bytes": ("B", "byte", "bytes"),
    "bandwidth": ("B/s", "Bps"),
    "throughput": ("FLOPS", "FLOP/s", "OPS", "OP/s", "flops"),
}
_BASE = {"bytes": "B", "bandwidth": "B/s", "throughput": "op/s"}
MAX_QUANTITY = 1e30
"""Beyond any real machine; bounds the arithmetic so that no time, ratio or plot axis overflows."""
_EXAMPLES = {"bytes": "512 KiB, 1 MB", "bandwidth": "1 GB/s, 25.6 GiB/s", "throughput": "10 GFLOPS, 1 TFLOPS"}
_NOUN = {"bytes": "size", "bandwidth": "bandwidth", "throughput": "throughput"}
_DECIMAL, _BINARY = ("", "k", "M", "G", "T", "P"), ("Ki", "Mi", "Gi", "Ti")


def accepted_forms(kind: str) -> str:
    """Every unit a quantity of ``kind`` may be written in, for an error message.

    ``a size is a number and a unit: B, kB, MB, GB, TB, PB (powers of 1000) or KiB, MiB, GiB, TiB
    (powers of 1024); also byte or bytes for B, and K for k; a bare number is in B; e.g. 512 KiB, 1 MB``
    """
    main, *others = _UNITS[kind]
    decimal = ", ".join(prefix + main for prefix in _DECIMAL)
    if kind == "throughput":  # binary prefixes parse, but nobody counts operations in powers of 1024
        forms = f"{decimal} (powers of 1000), or the same with {', '.join(others[:-1])} or {others[-1]}"
    else:
        binary = ", ".join(prefix + main for prefix in _BINARY)
        forms = f"{decimal} (powers of 1000) or {binary} (powers of 1024); also {' or '.join(others)} for {main}"
    return (
        f"a {_NOUN[kind]} is a number and a unit: {forms}, and K for k; "
        f"a bare number is in {_BASE[kind]}; e.g. {_EXAMPLES[kind]}"
    )


_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z/]*)\s*$")


def parse_quantity(value: object, kind: str) -> float:
    """Parse ``value`` as a quantity of ``kind`` (bytes, bandwidth, throughput); must be positive."""
    if isinstance(value, bool):
        raise ValueError(f"expected a {_NOUN[kind]} such as {_EXAMPLES[kind]}, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match:
            if value.strip().startswith("-"):
                raise ValueError(f"must be positive, got {value!r}")
            raise ValueError(f"expected a {_NOUN[kind]} such as {_EXAMPLES[kind]}, got {value!r}")
        number_text, unit = match.groups()
        number = float(number_text) * _unit_scale(unit, kind, value)
    else:
        raise ValueError(f"expected a {_NOUN[kind]} such as {_EXAMPLES[kind]}, got {value!r}")
    if not number > 0:
        raise ValueError(f"must be positive, got {value!r}")
    if not math.isfinite(number) or number > MAX_QUANTITY:
        raise ValueError(f"must be finite and at most {MAX_QUANTITY:.0e}, got {value!r}")
    if number < 1:
        raise ValueError(f"must be at least 1 {_BASE[kind]}, got {value!r}")
    return number


def _unit_scale(unit: str, kind: str, original: str) -> float:
    if unit == "":
        return 1.0
    for suffix in _UNITS[kind]:
        if unit.endswith(suffix) and unit[: -len(suffix)] in _PREFIX:
            return _PREFIX[unit[: -len(suffix)]]
    raise ValueError(f"unknown unit {unit!r} in {original!r}; {accepted_forms(kind)}")


def format_quantity(value: float, unit: str) -> str:
    """``1.5e9, 'B/s'`` -> ``'1.5 GB/s'`` (decimal prefixes, 3 significant digits)."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def format_duration(seconds: float) -> str:
    """``0.01233`` -> ``'12.33 ms'``: the unit (s, ms, µs, ns) that puts 1 to 999 before it, 4 significant digits."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"
