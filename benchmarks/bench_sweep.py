"""A 10,000-point sweep of HairNet on the paper's accelerator: configurations per second, and its heatmap.

The baseline, measured in the same run, is the same kind of points through plain ``api.estimate``
(one hardware variant and one full estimate per point), on a subset because it is much slower.
Drawing the sweep's heatmap is timed too: a large grid must stay a quick, bounded picture.

    python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hwsim import api
from hwsim.report import plots
from hwsim.studies import sweep

BASELINE_POINTS = 100


def main() -> None:
    graph, hardware = api.load_network("hairnet"), api.load_hardware("paper-accelerator")
    axes = [
        sweep.parse_axis("memory.internal.capacity=64KB..64MB:log:100", hardware),
        sweep.parse_axis("memory.external.bandwidth=0.1GB/s..100GB/s:log:100", hardware),
    ]
    start, cpu = time.perf_counter(), time.process_time()
    result = sweep.run(graph, hardware, axes)
    fast_s, fast_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert {"lower_bound_s", "efficiency"} <= set(result.rows.columns)  # the rate includes the bound per point

    sample = result.rows.iloc[:: len(result.rows) // BASELINE_POINTS]
    start, cpu = time.perf_counter(), time.process_time()
    for row in sample.itertuples(index=False):
        api.estimate(
            graph, sweep.variant(hardware, {"memory.internal.capacity": row[0], "memory.external.bandwidth": row[1]})
        )
    baseline_s, baseline_cpu = time.perf_counter() - start, time.process_time() - cpu

    fast_rate, baseline_rate = len(result.rows) / fast_s, len(sample) / baseline_s
    print(
        f"sweep:        {len(result.rows):>6} configurations in {fast_s:6.3f} s  = {fast_rate:>9,.0f} configurations/s"
        f"  ({fast_cpu:.3f} s CPU: {len(result.rows) / fast_cpu:,.0f}/s)"
    )
    print(
        f"api.estimate: {len(sample):>6} configurations in {baseline_s:6.3f} s  "
        f"= {baseline_rate:>9,.0f} configurations/s  ({baseline_cpu:.3f} s CPU)"
    )
    print(
        f"speed-up {fast_rate / baseline_rate:,.0f}x; "
        f"10,000 points {'within' if fast_s < 10 else 'OVER'} the 10 s budget"
    )
    start = time.perf_counter()
    plots.save(plots.sweep_figure(result), Path(tempfile.mkdtemp()) / "sweep.png")
    print(f"heatmap of the {len(result.rows):,} points: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
