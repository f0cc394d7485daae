"""Where the points of a sweep or the trials of a search are scheduled: here, on local worker processes, or
on a Dask cluster.

Every pool runs the same module-level function on the same inputs, so the results do not depend on the
pool: a sweep on eight workers writes the rows a serial one writes. What all tasks share (the costed
graph and the profile) goes to each worker once, not with every task. Results come back as they finish,
in whatever order, tagged with their task's index; callers put them in order.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from hwsim.errors import InputError

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

LOCAL = "local"
"""``--dask local``: start a Dask cluster of local worker processes for this run."""
DASK_CONNECT_TIMEOUT_S = 10
PRELOAD = ["hwsim.studies.sweep"]
"""Imported once by the process the local workers are forked from, so a worker starts in milliseconds; a local
Dask cluster's workers import it as they start, not during the first task."""
LOCAL_DASK_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing": False,
}
"""A local Dask cluster without the dashboard's bookkeeping: no worker samples its task's stack every 10 ms, no
server wakes every 20 ms to check its event loop or every 0.5 s to record its memory, the nannies and workers check
their memory every second, not every 0.1 s, and the scheduler does not look for tasks to steal every 0.1 s (a
sweep sends a worker its next task when it finishes one: none waits to be stolen). Idle, its two workers spend
about 0.03 s of CPU every 10 s and the caller (scheduler and nannies) 0.07 s, where Dask's defaults spend 0.45 and
0.7 s (docs/compare.md); a sweep's CPU time goes to its points."""


def available_cores() -> int:
    """The cores this process may run on (its affinity, where the system tells), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class Serial:
    """Runs every task here, in order: one worker, no processes."""

    workers = 1

    def imap(self, function: Callable[[S, T], R], shared: S, tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        for index, task in enumerate(tasks):
            yield index, function(shared, task)

    def close(self) -> None:
        pass


_shared: Any = None
"""What every task of a local worker shares, set once when the worker starts."""


def _settle() -> None:
    """Take what a worker holds for its whole life (its modules, a Dask worker's own state, the shared costed
    graph) out of the garbage collector's full collections, which a sweep's many short-lived objects trigger:
    each of them would scan it all again. On a local Dask cluster that scan cost its workers about 1.2x the CPU
    of the same points in a local worker (docs/compare.md)."""
    gc.collect()
    gc.freeze()


def _receive(shared: Any) -> None:
    """A worker's start: keep what the tasks share, and leave Ctrl-C to the caller, which stops the pool."""
    global _shared
    _shared = shared
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _settle()


def _call(function: Callable[[Any, T], R], task: T) -> R:
    return function(_shared, task)


class Processes:
    """``workers`` local processes, started from a server that has already imported hwsim (forkserver where the
    system has it, else spawn), so no worker inherits the caller's threads or open files."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executors: list[tuple[Any, ProcessPoolExecutor]] = []
        forkserver = "forkserver" in multiprocessing.get_all_start_methods()
        self._context: BaseContext = multiprocessing.get_context("forkserver" if forkserver else "spawn")
        if forkserver:
            self._context.set_forkserver_preload(PRELOAD)
            from multiprocessing import forkserver as server

            server.ensure_running()  # it imports hwsim while the caller costs the graph and times a few points

    def _executor(self, shared: Any) -> ProcessPoolExecutor:
        """One executor per shared object: its workers receive it once, when they start."""
        for known, executor in self._executors:
            if known is shared:
                return executor
        executor = ProcessPoolExecutor(self.workers, mp_context=self._context, initializer=_receive, initargs=(shared,))
        self._executors.append((shared, executor))
        return executor

    def imap(self, function: Callable[[S, T], R], shared: S, tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        executor = self._executor(shared)
        futures = {executor.submit(_call, function, task): index for index, task in enumerate(tasks)}
        yield from _as_completed(futures)

    def close(self) -> None:
        for _, executor in self._executors:
            executor.shutdown(wait=True, cancel_futures=True)
        self._executors.clear()


def _as_completed(futures: dict[Any, int]) -> Iterator[tuple[int, Any]]:
    """(index, result) of each future as it finishes; the others are cancelled if the caller stops early."""
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield futures[future], future.result()
    finally:
        for future in pending:
            future.cancel()


class Dask:
    """A Dask distributed cluster: an existing one (``tcp://host:8786``) or, for :data:`LOCAL`, one started here
    with ``workers`` single-threaded worker processes. Its workers must have the same hwsim installed."""

    def __init__(self, address: str, workers: int) -> None:
        try:
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise InputError(
                "running on a Dask cluster needs the cluster extra: pip install 'hwsim[cluster]'", field="--dask"
            ) from None
        self._cluster = None
        try:
            if address == LOCAL:
                with dask.config.set(LOCAL_DASK_CONFIG):  # read by the scheduler, the nannies and their workers
                    self._cluster = LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=40,  # logging.ERROR: a sweep's output is its rows, not the cluster's chatter
                        preload=PRELOAD,
                    )
                    self._client = Client(self._cluster)
            else:
                self._client = Client(address, timeout=DASK_CONNECT_TIMEOUT_S)
        except (OSError, ValueError) as err:  # ValueError: an address Dask cannot parse ('::::')
            self.close()
            raise InputError(f"cannot reach the Dask scheduler at {address}: {err}", field="--dask") from None
        self._check_workers(address)
        self.workers = max(1, sum(self._client.nthreads().values()))
        self._scattered: list[tuple[Any, Any]] = []

    def _check_workers(self, address: str) -> None:
        """Refuse a cluster whose workers cannot import hwsim, or run another version of it."""
        from importlib.metadata import version

        try:
            versions = self._client.run(_hwsim_version)
        except ModuleNotFoundError:
            self.close()
            raise InputError(
                f"the workers of {address} cannot import hwsim: install it there", field="--dask"
            ) from None
        if not versions:
            self.close()
            raise InputError(f"the Dask cluster at {address} has no workers", field="--dask")
        mine = version("hwsim")
        other = {worker: v for worker, v in versions.items() if v != mine}
        if other:
            self.close()
            worker, theirs = next(iter(other.items()))
            raise InputError(f"worker {worker} runs hwsim {theirs}, this is hwsim {mine}", field="--dask")

    def imap(self, function: Callable[[S, T], R], shared: S, tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        from dask.distributed import as_completed

        handle = next((future for known, future in self._scattered if known is shared), None)
        if handle is None:
            handle = self._client.scatter(shared, broadcast=True)
            self._scattered.append((shared, handle))
            if self._cluster is not None:  # our own workers; a shared cluster's heaps are not ours to freeze
                self._client.run(_settle)
        # a task a worker thread, the next one sent to the worker that finished one, as local workers take theirs:
        # sent all at once, tasks are placed ahead, and a worker can be left with two at the end while the other
        # waits; left to place each, the scheduler gave one worker most of a sweep's tasks in some runs
        futures: dict[Any, int] = {}
        queued = enumerate(tasks)
        running = as_completed()

        def send_next(worker: str) -> None:
            for index, task in itertools.islice(queued, 1):
                future = self._client.submit(
                    _on_worker, function, handle, task, pure=False, workers=[worker], allow_other_workers=True
                )
                futures[future] = index
                running.add(future)

        for worker, threads in self._client.nthreads().items():
            for _ in range(threads):
                send_next(worker)
        try:
            for future in running:
                worker, result = future.result()
                send_next(worker)
                yield futures[future], result
        finally:
            self._client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        for closable in (getattr(self, "_client", None), self._cluster):
            if closable is not None:
                with contextlib.suppress(Exception):
                    closable.close()


def _on_worker(function: Callable[[S, T], R], shared: S, task: T) -> tuple[str, R]:
    """A task on a Dask worker: its result, and the worker's address, where the next task goes."""
    from dask.distributed import get_worker

    return get_worker().address, function(shared, task)


def _hwsim_version() -> str:
    from importlib.metadata import version

    return version("hwsim")


Pool = Serial | Processes | Dask


@contextlib.contextmanager
def opened(workers: int | None = None, dask: str | None = None) -> Iterator[Pool]:
    """The pool a command asked for: ``dask`` (an address or :data:`LOCAL`), else ``workers`` local processes
    (default: every core; 1 runs here, without processes)."""
    if dask is not None and workers is not None and dask != LOCAL:
        raise InputError("a Dask cluster has its own workers; --workers sizes a local one only", field="--workers")
    count = workers or available_cores()
    pool: Pool = Dask(dask, count) if dask is not None else Serial() if count == 1 else Processes(count)
    try:
        yield pool
    finally:
        pool.close()
