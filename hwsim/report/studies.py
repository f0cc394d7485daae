"""Terminal tables of the studies: compare, sweep, verify, ops and reproduce, each through :func:`print_table`.

Every table is drawn from the study's own DataFrame (or one built here from its result), so what
the terminal shows is what CSV, Markdown and JSON hold, in human units and cut to the terminal's width.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hwsim.model.execution import Pass
from hwsim.report.terminal import FITTED, THE_REST, Column, View, print_table
from hwsim.studies.compare import Comparison
from hwsim.studies.reproduce import PAPER_TOTAL_S, BeyondThePaper, Correction
from hwsim.studies.reproduce import Comparison as AppendixComparison
from hwsim.studies.sweep import NOTE, SweepResult
from hwsim.studies.verify import Verification

if TYPE_CHECKING:
    import pandas as pd

    from hwsim.report.terminal import Screen

# ---- compare ---------------------------------------------------------------------------------------

COMPARE_COLUMNS = [
    Column("network", "network", elide=True, priority=0, floor=12),
    Column("hardware", "hardware", elide=True, priority=1, floor=12),
    Column("policy", "policy", priority=2),
    Column("params", "params", "int", priority=9),
    Column("macs", "MACs", "int", priority=10),
    Column("bytes_moved", "moved", "bytes", priority=6),
    Column("latency_s", "latency", "time", priority=3),
    Column("images_per_s", "images/s", "number", priority=7),
    Column("lower_bound_s", "lower bound", "time", priority=5),
    Column("efficiency", "efficiency", "percent", priority=4),
    Column("lower_bound_cut_s", "cut bound", "time", priority=12),
    Column("efficiency_cut", "cut efficiency", "percent", priority=12),
    Column("latency_vs_first", "× first", "ratio", priority=8),
    Column("energy_per_image_j", "energy/image", "energy", priority=11),
    Column("note", "note", wrap=True, priority=THE_REST + 1),
]
LAYER_DIFF_COLUMNS = [
    Column("layer", "layer", elide=True, priority=0),
    Column("a_transfer_s", "a transfer", "time", priority=6),
    Column("a_compute_s", "a compute", "time", priority=7),
    Column("a_total_s", "a total", "time", priority=1),
    Column("b_transfer_s", "b transfer", "time", priority=8),
    Column("b_compute_s", "b compute", "time", priority=9),
    Column("b_total_s", "b total", "time", priority=2),
    Column("delta_s", "b - a", "time", priority=3),
    Column("b_over_a", "b / a", "ratio", priority=4),
]


def render_comparison(comparison: Comparison, console: Screen, view: View = FITTED) -> None:
    """A summary (one row per run) or a per-layer diff, whichever ``comparison`` holds."""
    per_layer = "layer" in comparison.rows.columns
    columns = LAYER_DIFF_COLUMNS if per_layer else COMPARE_COLUMNS
    print_table(console, comparison.rows, columns, comparison.title, view)


# ---- sweep -----------------------------------------------------------------------------------------

MAX_SWEEP_ROWS = 1000
"""A sweep prints at most this many points in the terminal; more go to a CSV file (-o)."""


def sweep_columns(result: SweepResult) -> list[Column]:
    """The swept fields first (their units from their kind), then latency and the rest, the note last."""
    axes = [
        Column(axis.column, " ".join(axis.field.split(".")[1:]) or axis.field, axis.kind, priority=i)
        for i, axis in enumerate(result.axes)
    ]
    first = len(axes)
    return [
        *axes,
        Column("total_s", "total", "time", priority=first),
        Column("transfer_s", "transfer", "time", priority=first + 2),
        Column("compute_s", "compute", "time", priority=first + 3),
        Column("bytes_moved", "moved", "bytes", priority=first + 4),
        Column("images_per_s", "images/s", "number"),
        Column("lower_bound_s", "lower bound", "time"),
        Column("efficiency", "efficiency", "percent", priority=first + 1),
        Column("energy_per_image_j", "energy/image", "energy"),
        Column(NOTE, "note", wrap=True, priority=THE_REST + 1),
    ]


def render_sweep(result: SweepResult, console: Screen, view: View = FITTED) -> None:
    title = f"{result.network} on variants of {result.hardware} (policy {result.policy}), {len(result.rows):,} points"
    print_table(console, result.rows, sweep_columns(result), title, view)


# ---- verify and ops --------------------------------------------------------------------------------


def _counts(pass_: Pass) -> Callable[[Mapping[str, Any]], str]:
    """A verify cell: the modelled count, or 'modelled ≠ executed' in red."""

    def cell(row: Mapping[str, Any]) -> str:
        modelled, executed = int(row[pass_.value]), int(row[f"{pass_.value}_executed"])
        return f"{modelled:,}" if modelled == executed else f"[red]{modelled:,} ≠ {executed:,}[/red]"

    return cell


PASS_PRIORITY = {Pass.FORWARD: 2, Pass.FORWARD_TRAIN: 3, Pass.BACKWARD: 4, Pass.OPTIMIZER: 5}


def verification_frame(result: Verification) -> pd.DataFrame:
    """One row per layer (then the total): the modelled count per pass, and beside it the executed one."""
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    for check in result.checks:
        row = rows.setdefault(check.layer, {"layer": check.layer, "op": check.op.value})
        row[check.pass_.value] = check.modelled
        row[f"{check.pass_.value}_executed"] = check.executed
    total: dict[str, Any] = {"layer": "total", "op": ""}
    for pass_ in Pass:
        total[pass_.value] = result.total(pass_, executed=False)
        total[f"{pass_.value}_executed"] = result.total(pass_, executed=True)
    return pd.DataFrame([*rows.values(), total])


def verification_columns() -> list[Column]:
    return [
        Column("layer", "layer", elide=True, priority=0),
        Column("op", "op", elide=True, priority=1, floor=10),
        *(Column(p.value, p.value.replace("_", " "), "int", priority=PASS_PRIORITY[p], cell=_counts(p)) for p in Pass),
    ]


def render_verification(result: Verification, console: Screen, view: View = FITTED) -> None:
    """One row per layer, one column per pass: the modelled count, or 'modelled ≠ executed' in red."""
    frame = verification_frame(result)
    title = f"{result.network}: modelled vs executed ops ({result.counting} counting, batch {result.batch})"
    print_table(console, frame, verification_columns(), title, view, row_styles=[""] * (len(frame) - 1) + ["bold"])
    if result.differences:
        console.print(
            f"[red]{len(result.differences)} of {len(result.checks)} counts differ[/red] (modelled ≠ executed)"
        )
    else:
        console.print(f"all {len(result.checks)} counts agree")


OPS_COLUMNS = [
    Column("layer", "layer", elide=True, priority=0),
    Column("op", "op", elide=True, priority=1, floor=10),
    *(Column(p.value, p.value.replace("_", " "), "int", priority=PASS_PRIORITY[p]) for p in Pass),
]


def render_op_table(rows: list[dict[str, str | int]], network: str, console: Screen, view: View = FITTED) -> None:
    """The modelled ops per layer and pass (what ``hwsim ops`` writes as CSV)."""
    print_table(console, rows, OPS_COLUMNS, f"{network}: modelled ops per layer and pass", view)


# ---- reproduce -------------------------------------------------------------------------------------

APPENDIX_COLUMNS = [
    Column("row", "row", "int", priority=0),
    Column("paper_layer", "appendix", elide=True, priority=1),
    Column("hwsim_layer", "hwsim layer", elide=True, priority=5),
    Column("paper_total_time_s", "paper", "time", priority=2),
    Column("hwsim_total_time_s", "hwsim", "time", priority=3),
    Column("total_time_rel_diff", "diff", "signed_percent", priority=4),
    Column("transfer_time_rel_diff", "transfer diff", "signed_percent", priority=6),
    Column("compute_time_rel_diff", "compute diff", "signed_percent", priority=7),
]
ERRATA_COLUMNS = [
    Column("label", "step", priority=0),
    Column("change", "what changes", wrap=True, priority=1, floor=20),
    Column("policy", "policy", priority=3),
    Column("total_s", "total", "time", priority=2),
    Column("vs_printed", "× printed", "ratio", priority=4),
]


def errata_frame(chain: list[Correction]) -> pd.DataFrame:
    """One row per step of the errata chain; a step that does not change the time has no total."""
    import pandas as pd

    printed = chain[0].total_s or 1.0
    return pd.DataFrame(
        [
            {
                "label": c.label,
                "change": c.change + (f"\n[dim]{c.detail}[/dim]" if c.detail else ""),
                "policy": c.policy if c.total_s is not None else "—",
                "total_s": c.total_s if c.total_s is not None else float("nan"),
                "vs_printed": c.total_s / printed if c.total_s is not None else float("nan"),
            }
            for c in chain
        ]
    )


def render_reproduction(
    comparison: AppendixComparison,
    chain: list[Correction],
    beyond: BeyondThePaper,
    console: Screen,
    view: View = FITTED,
) -> None:
    """The appendix beside hwsim row by row, the errata chain, and what better schedules make of it."""
    print_table(
        console,
        comparison.rows,
        APPENDIX_COLUMNS,
        "The paper's appendix beside hwsim (hairnet-paper.yaml, paper-appendix.yaml, --counting paper)",
        view,
    )
    console.print(
        f"total: paper {comparison.paper_total_s * 1e3:.3f} ms (headline {PAPER_TOTAL_S} s), hwsim "
        f"{comparison.hwsim_total_s * 1e3:.3f} ms; worst row difference {comparison.worst_relative_difference:.2%}",
        highlight=False,
    )
    print_table(
        console,
        errata_frame(chain),
        ERRATA_COLUMNS,
        "The errata, corrected one at a time (each on top of the ones before)",
        View(wide=view.wide),  # --columns names the row-by-row table's columns
    )
    printed = chain[0].total_s or 1.0
    console.print(
        f"beyond the paper (hairnet.yaml, paper-accelerator, exact counts): paper {beyond.paper_s * 1e3:.2f} ms, "
        f"strict {beyond.strict_s * 1e3:.2f} ms, optimized {beyond.optimized_s * 1e3:.2f} ms; lower bound "
        f"{beyond.lower_bound_s * 1e3:.2f} ms. "
        f"optimized is {printed / beyond.optimized_s:.1f}x faster than the appendix's "
        f"schedule, at {beyond.lower_bound_s / beyond.optimized_s:.0%} of the bound.",
        highlight=False,
    )
