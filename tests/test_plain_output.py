"""Output to a pipe or a file is rich's, byte for byte, though rich is neither imported nor asked to render.

:class:`PlainConsole` lays out text and tables itself where it can be sure of rich's result, and hands
the rest to rich. Each test prints the same thing both ways: random text, random tables, and every
command's own tables at several widths.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from hwsim.report import plain
from hwsim.report.plain import PlainConsole, table_lines
from hwsim.report.terminal import View, _print_cells
from tests.test_terminal_tables import BUILDERS


def rich_console(width: int) -> Console:
    """What ``hwsim`` printed through before: rich on a pipe (no colour)."""
    return Console(file=io.StringIO(), width=width, soft_wrap=False, color_system=None)


def printed(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def printed_plainly(draw: Callable[[], None]) -> str:
    """What ``draw`` writes to standard output (where a :class:`PlainConsole` and its rich fallback print)."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        draw()
    return out.getvalue()


PIECES = [*"ab Z9.,:%()[]/\\-…—µ×≠é中\t\n", "[bold]", "[/bold]", "[/]", "[dim]", "[red]", "[/red]", "[x=1]", "\\["]
TEXT = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@given(text=TEXT, width=st.integers(1, 30))
def test_a_line_is_printed_as_rich_prints_it(text: str, width: int) -> None:
    reference = rich_console(width)
    try:
        reference.print(text, highlight=False)
    except Exception as err:  # rich refuses some markup ("[/bold]" closing nothing): so must the plain console
        with pytest.raises(type(err)):
            PlainConsole(width).print(text, highlight=False)
        return
    assert printed_plainly(lambda: PlainConsole(width).print(text, highlight=False)) == printed(reference)


WORDS = st.text(alphabet=st.sampled_from(list("abc xyz 012.…—µ")), max_size=25)


@given(
    title=WORDS,
    columns=st.lists(st.tuples(WORDS, st.sampled_from(["left", "right"]), st.integers(1, 12)), min_size=1, max_size=5),
    data=st.data(),
)
def test_a_table_is_framed_as_rich_frames_it(title: str, columns: list[tuple[str, str, int]], data: st.DataObject):
    rows = data.draw(st.lists(st.lists(WORDS, min_size=len(columns), max_size=len(columns)), max_size=4))
    reference = rich_console(200)
    _print_cells(reference, title, columns, rows, None)
    lines = table_lines(title, columns, rows)
    if lines is not None:
        assert "".join(line + "\n" for line in lines) == printed(reference)


@pytest.mark.parametrize("command", sorted(BUILDERS))
def test_every_commands_tables_match_rich(command: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    for case in BUILDERS[command](tmp_path_factory):
        for width, view in [(80, View()), (120, View()), (plain.PIPE_WIDTH, View()), (80, View(wide=True))]:
            reference = rich_console(width)
            case.draw(reference, view)
            fast = printed_plainly(lambda: case.draw(PlainConsole(width), view))  # noqa: B023
            assert fast == printed(reference), (command, width, view)


def test_hwsims_own_tables_take_the_fast_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The estimate tables need no rich at any width: otherwise the tests above would pass by falling back."""
    (case,) = BUILDERS["estimate optimized"](tmp_path_factory)
    for width in (80, 120, plain.PIPE_WIDTH):
        console = PlainConsole(width)
        printed_plainly(lambda: case.draw(console, View()))  # noqa: B023
        assert "rich" not in console.__dict__, width  # its rich console was never created


def test_the_punctuation_taken_as_one_cell_is_one_cell_for_rich() -> None:
    extra = {c for c in plain._NARROW if not (0x20 <= ord(c) < 0x7F)}
    assert all(cell_len(c) == 1 for c in extra)


def test_hwsim_estimate_imports_neither_pandas_nor_rich_nor_matplotlib() -> None:
    """Those are half of `hwsim estimate`'s start-up when a pipe or a file gets the report (bench_estimate.py)."""
    code = (
        "import sys; from hwsim.cli import main\n"
        "for args in (['estimate'], ['estimate', '--format', 'json'], ['estimate', '--format', 'csv'], "
        "['estimate', '--format', 'md']):\n"
        "    try: main(args, standalone_mode=False)\n"
        "    except SystemExit: pass\n"
        "print(sorted(m for m in ('pandas', 'rich', 'matplotlib') if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip() == "[]"
