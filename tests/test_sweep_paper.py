"""The vectorised paper policy of sweeps is the paper policy: on random networks and hardware points,
every metric equals what estimate() schedules, to the last bit, and so do its refusals."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schedule_helpers import hardware, networks

from hwsim.errors import InputError
from hwsim.estimate import estimate
from hwsim.model.graph import Graph
from hwsim.studies import sweep, sweep_paper
from tests.schedule_helpers import assert_sweep_metric

FIELDS = {
    "memory.internal.capacity": st.sampled_from([500.0, 1_000.0, 2_000.0, 4_096.0, 3e4, 1e6]),
    "compute.matrix.throughput": st.floats(1e8, 1e13),
    "compute.vector.throughput": st.floats(1e7, 1e11),
    "memory.external.bandwidth": st.floats(1e6, 1e12),
    "memory.external.capacity": st.sampled_from([5e3, 2e4, 1e5, 1e7]),
}


@st.composite
def grids(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """A few points over the internal capacity (which places the maps) and a random subset of the other fields."""
    others = draw(st.lists(st.sampled_from([f for f in FIELDS if f != "memory.internal.capacity"]), unique=True))
    fields = ["memory.internal.capacity", *others]
    size = draw(st.integers(1, 4))
    return {f: np.array(draw(st.lists(FIELDS[f], min_size=size, max_size=size))) for f in fields}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), grids(), st.sampled_from([1, 2, 5]))
def test_every_point_equals_the_scheduled_paper_policy_exactly(graph: Graph, points, batch: int) -> None:
    base = sweep.cost_once(graph, hardware(1e6), "paper", "exact", batch, None)
    metrics, notes = sweep_paper.evaluate(base, points)
    for i in range(len(notes)):
        hw = sweep.variant(base.hardware, {f: float(values[i]) for f, values in points.items()})
        try:
            summary = estimate(graph, hw, "paper", batch=batch).summary()
        except InputError as refusal:
            assert notes[i] == str(refusal)
            assert all(np.isnan(metrics[m][i]) for m in sweep_paper.SCHEDULE_METRICS)
            continue
        assert notes[i] == ""
        for metric in sweep_paper.SCHEDULE_METRICS:
            assert_sweep_metric(metric, metrics[metric][i], summary[sweep.SUMMARY_KEYS[metric]], i)
