"""The paper policy vectorised over many hardware points at once: the fast path of :mod:`hwsim.sweep`.

Same steps (:func:`hwsim.schedule.paper.paper_steps`), same placement rule (a map is internal when
it alone fits; the input image is internal; weights are always loaded) and the same timing
(transfer bytes / bandwidth + ops / throughput, summed over steps) as
:func:`hwsim.schedule.paper.schedule_paper`, with one NumPy array of points per quantity instead of
one Python object per step. Bytes equal those of :func:`hwsim.api.estimate` exactly and times to
rounding (tests/test_sweep.py checks sampled points), at a few microseconds per point instead of milliseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from hwsim.graph import INPUT
from hwsim.schedule.paper import paper_steps

if TYPE_CHECKING:
    from hwsim.api import Estimate

FAST_POLICIES = frozenset({"paper"})
CHUNK = 2048
"""Points per progress report."""


def evaluate(base: "Estimate", points: dict[str, np.ndarray], on_progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Latency, its parts and bytes moved at every point (dotted field path -> values), in chunks."""
    n = len(next(iter(points.values())))
    parts = []
    for start in range(0, n, CHUNK):
        chunk = {field: values[start:start + CHUNK] for field, values in points.items()}
        parts.append(_evaluate_chunk(base, chunk))
        if on_progress:
            on_progress(len(next(iter(chunk.values()))))
    return {metric: np.concatenate([p[metric] for p in parts]) for metric in parts[0]}


def _field(points: dict[str, np.ndarray], path: str, value: float) -> np.ndarray | float:
    """The swept values of ``path`` if it is swept, else the profile's own value."""
    return points.get(path, value)


def _evaluate_chunk(base: "Estimate", points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    hw = base.hardware
    n = len(next(iter(points.values())))
    capacity = np.broadcast_to(_field(points, "memory.internal.capacity", hw.memory.internal.capacity), n)
    bandwidth = _field(points, "memory.external.bandwidth", hw.memory.external.bandwidth)
    throughput = {unit: _field(points, f"compute.{unit}.throughput", spec.throughput) for unit, spec in hw.compute.items()}

    total = transfer = compute = np.zeros(n)
    moved = np.zeros(n, dtype=np.int64)
    for group in paper_steps(base.graph, base.costs):
        first, last = group[0], group[-1]
        step_bytes = np.zeros(n, dtype=np.int64)
        for name, size in zip(first.layer.inputs, first.input_bytes):
            if name != INPUT:
                step_bytes = step_bytes + np.where(size <= capacity, 0, size)
        step_bytes = step_bytes + sum(c.weight_bytes for c in group)
        step_bytes = step_bytes + np.where(last.output_bytes <= capacity, 0, last.output_bytes)
        step_transfer = step_bytes / bandwidth
        step_compute: np.ndarray | float = 0
        for c in group:
            step_compute = step_compute + c.ops / throughput[c.unit]
        total = total + (step_transfer + step_compute)
        transfer = transfer + step_transfer
        compute = compute + step_compute
        moved = moved + step_bytes
    batch = base.schedule.batch
    images = np.divide(batch, total, out=np.full(n, np.inf), where=total > 0)
    return {"total_s": total, "transfer_s": transfer, "compute_s": compute, "bytes_moved": moved, "images_per_s": images}
