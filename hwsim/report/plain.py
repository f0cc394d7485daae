"""What rich prints to a pipe or a file, without importing rich: the fast path of every table and line.

Without colours, rich's output is text laid out by a few rules: markup tags removed, words wrapped at
the width, table cells padded and framed in box-drawing characters. Rendering a 60-row table through
rich takes 50 to 100 ms and importing it 30 ms, several times what the rest of ``hwsim estimate``
costs, so :class:`PlainConsole` follows those rules itself for text it can be sure of (characters one
cell wide, simple style tags, a title that fits) and hands anything else to a real rich console,
created on first need. Either way the bytes are rich's: tests/test_plain_output.py prints random
text and tables both ways and compares them.
"""

from __future__ import annotations

import builtins
import os
import re
import sys
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

PIPE_WIDTH = 220
"""Columns of a table sent to a pipe or a file, unless COLUMNS says otherwise: all of the estimate table's
but its notes."""

_NARROW = frozenset(
    [chr(c) for c in range(0x20, 0x7F)]
    + [chr(c) for lo, hi in ((0xA0, 0xAC), (0xAE, 0x2FF), (0x370, 0x482), (0x2500, 0x25FC)) for c in range(lo, hi + 1)]
    + list("…—–≠∞−≤≥→←·•")
)
"""Characters one terminal cell wide by rich's own measure (its single-cell ranges, and the punctuation hwsim's
tables use); text with any other character goes to rich, which knows the width of every character."""

_TAG = re.compile(r"(\\*)\[([a-z#/@][^[]*?)]")
"""rich's markup tag, with the backslashes that may escape it."""
_STYLE_TAG = re.compile(r"/?[a-z][a-z0-9_ ]*|/")
"""The tags this module removes itself: a style (``bold``, ``dim``, ``bold red``), its close, or ``[/]``."""
_EMOJI_CODE = re.compile(r":\S*?:")
"""What rich might replace by an emoji (``:smile:``)."""
_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")

HEAVY_HEAD = ("┏━┳┓", "┃┃┃", "┡━╇┩", "│││", "└─┴┘")
"""rich's default table box: top, header row, under the header, body row, bottom (left, fill or divider, right)."""


def table_width(widths: Sequence[int]) -> int:
    """Cells of a rich table with its default box: a space either side of each cell and a rule between."""
    return sum(widths) + 3 * len(widths) + 1


def narrow(text: str) -> bool:
    """Whether every character of ``text`` is one cell wide (so its width is its length)."""
    return _NARROW.issuperset(text)


def strip_markup(text: str) -> str | None:
    """``text`` as rich shows it without colour: simple style tags removed. None when rich must decide
    (escaped brackets, links, a close that opens nothing, a possible emoji code)."""
    if "[" not in text:
        return None if _EMOJI_CODE.search(text) else text
    if "\\[" in text:
        return None  # rich turns an escaped bracket into a bracket
    open_tags: list[str] = []
    pieces = []
    position = 0
    for match in _TAG.finditer(text):
        backslashes, tag = match.groups()
        if backslashes or not _STYLE_TAG.fullmatch(tag):
            return None
        if tag.startswith("/"):
            name = tag[1:].strip()
            if not open_tags or (name and name not in open_tags):
                return None  # rich raises MarkupError: let it
            open_tags.pop(len(open_tags) - 1 - open_tags[::-1].index(name) if name else -1)
        else:
            open_tags.append(tag.strip())
        pieces.append(text[position : match.start()])
        position = match.end()
    pieces.append(text[position:])
    plain = "".join(pieces)
    return None if _EMOJI_CODE.search(plain) else plain


def divide(text: str, width: int, fold: bool) -> list[str]:
    """``text`` cut into lines of at most ``width`` cells at word boundaries, as rich's ``divide_line`` does: a
    word longer than the width is cut into pieces of the width (``fold``), or stays whole on a line of its own."""
    breaks = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group(0)
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width and fold:
            pieces = [word[i : i + width] for i in range(0, len(word), width)]
            for piece in pieces[:-1]:
                if start:
                    breaks.append(start)
                start += len(piece)
            if start:
                breaks.append(start)
            offset = len(pieces[-1])
        elif length > width or (offset and start):
            if start:
                breaks.append(start)
            offset = len(word)
    bounds = [0, *breaks, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


def _rstrip_end(line: str, width: int) -> str:
    """rich's ``Text.rstrip_end``: what a line has beyond ``width``, as far as it is trailing white space."""
    if len(line) > width and (space := _TRAILING_SPACE.search(line)):
        return line[: len(line) - min(len(space.group(0)), len(line) - width)]
    return line


def printed_lines(text: str, width: int) -> list[str]:
    """What ``console.print(text)`` writes, line by line, for narrow text without markup: each line wrapped at
    words to ``width``, a longer word folded."""
    return [_rstrip_end(piece, width)[:width] for line in text.split("\n") for piece in divide(line, width, fold=True)]


def wrap(text: str, width: int, justify: str) -> list[str]:
    """A table cell's lines, each exactly ``width`` cells: rich's ``Text.wrap`` with the column's justification
    (``left`` or ``right``) and overflow ``ellipsis``, for one line of narrow text."""
    if len(text) <= width:  # no break, nothing beyond the width
        return [text.rstrip().rjust(width) if justify == "right" else text.ljust(width)]
    lines = []
    for piece in divide(text, width, fold=False):
        line = _rstrip_end(piece, width)
        if justify == "right":
            line = line.rstrip()
        if len(line) > width:
            line = line[: width - 1] + "…"
        lines.append(line.rjust(width) if justify == "right" else line.ljust(width))
    return lines


def table_lines(title: str, columns: Sequence[tuple[str, str, int]], rows: Sequence[Sequence[str]]) -> list[str] | None:
    """The lines of a rich ``Table(title=..., header_style="bold")`` whose columns (heading, ``left`` or ``right``,
    width) have fixed widths, as printed without colour; None when a cell or the title needs rich (see
    :func:`strip_markup`, :func:`narrow`), or the title is wider than the table."""
    headings = [heading for heading, _, _ in columns]
    justify = [how for _, how, _ in columns]
    widths = [width for _, _, width in columns]
    if min(widths, default=0) < 1:
        return None
    width_of_table = table_width(widths)
    lines = []
    if title:
        plain_title = strip_markup(title)
        if plain_title is None or not narrow(plain_title) or "\n" in plain_title:
            return None
        plain_title = plain_title.rstrip()
        if len(plain_title) > width_of_table:
            return None
        left = (width_of_table - len(plain_title)) // 2
        lines.append(" " * left + plain_title + " " * (width_of_table - left - len(plain_title)))
    top, head, rule, body, bottom = HEAVY_HEAD
    lines.append(top[0] + top[2].join(top[1] * (w + 2) for w in widths) + top[3])
    for index, cells in enumerate([headings, *rows]):
        wrapped = []
        for text, width, how in zip(cells, widths, justify):
            plain = strip_markup(text)
            if plain is None or "\n" in plain or not narrow(plain):
                return None
            wrapped.append(wrap(plain, width, how))
        height = max(len(cell) for cell in wrapped)
        for cell, width in zip(wrapped, widths):  # a header sits on the rule below it, a body row under the one above
            blank = [" " * width] * (height - len(cell))
            cell[:] = blank + cell if index == 0 else cell + blank
        edge = head if index == 0 else body
        lines += [edge[0] + edge[1].join(f" {cell[i]} " for cell in wrapped) + edge[2] for i in range(height)]
        if index == 0:
            lines.append(rule[0] + rule[2].join(rule[1] * (w + 2) for w in widths) + rule[3])
    lines.append(bottom[0] + bottom[2].join(bottom[1] * (w + 2) for w in widths) + bottom[3])
    return lines


def plain_output() -> bool:
    """Whether rich would print to standard output without colour or styles, decided without rich: not a
    terminal, nothing in the environment that makes rich treat it as one, and UTF-8 for the box characters."""
    stdout = sys.stdout
    forced = any(os.environ.get(name) for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"))
    jupyter = hasattr(builtins, "get_ipython")
    encoding = (getattr(stdout, "encoding", None) or "").lower().replace("-", "")
    try:
        terminal = stdout.isatty()
    except (AttributeError, ValueError):
        return False
    return not (terminal or forced or jupyter) and encoding == "utf8"


def pipe_width() -> int | None:
    """The width rich gives a console on a pipe or a file: COLUMNS, else :data:`PIPE_WIDTH`; None when COLUMNS
    is set but not a positive number (then it counts as unset: the terminal's width, or :data:`PIPE_WIDTH`)."""
    columns = os.environ.get("COLUMNS")
    if columns is None:
        return PIPE_WIDTH
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


class PlainConsole:
    """Prints as a rich ``Console(width=..., soft_wrap=False)`` does on a pipe or a file, without importing rich
    for text it can lay out itself (:func:`strip_markup`, :func:`narrow`, lines that fit); any other object
    or text goes to a rich console on the same stream."""

    is_terminal = False

    def __init__(self, width: int) -> None:
        self.width = width

    @cached_property
    def rich(self) -> Console:
        from rich.console import Console

        return Console(width=self.width, soft_wrap=False)

    def print(self, *objects: Any, style: str | None = None, highlight: bool | None = None, **options: Any) -> None:
        """``console.print`` for one string: without colour, ``style`` and ``highlight`` change nothing; any
        other option (``markup``, ``end``, ...) is left to rich."""
        if len(objects) == 1 and isinstance(objects[0], str) and not options:
            text = strip_markup(objects[0])
            if text is not None and narrow(text.replace("\n", "")):
                self.write_lines(printed_lines(text, self.width))
                return
        self.rich.print(*objects, style=style, highlight=highlight, **options)

    def write_lines(self, lines: Sequence[str]) -> None:
        sys.stdout.write("".join(line + "\n" for line in lines))
