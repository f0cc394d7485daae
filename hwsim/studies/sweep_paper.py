"""The paper policy vectorised over many hardware points at once: the fast path of :mod:`hwsim.studies.sweep`.

The steps (:func:`hwsim.schedule.paper.paper_steps`), what each may move and the placement that
decides whether it does (:func:`hwsim.schedule.paper.crosses_bus`) are the paper policy's own,
evaluated on one NumPy array of points instead of one capacity. Its serial timing is replayed here
in the program's order, with the same arithmetic, so every metric equals :func:`hwsim.estimate.estimate`'s
exactly (tests/test_sweep_paper.py checks random networks and points) at a few microseconds per
point instead of milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from hwsim.cost.coding import link_bytes
from hwsim.estimate import external_capacity_error, fixed_external_bytes
from hwsim.schedule.energy import operands
from hwsim.schedule.paper import Move, crosses_bus, loads, paper_steps, store
from hwsim.schedule.program import compute_reads, link_ratios
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
    """Every metric at every point: the events of :func:`hwsim.schedule.paper.schedule_paper` that
    take time, timed one after another as :func:`hwsim.schedule.program.finish` times them serially
    (a load or store: its bytes over the bandwidth; a compute: its ops over its unit's throughput)."""
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

    link = link_ratios(base.costs)  # a map the link codes moves its coded bytes over it, its own on chip

    def wire(move: Move) -> int:
        return link_bytes(move.bytes, link[move.tensor]) if move.tensor in link else move.bytes

    clock = total = transfer = compute = np.zeros(n)
    moved = stored = on_chip = stored_on_chip = np.zeros(n, dtype=np.int64)
    for group in paper_steps(base.graph, base.costs):
        start = clock
        step_bytes = step_on_chip = np.zeros(n, dtype=np.int64)
        for move in loads(group):
            crosses = crosses_bus(move, capacity)
            size = np.where(crosses, wire(move), 0)
            clock = clock + size / bandwidth
            step_bytes = step_bytes + size
            step_on_chip = step_on_chip + np.where(crosses, move.bytes, 0)
        step_compute = np.zeros(n)
        for c in group:
            end = clock + c.ops / throughput[c.unit]
            step_compute = step_compute + (end - clock)
            clock = end
        output = store(group)
        crosses = crosses_bus(output, capacity)
        step_stored = np.where(crosses, wire(output), 0)
        clock = clock + step_stored / bandwidth
        step_bytes = step_bytes + step_stored
        total = total + (clock - start)
        transfer = transfer + step_bytes / bandwidth
        compute = compute + step_compute
        moved = moved + step_bytes
        stored = stored + step_stored
        step_stored_on_chip = np.where(crosses, output.bytes, 0)
        on_chip = on_chip + step_on_chip + step_stored_on_chip
        stored_on_chip = stored_on_chip + step_stored_on_chip
    batch = base.batch
    images = np.divide(batch, total, out=np.full(n, np.inf), where=total > 0)
    # every byte moved is written to internal memory (loaded) or read from it (stored), at its size on chip, besides
    # the computes' own; the link carries its coded bytes
    internal_j = (compute_read + stored_on_chip) * read_j + (compute_written + (on_chip - stored_on_chip)) * write_j
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
    """The check of :func:`hwsim.estimate.estimate` at every point: weights, input images and every
    stored map must fit the external memory, if it is bounded. Where they do not, the metrics become
    NaN and the note is the error ``estimate`` raises."""
    stored = metrics.pop("stored_bytes")
    n = len(stored)
    capacity = points.get("memory.external.capacity", base.hardware.memory.external.capacity)
    if capacity is None:
        return [""] * n
    needed = fixed_external_bytes(base.costs) + stored
    capacities = np.broadcast_to(capacity, n)
    over = needed > capacities
    if not over.any():
        return [""] * n
    for metric in SCHEDULE_METRICS:
        metrics[metric] = np.where(over, np.nan, metrics[metric])
    notes = [""] * n
    for i in np.flatnonzero(over):
        notes[i] = str(external_capacity_error(base.graph.name, base.policy, int(needed[i]), float(capacities[i])))
    return notes
