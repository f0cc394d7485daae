"""Every command's terminal table at 80 and 120 columns: no number cut, the most important columns kept.

Each table is rendered into a rich Console of that width, read back cell by cell, and every number
shown is parsed and checked against the DataFrame it came from, in the unit its header names.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pytest
from rich.console import Console

from hwsim import api
from hwsim.errors import InputError
from hwsim.report import studies as study_tables
from hwsim.report import tables
from hwsim.report.terminal import UNITS, Column, View, elide_name, number, print_table, render_columns
from hwsim.studies import compare, reproduce, sweep, verify
from tests.reference_helpers import SMALL_NET

WIDTHS = (80, 120)
HW = api.load_hardware("paper-accelerator")


@dataclass(frozen=True)
class Case:
    frame: pd.DataFrame
    columns: list[Column]
    draw: Callable[[Console, View], None]
    must_show: tuple[str, ...]
    """Keys of the columns that must be shown even at 80 columns."""


def estimate_case(network: str, policy: str) -> Case:
    result = api.estimate(api.load_network(network), HW, policy)
    return Case(
        tables.layer_table(result.schedule, result.step_energy).assign(
            placement=[r["placement"] for r in tables.terminal_rows(result.schedule, result.step_energy)]
        ),
        tables.TERMINAL_COLUMNS,
        lambda console, view: tables.render_table(result, console, view),
        ("layer", "op", "placement", "transfer_s", "compute_s", "total_s"),
    )


def compare_case() -> Case:
    grid = compare.run_grid(["hairnet", "alexnet", "hairnet-standard"], ["paper-accelerator"], ["paper", "optimized"])
    summary = compare.summary_table(grid)
    return Case(
        summary.rows,
        study_tables.COMPARE_COLUMNS,
        lambda console, view: study_tables.render_comparison(summary, console, view),
        ("network", "hardware", "policy", "latency_s", "efficiency"),
    )


def layer_diff_case() -> Case:
    a, b = compare.run_grid(["hairnet", "hairnet-dense"], ["paper-accelerator"], ["paper"])
    diff = compare.layer_diff(a, b)
    return Case(
        diff.rows,
        study_tables.LAYER_DIFF_COLUMNS,
        lambda console, view: study_tables.render_comparison(diff, console, view),
        ("layer", "a_total_s", "b_total_s", "delta_s"),
    )


def sweep_case() -> Case:
    graph = api.load_network("hairnet-cifar10-small")
    axes = [sweep.parse_axis("memory.internal.capacity=512B..1MB:log:4", HW)]
    result = sweep.run(graph, HW, axes, policy="strict")
    assert len(result.infeasible), "the case needs an infeasible point, whose note wraps"
    return Case(
        result.rows,
        study_tables.sweep_columns(result),
        lambda console, view: study_tables.render_sweep(result, console, view),
        ("memory.internal.capacity_bytes", "total_s", "efficiency"),
    )


def verify_case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    path = tmp_path_factory.mktemp("verify") / "small.yaml"
    path.write_text(SMALL_NET)
    result = verify.verify(api.load_network(path), api.counting_named("paper"))
    assert result.differences, "the case needs a count that differs, shown as 'modelled ≠ executed'"
    return Case(
        study_tables.verification_frame(result),
        study_tables.verification_columns(),
        lambda console, view: study_tables.render_verification(result, console, view),
        ("layer", "op", "forward"),
    )


def ops_case() -> Case:
    rows = verify.op_table(api.load_network("hairnet"))
    return Case(
        pd.DataFrame(rows),
        study_tables.OPS_COLUMNS,
        lambda console, view: study_tables.render_op_table(rows, "hairnet", console, view),
        ("layer", "op", "forward", "forward_train"),
    )


def reproduce_cases() -> tuple[Case, Case]:
    appendix, chain, beyond = reproduce.compare_appendix(), reproduce.errata_chain(), reproduce.beyond_the_paper()

    def draw(console: Console, view: View) -> None:
        study_tables.render_reproduction(appendix, chain, beyond, console, view)

    return (
        Case(appendix.rows, study_tables.APPENDIX_COLUMNS, draw, ("row", "paper_layer", "paper_total_time_s")),
        Case(study_tables.errata_frame(chain), study_tables.ERRATA_COLUMNS, draw, ("label", "change", "total_s")),
    )


BUILDERS: dict[str, Callable[[pytest.TempPathFactory], list[Case]]] = {
    "estimate paper": lambda _: [estimate_case("hairnet", "paper")],
    "estimate optimized": lambda _: [estimate_case("hairnet", "optimized")],
    "estimate tiny values": lambda _: [estimate_case("hairnet-cifar10-small", "optimized")],
    "compare": lambda _: [compare_case()],
    "compare --per-layer": lambda _: [layer_diff_case()],
    "sweep": lambda _: [sweep_case()],
    "verify": lambda factory: [verify_case(factory)],
    "ops": lambda _: [ops_case()],
    "reproduce": lambda _: list(reproduce_cases()),
}
"""Command -> the tables it prints, in order."""


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Case]]:
    """Each command's tables, built on first use (the test that first needs them pays for them)."""

    class Built(dict):
        def __missing__(self, command: str) -> list[Case]:
            self[command] = BUILDERS[command](tmp_path_factory)
            return self[command]

    return Built()


# ---- reading a rendered table back -----------------------------------------------------------------


def read_tables(text: str) -> list[tuple[list[str], list[list[str]], str]]:
    """Every table in ``text``: its headers (wrapped lines joined), its rows (first line of each only),
    and the text after it, up to the next table."""
    found: list[tuple[list[str], list[list[str]], str]] = []
    headers: list[str] = []
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("┏"):
            headers, rows = [], []
        elif line.startswith("┃"):
            headers.append(line)
        elif line.startswith("│"):
            cells = [cell.strip() for cell in line.split("│")[1:-1]]
            if rows and not cells[0]:
                continue  # a wrapped cell's next line
            rows.append(cells)
        elif line.startswith("└"):
            bars = [i for i, c in enumerate(headers[0]) if c == "┃"]
            names = [" ".join(filter(None, (h[a + 1 : b].strip() for h in headers))) for a, b in zip(bars, bars[1:])]
            found.append((names, rows, ""))
        elif found and found[-1][1] is rows:  # after the table, until the next one starts
            names, table_rows, after = found[-1]
            found[-1] = (names, table_rows, after + line + "\n")
    return found


def decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def check_number(cell: str, value: float, scale: float) -> None:
    """``cell`` shows ``value`` / ``scale`` to the precision it prints, whole."""
    if math.isnan(value):
        assert cell == "—"
        return
    expected = value / scale
    if cell.startswith("<"):
        assert 0 < expected < float(cell[1:]) + 1e-12, (cell, value)
        return
    shown = float(cell.replace(",", "").replace("+", ""))
    assert abs(shown - expected) <= 0.5 * 10 ** -decimals(cell) + 1e-9 * abs(expected), (cell, value, scale)


def check_cell(column: Column, cell: str, row: dict, scale: float) -> None:
    value = row[column.key]
    if column.cell is not None:  # verify: the modelled count, then the executed one if they differ
        counts = [int(part.replace(",", "")) for part in cell.split(" ≠ ")]
        assert counts[0] == int(value) and (len(counts) == 1 or counts[1] == int(row[f"{column.key}_executed"]))
    elif column.kind == "text":
        full = "—" if value is None else str(value).split("\n")[0]
        if column.elide and "…" in cell:
            first, *_, last = cell.split("…")
            assert full.startswith(first) and full.endswith(last) and len(cell) < len(full), (cell, full)
        elif not column.wrap:
            assert cell == full
    elif column.kind == "int":
        assert cell == f"{int(value):,}"
    elif column.kind in ("percent", "signed_percent"):
        check_number(cell, float(value) * 100, 1.0)
    else:
        check_number(cell, float("nan") if value is None or value is pd.NA else float(value), scale)


def check_table(case: Case, headings: list[str], rows: list[list[str]], after: str, width: int | None) -> None:
    rendered = {r.heading: r for r in render_columns(case.frame, case.columns)}
    assert set(headings) <= set(rendered), headings
    assert len(rows) == len(case.frame)
    left_out = re.search(r"^not shown: (.*?) \(--wide", " ".join(after.split()))
    assert {h for h in rendered if h not in headings} == (set(left_out[1].split(", ")) if left_out else set())
    shown = {r.column.key for heading, r in rendered.items() if heading in headings}
    assert set(case.must_show) <= shown, f"at {width} columns: {set(case.must_show) - shown} not shown"
    for i, record in enumerate(case.frame.to_dict("records")):
        for heading, cell in zip(headings, rows[i]):
            check_cell(rendered[heading].column, cell, record, rendered[heading].scale)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", list(BUILDERS))
def test_every_number_shown_is_whole_and_the_important_columns_fit(cases, command: str, width: int) -> None:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    for case in cases[command][:1]:
        case.draw(console, View())
    output = console.export_text()
    assert max(len(line) for line in output.splitlines()) <= width
    assert "e-0" not in output and "e+0" not in output  # no exponents
    for case, (headings, rows, after) in zip(cases[command], read_tables(output), strict=True):
        check_table(case, headings, rows, after, width)


@pytest.mark.parametrize("command", ["estimate optimized", "compare", "verify", "reproduce"])
def test_wide_shows_every_column_whole(cases, command: str) -> None:
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    cases[command][0].draw(console, View(wide=True))
    output = console.export_text()
    assert "not shown" not in output
    for case, (headings, rows, after) in zip(cases[command], read_tables(output), strict=True):
        assert headings == [r.heading for r in render_columns(case.frame, case.columns)]
        check_table(case, headings, rows, after, None)


def test_columns_picks_columns_in_the_order_given_and_a_wrong_name_lists_them(cases) -> None:
    case = cases["estimate optimized"][0]
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    print_table(console, case.frame, case.columns, view=View(columns=("total_s", "layer", "note")))
    (headings, rows, _), *_ = read_tables(console.export_text())
    assert headings == ["total ms", "layer", "note"]
    assert rows[0][1] == case.frame["layer"][0]  # whole: as wide as the chosen columns need
    with pytest.raises(InputError, match=r"--columns: unknown column 'totl_s'; choose from layer,op,"):
        print_table(console, case.frame, case.columns, view=View(columns=("totl_s",)))


def test_units_follow_the_values_and_numbers_never_use_exponents() -> None:
    assert [number(v) for v in (12.3346, 0.13127, 1234.6, 0.0004, 0.0, -2.5)] == [
        "12.33",
        "0.131",
        "1,235",
        "<0.001",
        "0",
        "-2.5",
    ]
    assert dict(UNITS["time"])[1e-3] == "ms"
    frame = pd.DataFrame({"t": [4.8e-9, 1.3e-4], "b": [40, 65_536]})
    t, b = render_columns(frame, [Column("t", "total", "time"), Column("b", "in", "bytes")])
    assert (t.heading, t.cells) == ("total µs", ["0.005", "130"])
    assert (b.heading, b.cells) == ("in kB", ["0.04", "65.54"])


def test_long_names_lose_their_middle() -> None:
    assert elide_name("stage3.block2.pw", 15) == "stage3.…ock2.pw"
    assert elide_name("stage1.block2.pw+pw_relu+pool2", 24) == "stage1.block2.pw+…+pool2"
    assert elide_name("stage1.block2.pw+pw_relu+pool2", 20) == "stage1.block2.pw+…"
    assert elide_name("gap", 20) == "gap"


def test_the_estimate_table_does_not_pay_for_pandas() -> None:
    """pandas is half a second of start-up that `hwsim estimate` without -o does not need (bench_estimate.py)."""
    code = (
        "import sys; from rich.console import Console; from hwsim import api; from hwsim.report import tables; "
        "e = api.estimate(api.load_network('hairnet-cifar10-small'), api.load_hardware('paper-accelerator')); "
        "tables.render_table(e, Console(file=open('/dev/null', 'w'))); print('pandas' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
