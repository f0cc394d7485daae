"""`hwsim estimate` starts with what its run needs (benchmarks/bench_estimate.py times it against `import numpy`)."""

from __future__ import annotations

import subprocess
import sys

DEFERRED = (
    "hwsim.schedule.planner",
    "hwsim.schedule.segment",
    "hwsim.schedule.strict",
    "hwsim.schedule.optimized",
    "hwsim.cost.rowstationary",
)
"""Modules only strict, optimized or a row-stationary array need."""


def imported_after(args: list[str], modules: tuple[str, ...] = DEFERRED) -> list[str]:
    """The ``modules`` a fresh interpreter has imported after running ``hwsim ARGS``."""
    code = (
        "import sys\nfrom hwsim.cli import main\n"
        f"try: main({args!r}, standalone_mode=False)\n"
        "except SystemExit: pass\n"
        f"print(' '.join(m for m in {modules!r} if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stderr.split()


def test_the_paper_policy_imports_no_planner_and_no_row_stationary_mapping() -> None:
    assert imported_after(["estimate", "--format", "json"]) == []


def test_the_policies_and_arrays_that_need_them_import_them() -> None:
    assert set(imported_after(["estimate", "--policy", "optimized", "--format", "json"])) >= {
        "hwsim.schedule.planner",
        "hwsim.schedule.optimized",
    }
    assert "hwsim.schedule.strict" in imported_after(["estimate", "--policy", "strict", "--format", "json"])
    assert "hwsim.cost.rowstationary" in imported_after(["estimate", "--hw", "eyeriss-v1-rs", "--format", "json"])


def test_a_markdown_report_of_numbers_and_plain_names_is_written_without_tabulate() -> None:
    assert imported_after(["estimate", "--format", "md"], ("tabulate",)) == []
    assert imported_after(["compare", "hairnet", "--format", "md"], ("tabulate",)) == ["tabulate"]  # pandas's


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
