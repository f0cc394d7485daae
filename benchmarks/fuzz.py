"""The fuzzer of ``tests/fuzzing.py`` at any size: how many cases answered (exit 0) or were refused (exit 2), per
mutation, and any that broke the promise (a traceback, another exit code, more than one line, a file left, past
the time or memory cap). Exit 1 if any did.

    python benchmarks/fuzz.py                                  # 2,000 cases, paper policy, seed 0
    python benchmarks/fuzz.py --cases 300 --policy strict --policy optimized --seed 5
    python benchmarks/fuzz.py --seed 21 --show 1234            # the files of one case, to reproduce it
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzzing import bounded_memory, cases, run_case  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", action="append", choices=["paper", "strict", "optimized"])
    parser.add_argument("--show", type=int, help="print the network and hardware of this case and stop")
    options = parser.parse_args()
    policies = tuple(options.policy or ["paper"])
    if options.show is not None:
        case = next(c for c in cases(options.seed, options.show + 1, policies) if c.index == options.show)
        print(f"# case {case.index}: {case.mutation}, --policy {case.policy}\n# net.yaml\n{case.network}")
        print(f"# hw.yaml\n{case.hardware}")
        return 0
    counts: collections.Counter[tuple[str, int | None]] = collections.Counter()
    failures, slowest = [], (0.0, -1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, bounded_memory():
        for case in cases(options.seed, options.cases, policies):
            outcome = run_case(case, Path(folder))
            counts[case.mutation, outcome.exit_code] += 1
            slowest = max(slowest, (outcome.seconds, case.index))
            if outcome.problem:
                failures.append(outcome)
                print(f"case {case.index} ({case.mutation}, {case.policy}): {outcome.problem}")
    elapsed = time.perf_counter() - started
    print(
        f"{options.cases:,} cases (seed {options.seed}, {', '.join(policies)}) in {elapsed:.1f} s; "
        f"slowest: case {slowest[1]}, {slowest[0]:.2f} s"
    )
    print(f"{'mutation':<20} {'exit 0':>7} {'exit 2':>7} {'broken':>7}")
    broken = collections.Counter(o.case.mutation for o in failures)
    for mutation in sorted({m for m, _ in counts}):
        print(f"{mutation:<20} {counts[mutation, 0]:>7} {counts[mutation, 2]:>7} {broken[mutation]:>7}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
