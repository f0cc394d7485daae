"""Sweeps of HairNet under the optimized policy on workers: speed-up over one, and what 10,000 points take.

Targets: two local workers at least 1.7x one on a sweep of 40+ points, a two-worker local Dask cluster at least
1.6x a serial run, and a 10,000-point sweep in under 4 minutes on a 2-core machine. Everything is measured in
the same run, wall time, worker start-up included (the Dask cluster's start-up is printed apart: an existing
cluster has paid it). The 10,000-point figure is projected from the CPU time of a sample of the grid (a few
bandwidths at capacities spread over its axis: the points of one capacity share their plans), unless --full runs
the whole sweep.

On a machine other people load, two workers get less than two cores, so the wall-time ratio says little about
hwsim. The CPU time each process spent is printed too (from psutil, which the cluster extra brings): the
caller's (costing, timing the first point of the sample, collecting rows) plus the busiest worker's is what the
sweep would take on two idle cores.

    python benchmarks/bench_parallel.py [--points 48] [--full] [--keep-gc] [--projection-only] [--whole-rows]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from hwsim import api
from hwsim.schedule.planner import plans_shared
from hwsim.studies import parallel, sweep

HW = api.load_hardware("paper-accelerator")
HAIRNET = api.load_network("hairnet")
BIG = ("memory.internal.capacity=64KB..64MB:log:100", "memory.external.bandwidth=0.1GB/s..100GB/s:log:100")
"""The grid of benchmarks/bench_sweep.py: 10,000 points."""
SAMPLE_ROWS, SAMPLE_PER_ROW = 8, 5
"""The sample of the big grid timed to project its CPU time: capacities spread over its axis, and bandwidths."""


def grid(points: int) -> list[sweep.Axis]:
    """About ``points`` points over the range where HairNet's optimized schedules fit: capacity x bandwidth."""
    side = max(1, round(points**0.5))
    return [
        sweep.parse_axis(f"memory.internal.capacity=512KB..8MB:log:{side}", HW),
        sweep.parse_axis(f"memory.external.bandwidth=0.5GB/s..32GB/s:log:{-(-points // side)}", HW),
    ]


def timed(axes: list[sweep.Axis], pool: parallel.Pool) -> tuple[float, sweep.SweepResult]:
    start = time.perf_counter()
    result = sweep.run(HAIRNET, HW, axes, policy="optimized", pool=pool)
    return time.perf_counter() - start, result


def projected_big_sweep() -> tuple[float, float, float, float]:
    """(CPU seconds a point, infeasible share, a capacity's once-only work, a point's own) over a sample of the
    10,000-point grid. Bandwidth varies fastest, and the points of one capacity share their plans and programs
    (:func:`hwsim.schedule.planner.plans_shared`, as :func:`sweep.schedule_points` shares them), made by whichever
    point first needs one: the lowest bandwidth makes the optimized plan, a higher one may make strict's. Each
    sampled point is scheduled twice: the second time is what it costs with its capacity's plans made (its own
    work); what the first took more was made once for the capacity. A capacity of the grid costs its once-only
    work plus a point's own work per bandwidth. (Counting the first time of every point but a capacity's first as
    its own, as this benchmark did before 2026-11-28, charged strict's plan, made at the sample's highest bandwidth,
    to a quarter of the grid's points: on main that projected 106 to 126 ms a point, where the 800 points of the
    sample's 8 capacities at all 100 bandwidths took 93 ms a point, and this projection 87 to 94 ms.)"""
    capacities, bandwidths = (sweep.parse_axis(text, HW) for text in BIG)
    base = sweep.cost_once(HAIRNET, HW, "optimized", "exact", 1, None)
    once, own, notes = [], [], []
    for i in np.linspace(0, len(capacities.values) - 1, SAMPLE_ROWS).astype(int):
        made = 0.0
        with plans_shared():
            for j in np.linspace(0, len(bandwidths.values) - 1, SAMPLE_PER_ROW).astype(int):
                point = {
                    capacities.field: np.array([float(capacities.values[i])]),
                    bandwidths.field: np.array([float(bandwidths.values[j])]),
                }
                start = time.process_time()
                notes += sweep.schedule_points(base, point)[1]
                first = time.process_time() - start
                start = time.process_time()
                sweep.schedule_points(base, point)
                again = time.process_time() - start
                own.append(again)
                made += max(first - again, 0.0)
        once.append(made)
    per_capacity, per_point = float(np.mean(once)), float(np.mean(own))
    projected = (per_capacity + len(bandwidths.values) * per_point) / len(bandwidths.values)
    return projected, sum(1 for n in notes if n) / len(notes), per_capacity, per_point


def whole_rows() -> float:
    """CPU seconds a point over every bandwidth of the sample's capacities, in grid order (plans shared along each
    capacity as a worker shares them): what :func:`projected_big_sweep` estimates, measured on 800 points."""
    capacities, bandwidths = (sweep.parse_axis(text, HW) for text in BIG)
    base = sweep.cost_once(HAIRNET, HW, "optimized", "exact", 1, None)
    start = time.process_time()
    for i in np.linspace(0, len(capacities.values) - 1, SAMPLE_ROWS).astype(int):
        with plans_shared():
            sweep.schedule_points(
                base,
                {
                    capacities.field: np.full(len(bandwidths.values), float(capacities.values[i])),
                    bandwidths.field: np.array(bandwidths.values, dtype=float),
                },
            )
    return (time.process_time() - start) / (SAMPLE_ROWS * len(bandwidths.values))


def project() -> None:
    """Print the 10,000-point projection (:func:`projected_big_sweep`)."""
    per_point, infeasible, per_capacity, own = projected_big_sweep()
    cores = parallel.available_cores()
    projected = 10_000 * per_point / cores
    print(
        f"10,000-point optimized sweep ({' x '.join(BIG)}): {per_point * 1e3:.0f} ms CPU a point (each point's own "
        f"{own * 1e3:.0f} ms, and {per_capacity * 1e3:.0f} ms once a capacity for its plans, over {SAMPLE_ROWS} x "
        f"{SAMPLE_PER_ROW} points; {infeasible:.0%} infeasible), so about {projected / 60:.1f} min on {cores} cores "
        f"(target 4 min)"
    )


def worker_cpu_times(dask: bool = False) -> list[float]:
    """CPU seconds so far of each worker process; nothing without psutil. Local workers are the children of the
    fork server this process started; a local Dask cluster's are this process's children started by spawn
    (its nannies run in this process)."""
    try:
        import psutil
    except ImportError:
        return []
    if dask:
        workers = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
    else:
        workers = [w for server in psutil.Process().children() for w in server.children()]
    return [sum(w.cpu_times()[:2]) for w in workers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=48)
    parser.add_argument("--full", action="store_true", help="run the whole 10,000-point sweep on every core")
    parser.add_argument(
        "--keep-gc", action="store_true", help="leave the Dask workers' heaps unfrozen, to see what freezing saves"
    )
    parser.add_argument(
        "--projection-only",
        action="store_true",
        help="only the 10,000-point projection: quick to alternate between two versions of hwsim on a busy machine",
    )
    parser.add_argument(
        "--whole-rows",
        action="store_true",
        help="after the projection, schedule the sample's capacities at every bandwidth (800 points) to check it",
    )
    args = parser.parse_args()
    if args.projection_only or args.whole_rows:
        project()
        if args.whole_rows:
            print(
                f"  measured over the sample's {SAMPLE_ROWS} capacities at every bandwidth: {whole_rows() * 1e3:.0f} ms"
            )
        return
    if args.keep_gc:
        parallel._settle = lambda: None  # sent to the Dask workers by value; local workers import their own
    axes = grid(args.points)
    size = sweep.grid_size(axes)

    print(f"load average {os.getloadavg()[0]:.1f} on {parallel.available_cores()} cores")
    start = time.process_time()
    serial_s, serial = timed(axes, parallel.Serial())
    serial_cpu = time.process_time() - start
    print(f"optimized sweep of HairNet, {size} points: serial {serial_s:.2f} s, {serial_cpu:.2f} s CPU")
    start = time.process_time()
    with parallel.opened(workers=2) as pool:
        two_s, two = timed(axes, pool)
        workers_cpu = worker_cpu_times()
    caller_cpu = time.process_time() - start
    assert two.rows.equals(serial.rows), "two workers must give the rows of a serial run"
    print(f"  2 local workers   {two_s:6.2f} s   {serial_s / two_s:.2f}x serial (target 1.7x), start-up included")
    if workers_cpu:
        idle = caller_cpu + max(workers_cpu)
        print(
            f"    CPU: caller {caller_cpu:.2f} s, workers {', '.join(f'{c:.2f}' for c in workers_cpu)} s: "
            f"on two idle cores about {idle:.2f} s, {serial_cpu / idle:.2f}x serial"
        )
    try:
        start = time.perf_counter()
        with parallel.opened(workers=2, dask=parallel.LOCAL) as cluster:
            started_s = time.perf_counter() - start
            start, ready = time.process_time(), worker_cpu_times(dask=True)  # the workers' start-up is not the sweep's
            dask_s, on_dask = timed(axes, cluster)
            caller_cpu = time.process_time() - start
            workers_cpu = [after - before for after, before in zip(worker_cpu_times(dask=True), ready)]
        assert on_dask.rows.equals(serial.rows), "a Dask cluster must give the rows of a serial run"
        print(
            f"  2-worker local Dask cluster {dask_s:6.2f} s   {serial_s / dask_s:.2f}x serial (target 1.6x); "
            f"starting the cluster took {started_s:.1f} s more"
        )
        if workers_cpu:
            idle = caller_cpu + max(workers_cpu)
            print(
                f"    CPU: caller and scheduler {caller_cpu:.2f} s, workers "
                f"{', '.join(f'{c:.2f}' for c in workers_cpu)} s: on two idle cores about {idle:.2f} s, "
                f"{serial_cpu / idle:.2f}x serial"
            )
    except Exception as err:  # the extra may be missing: the rest still stands
        print(f"  local Dask cluster: not measured ({err})")

    project()
    if args.full:
        big = [sweep.parse_axis(text, HW) for text in BIG]
        with parallel.opened() as pool:
            full_s, _ = timed(big, pool)
        print(f"  measured: {full_s / 60:.1f} min on {pool.workers} workers")


if __name__ == "__main__":
    main()
