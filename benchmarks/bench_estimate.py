"""Wall time of `hwsim estimate` (terminal table, CSV, JSON, Markdown) as a multiple of `python -c "import numpy"`.

The target is at most 2.5x: hwsim's own work is milliseconds, so its start-up should cost little more than
the NumPy it is built on. Both are measured in the same run, alternating, and the median of each is taken,
so a loaded machine slows both alike. Output goes to a file (-o) or a pipe, where hwsim prints without rich.
Bytecode caches are written and used as an installed package's are (a first run writes them; the
environment's PYTHONDONTWRITEBYTECODE would otherwise recompile every module at every start).

A loaded machine makes wall times noisy (this one is shared by several engineers), so the children's CPU
time (user + system, from ``os.wait4``) is printed beside them: on a quiet machine the two agree. The load
average is printed too: the ratio grows with it (one version of hwsim measured 2.8x at a load average of 4
and 3.3x at 6), so compare figures taken under similar load.

The table itself is timed in-process too: the fast plain path, and rich as on a terminal.

``--beside TREE`` times another checkout's ``hwsim estimate`` (e.g. main, ``git worktree add /tmp/main main``) in
the same rounds, with ``PYTHONPATH=TREE`` in this environment, so a change is measured against its base under the
same load.

    python benchmarks/bench_estimate.py [ROUNDS] [--beside TREE]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 15
TARGET = 2.5
TABLE_REPEATS = 20
FORMATS = ("csv", "json", "md")
Command = tuple[list[str], dict[str, str]]
"""Arguments, and the environment variables they run with beyond this process's."""


def commands(folder: Path, beside: Path | None) -> dict[str, Command]:
    hwsim = [sys.executable, "-m", "hwsim", "estimate"]
    runs: dict[str, Command] = {"import numpy": ([sys.executable, "-c", "import numpy"], {})}
    for tree in (None, beside) if beside else (None,):
        env, label = ({"PYTHONPATH": str(tree)}, label_of(tree)) if tree else ({}, "")
        runs |= {
            f"estimate (table){label}": (hwsim, env),
            **{f"estimate -o r.{ext}{label}": ([*hwsim, "-o", str(folder / f"r.{ext}")], env) for ext in FORMATS},
        }
    return runs


def label_of(tree: Path) -> str:
    return f" [{tree.name}]"


def run_once(command: list[str], env: dict[str, str], folder: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``command`` in ``folder``, its output discarded. Not in the checkout:
    ``python -m`` would import the hwsim found there ahead of ``PYTHONPATH``'s."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env, cwd=folder)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)
    return wall, usage.ru_utime + usage.ru_stime


def measure(runs: dict[str, Command], rounds: int, folder: Path) -> dict[str, list[tuple[float, float]]]:
    """Each command ``rounds`` times, one after another in every round, so load changes hit all alike."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for command, extra in runs.values():  # writes the bytecode caches
        run_once(command, env | extra, folder)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (command, extra) in runs.items():
            times[name].append(run_once(command, env | extra, folder))
    return times


def table_times() -> tuple[float, float]:
    """Median seconds to print HairNet's estimate table: plain (a pipe or a file), and through rich (a terminal)."""
    from rich.console import Console

    from hwsim import api
    from hwsim.report import tables
    from hwsim.report.plain import PlainConsole

    result = api.estimate(api.load_network("hairnet"), api.load_hardware("paper-accelerator"))

    def median_time(make_console: object) -> float:
        times = []
        for _ in range(TABLE_REPEATS):
            with contextlib.redirect_stdout(io.StringIO()):
                console = make_console()  # type: ignore[operator]
                start = time.perf_counter()
                tables.render_table(result, console)
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    plain = median_time(lambda: PlainConsole(220))
    rich = median_time(lambda: Console(file=io.StringIO(), width=220, force_terminal=True))
    return plain, rich


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds", nargs="?", type=int, default=ROUNDS)
    parser.add_argument("--beside", type=Path, help="another checkout of hwsim to time in the same rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        times = measure(commands(Path(folder), args.beside), args.rounds, Path(folder))
    numpy_wall, numpy_cpu = (statistics.median(t[i] for t in times["import numpy"]) for i in (0, 1))
    load = os.getloadavg()[0]
    print(
        f"median of {args.rounds} alternating runs (load average {load:.1f}); target: at most {TARGET}x `import numpy`"
    )
    width = max(map(len, times))
    print(f"{'':{width}} {'wall':>9}  {'ratio':>5}  {'CPU':>9}  {'ratio':>5}")
    worst = 0.0
    for name, runs in times.items():
        wall, cpu = (statistics.median(t[i] for t in runs) for i in (0, 1))
        if name != "import numpy" and not (args.beside and name.endswith(label_of(args.beside))):
            worst = max(worst, wall / numpy_wall)
        print(f"{name:{width}} {wall * 1e3:6.1f} ms  {wall / numpy_wall:4.2f}x  ", end="")
        print(f"{cpu * 1e3:6.1f} ms  {cpu / numpy_cpu:4.2f}x")
    print(f"worst wall ratio {worst:.2f}x: {'within' if worst <= TARGET else 'OVER'} the target")
    plain, rich = table_times()
    print(f"HairNet's table: {plain * 1e3:.1f} ms to a pipe or a file, {rich * 1e3:.1f} ms through rich (a terminal)")


if __name__ == "__main__":
    main()
