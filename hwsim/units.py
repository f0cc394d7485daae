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
    "frequency": ("Hz",),
}
_BASE = {"bytes": "B", "bandwidth": "B/s", "throughput": "op/s", "frequency": "Hz"}
MAX_QUANTITY = 1e30
"""Beyond any real machine; bounds the arithmetic so that no time, ratio or plot axis overflows."""
_EXAMPLES = {
    "bytes": "512 KiB, 1 MB",
    "bandwidth": "1 GB/s, 25.6 GiB/s",
    "throughput": "10 GFLOPS, 1 TFLOPS",
    "frequency": "700 MHz, 1.5 GHz",
}
_NOUN = {"bytes": "size", "bandwidth": "bandwidth", "throughput": "throughput", "frequency": "frequency"}
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
    elif not others:  # a frequency: Hz alone, and nobody counts cycles in powers of 1024
        forms = f"{decimal} (powers of 1000)"
    else:
        binary = ", ".join(prefix + main for prefix in _BINARY)
        forms = f"{decimal} (powers of 1000) or {binary} (powers of 1024); also {' or '.join(others)} for {main}"
    return (
        f"a {_NOUN[kind]} is a number and a unit: {forms}, and K for k; "
        f"a bare number is in {_BASE[kind]}; e.g. {_EXAMPLES[kind]}"
    )


_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z/]*)\s*$")


def parse_quantity(value: object, kind: str) -> float:
    """Parse ``value`` as a quantity of ``kind`` (bytes, bandwidth, throughput, frequency); must be positive."""
    if isinstance(value, bool):
        raise ValueError(f"expected a {_NOUN[kind]} such as {_EXAMPLES[kind]}, got {value!r}")
    if isinstance(value, int) and abs(value) > MAX_QUANTITY:  # float() of a huge int raises OverflowError
        bound = "must be positive" if value < 0 else f"must be finite and at most {MAX_QUANTITY:.0e}"
        raise ValueError(f"{bound}, got {_abridged(value)}")
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


def _abridged(value: int) -> str:
    """A huge integer as its size (``str()`` of one beyond 4,300 digits raises)."""
    return f"an integer of about {abs(value).bit_length() * 0.30103:,.0f} digits"


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


# Physical quantities for the energy and area model: small values (3.7 pJ, 50 mW, 0.01 mm2) are normal
# here, so these kinds take the sub-unit prefixes and allow zero, and have a parser of their own.
_SUB_PREFIX = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}
_PHYSICAL = {
    # kind -> (suffix -> scale of the base unit), longest suffixes first so ``J/bit`` is not read as ``J``
    "energy": {"J": 1.0},
    "energy_per_byte": {"J/bit": 8.0, "J/byte": 1.0, "J/B": 1.0},
    "power": {"W": 1.0},
    "length": {"m": 1.0},
    "area": {"m2": 1.0},
    "time": {"s": 1.0},
}
_PHYSICAL_BASE = {"energy": "J", "energy_per_byte": "J/B", "power": "W", "length": "m", "area": "m2", "time": "s"}
_PHYSICAL_EXAMPLES = {
    "energy": "3.7 pJ, 0.2 nJ",
    "energy_per_byte": "20 pJ/B, 8 pJ/bit",
    "power": "50 mW, 1.5 W",
    "length": "45 nm, 65 nm",
    "area": "0.01 mm2, 4000 um2",
    "time": "5 us, 1.2 ms",
}
_PHYSICAL_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z/0-9]*)\s*$")


def parse_physical(value: object, kind: str) -> float:
    """Parse ``value`` as an ``energy``, ``energy_per_byte``, ``power``, ``length``, ``area`` or ``time`` in SI
    base units (J, J/B, W, m, m², s); zero is allowed. ``µ`` may stand for ``u`` and ``²`` for ``2``: ``4000 µm²``."""
    examples = _PHYSICAL_EXAMPLES[kind]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected {_named(kind)} such as {examples}, got {value!r}")
    if isinstance(value, str):
        text = value.replace("µ", "u").replace("²", "2")
        match = _PHYSICAL_QUANTITY.match(text)
        if not match:
            if text.strip().startswith("-"):
                raise ValueError(f"must not be negative, got {value!r}")
            raise ValueError(f"expected {_named(kind)} such as {examples}, got {value!r}")
        number = float(match[1]) * _physical_scale(match[2], kind, value)
    elif isinstance(value, int) and abs(value) > MAX_QUANTITY:  # float() of a huge int raises OverflowError
        bound = "must not be negative" if value < 0 else f"must be finite and at most {MAX_QUANTITY:.0e}"
        raise ValueError(f"{bound}, got {_abridged(value)}")
    else:
        number = float(value)
    if not math.isfinite(number) or number > MAX_QUANTITY:
        raise ValueError(f"must be finite and at most {MAX_QUANTITY:.0e}, got {value!r}")
    if number < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return number


def _physical_scale(unit: str, kind: str, original: str) -> float:
    if unit == "":
        return 1.0
    for suffix, scale in _PHYSICAL[kind].items():
        prefix = unit[: -len(suffix)]
        if unit.endswith(suffix) and prefix in _SUB_PREFIX:
            # a prefix scales the unit it stands before: 1 mm2 is (1e-3 m)^2
            return scale * _SUB_PREFIX[prefix] ** (2 if kind == "area" else 1)
    raise ValueError(
        f"unknown unit {unit!r} in {original!r}; {_named(kind)} is written like {_PHYSICAL_EXAMPLES[kind]}"
    )


def _named(kind: str) -> str:
    """``an energy``, ``a power``: the kind as a sentence names it."""
    words = kind.replace("_", " ")
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def _format_scaled(value: float, units: tuple[tuple[float, str], ...]) -> str:
    """``value`` in the first of ``units`` (largest first) that puts at least 1 before it, else the last one;
    4 significant digits."""
    if value == 0:
        return f"0 {units[0][1]}"
    for scale, unit in units[:-1]:
        if abs(value) >= scale:
            return f"{value / scale:.4g} {unit}"
    scale, unit = units[-1]
    return f"{value / scale:.4g} {unit}"


def format_duration(seconds: float) -> str:
    """``0.01233`` -> ``'12.33 ms'``: the unit (s, ms, µs, ns) that puts 1 to 999 before it, 4 significant digits."""
    return _format_scaled(seconds, ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")))


def format_energy(joules: float) -> str:
    """``0.00768`` -> ``'7.68 mJ'``: the unit (J, mJ, µJ, nJ, pJ) that puts 1 to 999 before it, 4 significant digits."""
    return _format_scaled(joules, ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ")))
