"""The paper policy vectorised over many hardware points at once: the fast path of :mod:`hwsim.studies.sweep`.

Same steps (:func:`hwsim.schedule.paper.paper_steps`), same placement rule (a map is internal when
it alone fits; the input image is internal; weights are always loaded) and the same timing
(transfer bytes / bandwidth + ops / throughput, summed over steps) as
:func:`hwsim.schedule.paper.schedule_paper`, with one NumPy array of points per quantity instead of
one Python object per step. Bytes equal those of :func:`hwsim.api.estimate` exactly and times to
rounding (tests/test_sweep.py checks sampled points), at a few microseconds per point instead of milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from hwsim.model.graph import INPUT
from hwsim.schedule.energy import operands
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.program import compute_reads
from hwsim.spec.energy import EnergySpec, energy_table, internal_j_per_byte

if TYPE_CHECKING:
    from hwsim.studies.sweep import Costed

FAST_POLICIES = frozenset({"paper"})
"""Policies computed here. The paper policy never lacks internal memory (a map that does not fit is
external); a point is infeasible only when external memory cannot hold what the run keeps there."""
SCHEDULE_METRICS = (
    "total_s",
    "transfer_s",
    "compute_s",
    "bytes_moved",
    "images_per_s",
    "energy_j",
    "energy_compute_j",
    "energy_internal_j",
    "energy_external_j",
    "energy_static_j",
    "energy_per_image_j",
    "edp_js",
)
"""What a schedule gives at each point; :mod:`hwsim.studies.sweep` adds the lower bound and efficiency."""
CHUNK = 2048
"""Points per progress report."""


def evaluate(
    base: Costed, points: dict[str, np.ndarray], on_progress: Callable[[int], None] | None = None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """:data:`SCHEDULE_METRICS` at every point (dotted field path -> values), in chunks, and a note per
    point: empty, or why the point is infeasible (then its metrics are NaN)."""
    n = len(next(iter(points.values())))
    parts = []
    computes = _computes(base)
    for start in range(0, n, CHUNK):
        chunk = {field: values[start : start + CHUNK] for field, values in points.items()}
        parts.append(_evaluate_chunk(base, chunk, computes))
        if on_progress:
            on_progress(len(next(iter(chunk.values()))))
    metrics = {metric: np.concatenate([p[metric] for p in parts]) for metric in parts[0]}
    return metrics, _external_capacity_notes(base, points, metrics)


def _field(points: dict[str, np.ndarray], path: str, value: float) -> np.ndarray | float:
    """The swept values of ``path`` if it is swept, else the profile's own value."""
    return points.get(path, value)


def _computes(base: Costed) -> tuple[float, float, float]:
    """What the computes cost and read and write in internal memory, which no swept field changes: the
    paper policy computes every layer whole, reading what :func:`compute_reads` says, as the schedule does."""
    table = energy_table(base.hardware, base.precision)
    compute_j = read = written = 0.0
    layers = operands(base.costs)
    for c in base.costs:
        macs = c.ops * layers.macs_per_op[c.name]
        compute_j += macs * table.mac_j[c.unit] + max(c.ops - 2 * macs, 0.0) * table.op_j[c.unit]
        h, _, ch = c.layer.output_shape
        read += sum(layers.region_bytes(r, None) for r in compute_reads(c, (0, h), (0, ch)))
        written += c.output_bytes
    return compute_j, read, written


def _evaluate_chunk(
    base: Costed, points: dict[str, np.ndarray], computes: tuple[float, float, float]
) -> dict[str, np.ndarray]:
    hw = base.hardware
    n = len(next(iter(points.values())))
    capacity = np.broadcast_to(_field(points, "memory.internal.capacity", hw.memory.internal.capacity), n)
    bandwidth = _field(points, "memory.external.bandwidth", hw.memory.external.bandwidth)
    throughput = {
        unit: _field(points, f"compute.{unit}.throughput", spec.throughput) for unit, spec in hw.compute.items()
    }

    table = energy_table(hw, base.precision)
    read_j, write_j = internal_j_per_byte((hw.energy or EnergySpec()).internal, capacity)
    compute_j, compute_read, compute_written = computes

    total = transfer = compute = np.zeros(n)
    moved = stored = np.zeros(n, dtype=np.int64)
    for group in paper_steps(base.graph, base.costs):
        first, last = group[0], group[-1]
        step_bytes = np.zeros(n, dtype=np.int64)
        for name, size in zip(first.layer.inputs, first.input_bytes):
            if name != INPUT:
                step_bytes = step_bytes + np.where(size <= capacity, 0, size)
        step_bytes = step_bytes + sum(c.weight_bytes for c in group)
        step_stored = np.where(last.output_bytes <= capacity, 0, last.output_bytes)
        step_bytes = step_bytes + step_stored
        stored = stored + step_stored
        step_transfer = step_bytes / bandwidth
        step_compute: np.ndarray | float = 0
        for c in group:
            step_compute = step_compute + c.ops / throughput[c.unit]
        total = total + (step_transfer + step_compute)
        transfer = transfer + step_transfer
        compute = compute + step_compute
        moved = moved + step_bytes
    batch = base.batch
    images = np.divide(batch, total, out=np.full(n, np.inf), where=total > 0)
    # every byte moved is written to internal memory (loaded) or read from it (stored), besides the computes' own
    internal_j = (compute_read + stored) * read_j + (compute_written + (moved - stored)) * write_j
    external_j = moved * table.external_j_per_byte
    static_j = table.static_w * total
    energy = compute_j + internal_j + external_j + static_j
    return {
        "total_s": total,
        "transfer_s": transfer,
        "compute_s": compute,
        "bytes_moved": moved,
        "images_per_s": images,
        "energy_j": energy,
        "energy_compute_j": np.full(n, compute_j),
        "energy_internal_j": np.broadcast_to(internal_j, n).astype(float),
        "energy_external_j": external_j,
        "energy_static_j": static_j,
        "energy_per_image_j": energy / batch,
        "edp_js": energy / batch * total / batch,
        "stored_bytes": stored,
    }


def _external_capacity_notes(base: Costed, points: dict[str, np.ndarray], metrics: dict[str, np.ndarray]) -> list[str]:
    """The check of :func:`hwsim.api.estimate`: weights, input images and every stored map (the
    footprint of :func:`hwsim.api.external_footprint_bytes`) must fit the external memory, if it is bounded.
    Where they do not, the metrics become NaN and the note says so, in the words of ``api.estimate``."""
    stored = metrics.pop("stored_bytes")
    n = len(stored)
    capacity = points.get("memory.external.capacity", base.hardware.memory.external.capacity)
    if capacity is None:
        return [""] * n
    costs = base.costs
    fixed = sum(c.weight_bytes for c in costs) + sum(
        size for c in costs for name, size in zip(c.layer.inputs, c.input_bytes) if name == INPUT
    )
    needed = fixed + stored
    over = needed > np.broadcast_to(capacity, n)
    if not over.any():
        return [""] * n
    for metric in SCHEDULE_METRICS:
        metrics[metric] = np.where(over, np.nan, metrics[metric])
    capacities = np.broadcast_to(capacity, n)
    notes = [""] * n
    for i in np.flatnonzero(over):
        notes[i] = (
            f"memory.external.capacity: {base.graph.name} with policy {base.policy} keeps up to {int(needed[i]):,} B "
            f"in external memory (weights, images and stored maps), more than its capacity of {capacities[i]:,.0f} B"
        )
    return notes
