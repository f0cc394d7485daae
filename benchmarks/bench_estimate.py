"""Wall time of `hwsim estimate` on the bundled defaults, beside the bare interpreter's start-up.

The issue's target is "well under a second"; the ratio to `python -c pass`, measured in the same
run, says how much of it is hwsim rather than the machine. Run: python benchmarks/bench_estimate.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

REPEATS = 5


def wall_time(command: list[str]) -> float:
    """Median wall time of ``command`` over :data:`REPEATS` runs, output discarded."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    baseline = wall_time([sys.executable, "-c", "pass"])
    imports = wall_time([sys.executable, "-c", "import hwsim.cli.estimate"])
    estimate = wall_time([sys.executable, "-m", "hwsim", "estimate"])
    print(f"python -c pass        {baseline * 1e3:7.1f} ms")
    print(f"import cli.estimate   {imports * 1e3:7.1f} ms  ({imports / baseline:.1f}x interpreter start-up)")
    print(f"hwsim estimate        {estimate * 1e3:7.1f} ms  ({estimate / baseline:.1f}x interpreter start-up)")


if __name__ == "__main__":
    main()
