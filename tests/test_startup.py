"""`hwsim estimate` starts with what its run needs (benchmarks/bench_estimate.py times it against `import numpy`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEFERRED = (
    "hwsim.schedule.planner",
    "hwsim.schedule.segment",
    "hwsim.schedule.strict",
    "hwsim.schedule.optimized",
    "hwsim.cost.rowstationary",
    "tabulate",
)
"""Modules only strict, optimized, a row-stationary array or an unusual Markdown table need."""


def imported_by_each(runs: list[list[str]], modules: tuple[str, ...] = DEFERRED) -> list[set[str]]:
    """The ``modules`` each of ``runs`` (``hwsim`` arguments, run in turn in one fresh interpreter) imported that
    the runs before it had not."""
    code = (
        "import sys\nfrom hwsim.cli import main\n"
        f"for args in {runs!r}:\n"
        "    try: main(args, standalone_mode=False)\n"
        "    except SystemExit: pass\n"
        f"    print(' '.join(m for m in {modules!r} if m in sys.modules) or '-', file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seen: set[str] = set()
    new = []
    for line in done.stderr.splitlines():
        now = set(line.split()) - {"-"}
        new.append(now - seen)
        seen |= now
    return new


def test_each_policy_array_and_report_imports_only_what_it_needs() -> None:
    paper, markdown, strict, optimized, eyeriss, compared = imported_by_each(
        [
            ["estimate", "--format", "json"],
            ["estimate", "--format", "md"],  # numbers and plain names: no tabulate
            ["estimate", "hairnet-cifar10-small", "--policy", "strict", "--format", "json"],
            ["estimate", "hairnet-cifar10-small", "--policy", "optimized", "--format", "json"],
            ["estimate", "hairnet-cifar10-small", "--hw", "eyeriss-v1-rs", "--format", "json"],
            ["compare", "hairnet", "--format", "md"],  # pandas' to_markdown: tabulate
        ]
    )
    assert paper == set() and markdown == set()
    assert strict == {"hwsim.schedule.strict", "hwsim.schedule.planner", "hwsim.schedule.segment"}
    assert optimized == {"hwsim.schedule.optimized"}
    assert eyeriss == {"hwsim.cost.rowstationary"}
    assert compared == {"tabulate"}


def test_no_estimate_imports_numpy_or_pandas(tmp_path: Path) -> None:
    """NumPy's import alone is most of the 2.5x start-up budget (benchmarks/bench_estimate.py): an estimate, in
    every policy and format, with the SRAM energy interpolated by capacity and on a row-stationary array, computes
    in plain Python."""
    outputs = [[], ["--wide"], *(["-o", str(tmp_path / f"r.{suffix}")] for suffix in ("csv", "json", "md"))]
    small = ["estimate", "hairnet-cifar10-small", "--hw", "mobile-gpu"]
    runs = [[*small, "--policy", policy, *output] for policy in ("paper", "strict", "optimized") for output in outputs]
    runs.append(["estimate", "hairnet-cifar10-small", "--hw", "eyeriss-v1-rs", "--policy", "optimized"])
    assert imported_by_each(runs, ("numpy", "pandas")) == [set()] * len(runs)


def test_the_collector_is_left_as_it_was_after_a_command_is_imported() -> None:
    code = (
        "import gc, sys\nfrom hwsim.cli import main\n"
        "for enabled in (False, True):\n"
        "    (gc.enable if enabled else gc.disable)()\n"
        "    command = 'estimate' if enabled else 'compare'\n"
        "    try: main([command, '--format', 'json'], standalone_mode=False)\n"
        "    except SystemExit: pass\n"
        "    print(gc.isenabled() == enabled, gc.get_freeze_count() > 0, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.split() == ["True"] * 4
