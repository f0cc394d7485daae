"""``hwsim calibrate``: measure this machine into a hardware profile, so validation runs wherever hwsim does.

What is measured, with NumPy on the CPU that runs hwsim (best of a few runs; the machine may be shared):

- GEMM throughput per precision: ``a @ a`` on square matrices, 2 n^3 ops (fp32 through BLAS; fp16 and int8
  through NumPy's own loops, much slower, reported beside the fp32 profile);
- element-wise throughput: ``np.add`` and ``np.multiply`` on float32 arrays that fit the L2 cache;
- memory bandwidth: ``np.copyto`` of 64 MB float32 arrays, bytes read plus bytes written;
- the fixed cost of one layer of the NumPy reference: its forward through a chain of ReLUs on a 1x1x8
  map, per layer (Python and NumPy dispatch; the arithmetic is negligible);
- cache sizes, from ``/sys/devices/system/cpu/cpu0/cache`` (Linux).

The profile (:func:`host_profile`) writes the fp32 figures: the matrix unit's throughput is the GEMM's,
the vector unit's the element-wise one, both paying the reference's per-layer cost as ``dispatch``; the
internal memory is the largest cache private to a core (L2; a shared L3, of which a virtual machine may
see only a share, is named in a comment), the external bandwidth the copy's. Every value is measured,
none fitted to a validation case.
"""

from __future__ import annotations

import datetime
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.model.expand import build_graph
from hwsim.reference import Model
from hwsim.spec.network import NetworkSpec
from hwsim.spec.validate import validate as validate_spec
from hwsim.spec.yamlio import Document

CACHES = Path("/sys/devices/system/cpu/cpu0/cache")
DISPATCH_LAYERS = 64


def best_of(run: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs after a warm-up: the least disturbed on a shared machine."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_ops_per_s(dtype: str, n: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    a = (rng.integers(-8, 8, (n, n)) if dtype == "int8" else rng.standard_normal((n, n))).astype(dtype)
    return 2 * n**3 / best_of(lambda: a @ a, repeats)


def elementwise_ops_per_s(repeats: int, elements: int = 64 * 1024) -> float:
    """Ops per second of float32 adds and multiplies on arrays that stay in the L2 cache (3 x 256 kB)."""
    a, b = np.ones(elements, np.float32), np.full(elements, 0.5, np.float32)
    out = np.empty_like(a)

    def run() -> None:
        for _ in range(16):
            np.add(a, b, out=out)
            np.multiply(out, b, out=out)

    return 32 * elements / best_of(run, repeats)


def copy_bytes_per_s(repeats: int, size: int = 64 * 2**20) -> float:
    """Bytes read plus bytes written per second by ``np.copyto`` of arrays far larger than any private cache."""
    src = np.ones(size // 4, np.float32)
    dst = np.empty_like(src)
    return 2 * size / best_of(lambda: np.copyto(dst, src), repeats)


def layer_dispatch_s(repeats: int) -> float:
    """The NumPy reference's fixed cost per layer: a forward through :data:`DISPATCH_LAYERS` ReLUs on 1x1x8."""
    spec = {"name": "relus", "input": [1, 1, 8], "layers": [{"op": "relu"}] * DISPATCH_LAYERS}
    doc = Document("<calibrate>", spec)
    model = Model(build_graph(validate_spec(NetworkSpec, spec, doc), doc))
    x = np.ones((1, 1, 1, 8), np.float32)
    return best_of(lambda: model.forward(x), repeats) / DISPATCH_LAYERS


def cache_sizes(folder: Path = CACHES) -> dict[str, int]:
    """``{"L1d": ..., "L2": ..., "L3": ...}`` in bytes, as Linux reports cpu0's caches (empty elsewhere)."""
    sizes = {}
    for index in sorted(folder.glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        if kind == "Instruction":
            continue
        scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(size[-1], 1)
        sizes[f"L{level}{'d' if kind == 'Data' else ''}"] = int(size.rstrip("KMG")) * scale
    return sizes


@dataclass(frozen=True)
class Host:
    """What :func:`measure` found."""

    gemm_ops_per_s: dict[str, float]
    elementwise_ops_per_s: float
    memory_bytes_per_s: float
    dispatch_s: float
    caches: dict[str, int]

    @property
    def private_cache_bytes(self) -> int:
        """The largest cache private to a core (L2, else L1d); 1 MiB when the OS does not say."""
        return self.caches.get("L2") or self.caches.get("L1d") or 2**20


def measure(repeats: int = 3) -> Host:
    """Measure this machine (about two seconds)."""
    return Host(
        gemm_ops_per_s={
            "fp32": gemm_ops_per_s("float32", 1024, repeats),
            "fp16": gemm_ops_per_s("float16", 128, repeats),
            "int8": gemm_ops_per_s("int8", 128, repeats),
        },
        elementwise_ops_per_s=elementwise_ops_per_s(repeats),
        memory_bytes_per_s=copy_bytes_per_s(repeats),
        dispatch_s=layer_dispatch_s(repeats),
        caches=cache_sizes(),
    )


def host_profile(host: Host, name: str = "host") -> str:
    """The measured host as a hardware profile (YAML), every value's measurement in a comment."""
    caches = ", ".join(f"{level} {size / 1024:g} KiB" for level, size in host.caches.items()) or "not reported"
    gemm = ", ".join(f"{p} {v / 1e9:.3g} GOPS" for p, v in host.gemm_ops_per_s.items())
    machine = " ".join(filter(None, (platform.machine(), platform.processor()))) or "unknown"
    return f"""\
# This machine, measured by `hwsim calibrate` on {datetime.date.today().isoformat()} ({machine}).
# Every value is measured (hwsim/studies/calibrate.py says how), none fitted to a validation case.
#  - GEMM with NumPy, best of a few runs: {gemm} (the profile is fp32, as the NumPy reference runs)
#  - element-wise float32 add and multiply in cache: {host.elementwise_ops_per_s / 1e9:.3g} GOPS
#  - memory bandwidth, np.copyto of 64 MB (read + write): {host.memory_bytes_per_s / 1e9:.3g} GB/s
#  - the NumPy reference's fixed cost per layer: {host.dispatch_s * 1e6:.3g} us
#  - caches (cpu0): {caches}; the internal memory is the largest one private to a core
name: {name}
description: this machine as the NumPy reference uses it (measured)
memory:
  internal: {{capacity: {host.private_cache_bytes} B}}
  external: {{bandwidth: {host.memory_bytes_per_s:.6g} B/s}}
compute:
  matrix: {{throughput: {host.gemm_ops_per_s["fp32"]:.6g} OPS, dispatch: {host.dispatch_s * 1e6:.6g} us}}
  vector: {{throughput: {host.elementwise_ops_per_s:.6g} OPS, dispatch: {host.dispatch_s * 1e6:.6g} us}}
precision: fp32
"""
