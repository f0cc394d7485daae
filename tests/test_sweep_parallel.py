"""Sweeps scheduled point by point on workers: the rows of a serial run, written as they finish, resumable,
within a budget of estimated time; and on a real Dask cluster."""

from __future__ import annotations

import csv
import gc
import importlib.util
import io
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import api
from hwsim.cli import main
from hwsim.errors import InputError
from hwsim.report.records import csv_line
from hwsim.report.streaming import RowFile
from hwsim.studies import parallel, sweep

HW = api.load_hardware("paper-accelerator")
SMALL = api.load_network("hairnet-cifar10-small")
VARY = ["memory.internal.capacity=512B..1MB:log:4", "memory.external.bandwidth=0.5GB/s..8GB/s:log:3"]
"""12 points of a small network under strict, three of them infeasible (512 B holds no band of the first conv)."""


def axes() -> list[sweep.Axis]:
    return [sweep.parse_axis(text, HW) for text in VARY]


@pytest.fixture(scope="module")
def serial() -> sweep.SweepResult:
    return sweep.run(SMALL, HW, axes(), policy="strict")


def run_on(pool: parallel.Pool, **options) -> sweep.SweepResult:
    return sweep.run(SMALL, HW, axes(), policy="strict", pool=pool, **options)


def test_two_workers_give_the_rows_of_a_serial_run(serial, monkeypatch):
    monkeypatch.setattr(sweep, "POOL_MIN_SECONDS", 0.0)  # a small sweep would otherwise stay in this process
    monkeypatch.setattr(sweep, "CHUNK_SECONDS", 0.0)  # one point per task: many tasks, finishing out of order
    assert len(serial.infeasible) == 3 and len(serial.rows) == 12
    finished: list[int] = []
    with parallel.opened(workers=2) as pool:
        assert isinstance(pool, parallel.Processes)
        result = run_on(pool, on_rows=lambda rows: finished.extend(r.index for r in rows))
    pd.testing.assert_frame_equal(result.rows, serial.rows)
    assert sorted(finished) == list(range(12))


def test_rows_handed_out_as_they_finish_are_the_lines_a_serial_run_writes(serial):
    rows: list[sweep.Row] = []
    run_on(parallel.Serial(), on_rows=rows.extend)
    written = serial.rows.to_csv(index=False).splitlines(keepends=True)
    assert written[0] == csv_line(sweep.columns(axes()))
    assert sorted(csv_line(r.values) for r in rows) == sorted(written[1:])


def test_a_killed_sweep_is_resumed_to_the_file_a_serial_run_writes(serial, tmp_path):
    path = tmp_path / "s.csv"
    lines = serial.rows.to_csv(index=False).splitlines(keepends=True)
    kept = [lines[0], lines[5], lines[2], lines[9]]  # as they finished, then a line cut short by the crash
    path.write_text("".join(kept) + lines[7][:20])
    stream = RowFile(path, axes())
    resumed = stream.read_back()
    assert sorted(resumed) == [1, 4, 8]
    scheduled: list[int] = []
    result = run_on(parallel.Serial(), resumed=resumed, on_rows=lambda rows: scheduled.extend(r.index for r in rows))
    assert sorted(scheduled) == sorted(set(range(12)) - {1, 4, 8})  # only what the file lacked
    pd.testing.assert_frame_equal(result.rows, serial.rows)
    stream.finish(result)
    assert path.read_text() == "".join(lines)


def test_streamed_lines_are_whole_and_appended(serial, tmp_path):
    path = tmp_path / "s.csv"
    stream = RowFile(path, axes())
    run_on(parallel.Serial(), on_rows=stream.append)
    stream.close()
    text = path.read_text()
    assert text.endswith("\n") and sorted(text.splitlines()[1:]) == sorted(
        serial.rows.to_csv(index=False).splitlines()[1:]
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n1,2\n", "its columns are not this sweep's"),
        (None, "not a point of this sweep (memory.internal.capacity = 5000 is not a value of this sweep)"),
    ],
)
def test_resume_refuses_another_sweeps_file(serial, tmp_path, content, message):
    path = tmp_path / "s.csv"
    if content is None:  # this sweep's columns, another grid's point
        row = next(csv.reader(io.StringIO(serial.rows.to_csv(index=False).splitlines()[1])))
        content = csv_line(sweep.columns(axes())) + csv_line(["5000", *row[1:]])
    path.write_text(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RowFile(path, axes()).read_back()


def test_the_budget_is_estimated_time_over_the_workers():
    sweep.check_budget(10_000, 0.5, workers=2, policy="optimized")  # 0.69 hours
    with pytest.raises(
        InputError, match=r"10,000 points under policy optimized would take about 1.4 hours on 1 worker"
    ):
        sweep.check_budget(10_000, 0.5, workers=1, policy="optimized")


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 50), min_size=1, max_size=20),
    planned=st.floats(0.01, 1.0),
    share=st.floats(0.01, 1.0),
)
def test_the_estimate_plans_each_capacity_once(sizes, planned, share):
    """Where a capacity's first point costs ``planned`` and its others ``timed_only`` (no more: they skip the plan),
    the estimate is the sum; without a later point to time, it is never less."""
    timed_only = planned * share
    spent = sum(planned + (size - 1) * timed_only for size in sizes)
    assert sweep.estimated_cpu([planned], [timed_only], len(sizes), sum(sizes)) == pytest.approx(spent, rel=1e-9)
    assert sweep.estimated_cpu([planned], [], len(sizes), sum(sizes)) >= spent * (1 - 1e-9)


def test_the_budgets_estimate_is_near_the_cpu_time_the_points_take(monkeypatch):
    """The budget's estimate against the CPU time of every point, measured: each of the grid's capacities plans once
    (the first of its points) and its other points share the plan, which sampled points each planning would
    miss by three times here."""
    estimates: list[float] = []
    spent: list[float] = []
    check, schedule = sweep.check_budget, sweep.schedule_points

    def estimated(points, seconds_per_point, workers, policy, what="points"):
        estimates.append(points * seconds_per_point)
        check(points, seconds_per_point, workers, policy, what)

    def measured(base, points):
        start = time.process_time()
        results = schedule(base, points)
        spent.append(time.process_time() - start)
        return results

    monkeypatch.setattr(sweep, "check_budget", estimated)
    monkeypatch.setattr(sweep, "schedule_points", measured)
    varied = ["memory.internal.capacity=512KB..8MB:log:4", "memory.external.bandwidth=0.5GB/s..32GB/s:log:6"]
    axes = [sweep.parse_axis(text, HW) for text in varied]
    sweep.run(api.load_network("hairnet"), HW, axes, policy="strict", pool=parallel.Serial())
    assert len(spent) > 2 and len(estimates) == 1
    assert 0.4 < estimates[0] / sum(spent) < 2.5, (estimates[0], sum(spent))


def test_a_sweep_over_budget_is_one_line_and_no_file(runner, tmp_path, workdir, monkeypatch):
    monkeypatch.setattr(sweep, "MAX_HOURS", 1e-9)
    args = ["sweep", "hairnet-cifar10-small", "--policy", "strict", "--workers", "1", "-o", "s.csv"]
    result = runner.invoke(main, [*args, *sum((["--vary", v] for v in VARY), [])])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line.startswith("error: --vary: 12 points under policy strict would take about ") and "\n" not in line
    assert "give fewer points, or more workers (--workers, --dask)" in line
    assert not (tmp_path / "s.csv").exists()


def test_cli_resume_finishes_the_file(runner, tmp_path, workdir, serial):
    lines = serial.rows.to_csv(index=False).splitlines(keepends=True)
    Path("s.csv").write_text("".join(lines[:4]))
    args = ["sweep", "hairnet-cifar10-small", "--policy", "strict", "--workers", "1", "-o", "s.csv", "--resume"]
    result = runner.invoke(main, [*args, *sum((["--vary", v] for v in VARY), [])])
    assert result.exit_code == 0, result.output
    assert Path("s.csv").read_text() == "".join(lines) and "wrote s.csv (12 points, 3 infeasible)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume"], "error: --resume: continues the file given with -o; there is none"),
        (
            ["--dask", "tcp://localhost:1", "--workers", "2"],
            "error: --workers: a Dask cluster has its own workers; --workers sizes a local one only",
        ),
    ],
)
def test_pool_options_misused_are_one_line(runner, args, message):
    result = runner.invoke(main, ["sweep", "--policy", "strict", "--vary", VARY[0], *args])
    assert result.exit_code == 2 and result.output.strip() == message, result.output


dask_missing = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="the cluster extra is not installed (pip install 'hwsim[cluster]')",
)


@dask_missing
@pytest.mark.parametrize(("address", "complaint"), [("::::", "invalid address '::::'"), ("tcp://", "missing port")])
def test_an_address_dask_cannot_parse_is_one_line(runner, address: str, complaint: str) -> None:
    """Once a ValueError traceback from distributed's address parser."""
    result = runner.invoke(main, ["sweep", "--policy", "strict", "--vary", VARY[0], "--dask", address])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"error: --dask: cannot reach the Dask scheduler at {address}: ")
    assert complaint in result.stderr


@dask_missing
@pytest.mark.slow
def test_a_local_dask_cluster_gives_the_rows_of_a_serial_run(serial, monkeypatch):
    monkeypatch.setattr(sweep, "POOL_MIN_SECONDS", 0.0)
    monkeypatch.setattr(sweep, "CHUNK_SECONDS", 0.0)
    with parallel.opened(workers=2, dask=parallel.LOCAL) as pool:
        assert pool.workers == 2
        result = run_on(pool)
        frozen = pool._client.run(gc.get_freeze_count)  # what the workers held when the graph arrived
    pd.testing.assert_frame_equal(result.rows, serial.rows)
    assert len(frozen) == 2 and min(frozen.values()) > 10_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dask_missing
@pytest.mark.slow
def test_a_dask_scheduler_and_two_worker_processes_give_the_rows_of_a_serial_run(serial, monkeypatch, tmp_path):
    """The multi-machine set-up of docs/compare.md, on one machine: `dask scheduler`, two `dask worker`s."""
    dask = shutil.which("dask", path=str(Path(sys.executable).parent))
    assert dask, "the cluster extra installs the dask command"
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
        )
    ]
    try:
        started += [
            subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--no-dashboard"], stderr=subprocess.DEVNULL, cwd=tmp_path
            )
            for _ in range(2)
        ]
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        monkeypatch.setattr(sweep, "POOL_MIN_SECONDS", 0.0)
        with parallel.opened(dask=address) as pool:
            assert pool.workers == 2
            result = run_on(pool)
        pd.testing.assert_frame_equal(result.rows, serial.rows)
    finally:
        for process in started[::-1]:
            process.terminate()
            process.wait(timeout=30)


def test_tasks_keep_the_points_of_one_capacity_together():
    capacity = np.array([1, 2, 3] * 6 + [4] * 12, dtype=float)  # three interleaved groups of 6, one of 12
    for workers in (2, 3):  # 4 groups: enough for two workers, too few for three
        chunks = sweep._chunks(list(range(30)), capacity, 4, workers)
        assert sorted(i for chunk in chunks for i in chunk) == list(range(30))
        assert all(len({capacity[i] for i in chunk}) == 1 for chunk in chunks)  # 6 and 4 points cannot share
        tasks = {value: sum(any(capacity[i] == value for i in chunk) for chunk in chunks) for value in (1, 2, 3, 4)}
        assert tasks == ({1: 1, 2: 1, 3: 1, 4: 1} if workers == 2 else {1: 2, 2: 2, 3: 2, 4: 3})
    seven = sweep._chunks(list(range(42)), np.repeat(np.arange(7.0), 6), 4, 2)  # 7 groups of 6 on two workers
    assert seven[:6] == [list(range(k, k + 6)) for k in range(0, 36, 6)]  # three whole groups a worker
    assert seven[6:] == [[36, 37, 38], [39, 40, 41]]  # and the seventh in halves, not on one worker alone
    small = sweep._chunks(list(range(6)), np.array([1, 1, 2, 2, 3, 3.0]), 4, 1)
    assert small == [[0, 1, 2, 3], [4, 5]]  # small groups share a task
    assert sweep._chunks(list(range(5)), None, 2, 1) == [[0, 1], [2, 3], [4]]
