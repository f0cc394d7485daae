"""Tables that fit the terminal: every command's table goes through :func:`print_table`.

A terminal table never cuts a number. When the columns do not all fit, the most important ones are
kept (each table ranks its columns: layer, op, placement, transfer, compute, total, then the rest),
long names are elided in the middle (``stage3.b…ock2.pw``, ``stage1.block2.pw+…+pool2``), long text
wraps, and a line under the table names what was left out. ``View(wide=True)`` prints every column
however wide the table gets; ``View(columns=...)`` prints the chosen ones. Quantities share one
unit per kind and table, chosen from the largest value and named in the header (``total ms``), so
a tiny value reads ``0.004``, not ``4e-06``; one too small for three decimals reads ``<0.001``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from hwsim.errors import InputError
from hwsim.report.plain import PlainConsole, narrow, strip_markup, table_lines, table_width

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    Screen = Console | PlainConsole
    """Where a table goes: a rich console (a terminal), or a :class:`PlainConsole` (a pipe or a file)."""

SIGNIFICANT = 4
MAX_DECIMALS = 3
ELIDED_MIN = 16
"""Narrowest an elided name gets, unless its column says otherwise: enough for ``stage3.bl…2.pw``."""
WRAPPED_MIN = 24
"""Narrowest a wrapping text column gets."""
HEADER_MIN = 6
"""A header wraps at its spaces, but not into words narrower than this (``b - a ms``, not one word a line)."""
THE_REST = 99
"""The priority of columns shown only when there is room after the ranked ones (in the table's order)."""

UNITS: dict[str, list[tuple[float, str]]] = {
    "time": [(1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")],
    "bytes": [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B")],
    "bandwidth": [(1e12, "TB/s"), (1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s"), (1.0, "B/s")],
    "throughput": [(1e15, "PFLOP/s"), (1e12, "TFLOP/s"), (1e9, "GFLOP/s"), (1e6, "MFLOP/s"), (1.0, "FLOP/s")],
    "count": [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")],
    "energy": [(1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ")],
}
"""Kinds of quantity whose unit is chosen per table, largest first."""
PLAIN_KINDS = ("text", "int", "number", "percent", "signed_percent", "ratio")


@dataclass(frozen=True)
class Column:
    """One column of a terminal table, drawn from the frame's column ``key``.

    ``kind``: ``text``; ``int`` (exact, with separators); ``number`` (4 significant digits);
    ``percent`` and ``signed_percent`` (a fraction shown as %); ``ratio`` (×); or a kind of
    :data:`UNITS` (time, bytes, bandwidth, throughput, count, energy), whose unit goes in the header.
    ``priority``: lower is kept first when the terminal is narrow; ties keep the table's order.
    ``floor``: the narrowest an elided or wrapped column gets (default :data:`ELIDED_MIN`, :data:`WRAPPED_MIN`).
    ``cell``, if given, makes the cell's text (rich markup allowed) from the whole row.
    """

    key: str
    heading: str
    kind: str = "text"
    priority: int = THE_REST
    elide: bool = False
    wrap: bool = False
    floor: int = 0
    cell: Callable[[Mapping[str, Any]], str] | None = None

    def __post_init__(self) -> None:
        assert self.kind in UNITS or self.kind in PLAIN_KINDS, f"unknown column kind {self.kind!r}"


@dataclass(frozen=True)
class View:
    """What the user asked for: every column (``wide``), or these columns by key, in this order."""

    wide: bool = False
    columns: tuple[str, ...] = field(default_factory=tuple)


FITTED = View()
"""The default: the columns that fit the terminal."""


def _value(value: Any) -> float:
    """A cell's number; NaN for a missing one (None, NaN, pandas' NA: an infeasible sweep point)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def unit_for(kind: str, values: Sequence[float]) -> tuple[float, str]:
    """The unit of ``kind`` in which the largest of ``values`` is at least 1 (the smallest unit if none is)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    largest = max(finite, default=0.0)
    for scale, name in UNITS[kind]:
        if largest >= scale:
            return scale, name
    return UNITS[kind][-1]


def number(value: float, significant: int = SIGNIFICANT, max_decimals: int = MAX_DECIMALS) -> str:
    """``12.33``, ``0.131``, ``1,234``: positional, never an exponent; ``<0.001`` below what the decimals show."""
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = min(max_decimals, max(0, significant - 1 - magnitude))
    text = f"{value:,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return ("<" if value > 0 else ">-") + f"{10**-max_decimals:.{max_decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def elide_middle(text: str, width: int) -> str:
    """``stage3.block2.pw`` in 15 cells: ``stage3.b…ock2.pw`` (the ends tell names apart)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    keep = width - 1
    head = (keep + 1) // 2
    return text[:head] + "…" + text[len(text) - (keep - head) :]


def elide_name(name: str, width: int) -> str:
    """A layer or step name in ``width`` cells, cut in the middle.

    A fused step (``stage1.block2.pw+pw_relu+pool2``) loses its middle members first
    (``stage1.block2.pw+…+pool2``, then ``stage1.block2.pw+…``): its first layer names it.
    """
    if len(name) <= width:
        return name
    first, *fused = name.split("+")
    if fused:
        for shorter in (f"{first}+…+{fused[-1]}", f"{first}+…"):
            if len(shorter) <= width:
                return shorter
        return elide_middle(f"{first}+…", width)
    return elide_middle(name, width)


def _plain(kind: str, value: Any) -> str:
    if kind == "text":
        return "—" if value is None else str(value)
    value = _value(value)
    if math.isnan(value):
        return "—"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "percent":
        return number(value * 100, max_decimals=1)
    if kind == "signed_percent":
        return f"{value * 100:+.2f}"
    if kind == "ratio":
        return number(value, max_decimals=3)
    return number(value)


@dataclass(frozen=True)
class Rendered:
    """What a column shows: its header (with the unit chosen for this table) and its cells."""

    column: Column
    heading: str
    cells: list[str]
    scale: float = 1.0

    @cached_property
    def cell_width(self) -> int:
        return max((width for c in self.cells for width in _line_widths(c)), default=0)

    @property
    def natural(self) -> int:
        return max(self.cell_width, len(self.heading))

    @cached_property
    def narrowest(self) -> int:
        """Cells whole, the header wrapped at its spaces; elided and wrapped text down to a floor."""
        fixed = max(self.cell_width, *(len(word) for word in self.heading.split()), min(len(self.heading), HEADER_MIN))
        if self.column.elide:
            return min(fixed, self.column.floor or ELIDED_MIN)
        if self.column.wrap:
            return min(fixed, self.column.floor or WRAPPED_MIN)
        return fixed

    @property
    def stretchy(self) -> bool:
        return self.column.elide or self.column.wrap


def _line_widths(cell: str) -> list[int]:
    """The width in terminal cells of each line of a cell as shown (markup removed)."""
    plain = strip_markup(cell)
    if plain is not None and narrow(plain.replace("\n", "")):
        return [len(line) for line in plain.split("\n")]
    from rich.cells import cell_len
    from rich.text import Text

    return [cell_len(line) for line in Text.from_markup(cell).plain.split("\n")]


Rows = Sequence[Mapping[str, Any]]
"""A table's rows as records; a DataFrame passes as its ``to_dict("records")``."""


def _records(rows: Rows | pd.DataFrame) -> list[Mapping[str, Any]]:
    return rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)


def render_columns(rows: Rows | pd.DataFrame, columns: Sequence[Column]) -> list[Rendered]:
    """Every column's header and cells, one unit per kind of quantity for the whole table."""
    records = _records(rows)
    units: dict[str, tuple[float, str]] = {}
    for kind in {c.kind for c in columns if c.kind in UNITS}:
        units[kind] = unit_for(kind, [_value(r[c.key]) for c in columns if c.kind == kind for r in records])
    rendered = []
    for column in columns:
        if column.kind in UNITS:
            scale, unit = units[column.kind]
            heading = f"{unit}{column.heading}" if column.kind == "count" else f"{column.heading} {unit}"
            cells = [column.cell(r) if column.cell else number(_value(r[column.key]) / scale) for r in records]
            rendered.append(Rendered(column, heading, cells, scale))
        else:
            heading = {"percent": f"{column.heading} %", "signed_percent": f"{column.heading} %"}.get(
                column.kind, column.heading
            )
            cells = [column.cell(r) if column.cell else _plain(column.kind, r[column.key]) for r in records]
            rendered.append(Rendered(column, heading, cells))
    return rendered


def choose(rendered: Sequence[Rendered], width: int, every: bool = False) -> dict[str, int]:
    """Key -> width of the columns that fit in ``width`` cells, the most important first (``every``: all of them,
    however wide).

    The ranked columns come first, each at its narrowest; then elided names get back what room
    allows (whole names before more columns); then the rest, in the table's order; what is still
    left puts headers on one line, then widens wrapped text.
    """
    ranked = sorted(rendered, key=lambda r: r.column.priority)  # stable: ties keep the table's order
    kept: dict[str, int] = {}

    def keep(columns: Sequence[Rendered]) -> None:
        for r in columns:
            if every or table_width([*kept.values(), r.narrowest]) <= width:
                kept[r.column.key] = r.narrowest

    def widen(columns: Sequence[Rendered]) -> None:
        for r in columns:
            if r.column.key in kept:
                spare = width - table_width(list(kept.values()))
                kept[r.column.key] += max(0, min(spare, r.natural - kept[r.column.key]))

    keep([r for r in ranked if r.column.priority < THE_REST])
    widen([r for r in ranked if r.column.elide])
    keep([r for r in ranked if r.column.priority >= THE_REST])
    widen([r for r in ranked if not r.stretchy])  # headers on one line
    widen([r for r in ranked if r.column.wrap])
    return kept


def print_table(
    console: Screen,
    frame: Rows | pd.DataFrame,
    columns: Sequence[Column],
    title: str = "",
    view: View = FITTED,
    row_styles: Sequence[str] | None = None,
) -> None:
    """Print ``frame`` (a DataFrame, or records without pandas' start-up) as a table that fits ``console``
    (see the module docstring), then what was left out."""
    by_key = {c.key: c for c in columns}
    unknown = [key for key in view.columns if key not in by_key]
    if unknown:
        raise InputError(f"unknown column {unknown[0]!r}; choose from {','.join(by_key)}", field="--columns")
    shown = [by_key[key] for key in view.columns] if view.columns else list(columns)
    rendered = render_columns(frame, shown)
    if view.wide:
        widths = {r.column.key: r.natural for r in rendered}
    else:
        widths = choose(rendered, console.width, every=bool(view.columns))
    kept = [r for r in rendered if r.column.key in widths]
    justify = ["left" if r.column.kind == "text" else "right" for r in kept]
    rows = [
        [elide_name(r.cells[i], widths[r.column.key]) if r.column.elide else r.cells[i] for r in kept]
        for i in range(len(frame))
    ]
    framed = [(r.heading, how, widths[r.column.key]) for r, how in zip(kept, justify)]
    _print_cells(console, title, framed, rows, row_styles)
    left_out = [r for r in rendered if r.column.key not in widths]
    if left_out:
        example = ",".join(r.column.key for r in [*kept[:1], *left_out[:2]])  # none kept on a terminal 5 wide
        console.print(
            f"not shown: {', '.join(r.heading for r in left_out)} (--wide shows every column; "
            f"--columns {example} picks some, named as in the CSV)",
            highlight=False,
            style="dim",
        )


def _print_cells(
    console: Screen,
    title: str,
    columns: Sequence[tuple[str, str, int]],
    rows: Sequence[Sequence[str]],
    row_styles: Sequence[str] | None,
) -> None:
    """The table's title, header and rows (heading, justification and width per column), framed: laid out here
    on a pipe or a file (row styles change nothing without colour), through rich on a terminal or for cells
    :func:`table_lines` leaves to it."""
    if isinstance(console, PlainConsole):
        lines = table_lines(title, columns, rows)
        if lines is not None:
            console.write_lines(lines)
            return
        console = console.rich
    from rich.table import Table

    table = Table(title=title or None, header_style="bold")
    for heading, justify, width in columns:
        # every cell fits but wrapped text; a header may wrap at its spaces
        table.add_column(heading, justify="left" if justify == "left" else "right", width=width)
    for i, cells in enumerate(rows):
        table.add_row(*cells, style=row_styles[i] if row_styles else None)
    needed = table_width([width for _, _, width in columns])
    saved = console.width
    console.width = max(saved, needed)  # --wide, and --columns when they do not fit, print whole rows
    try:
        console.print(table)
    finally:
        console.width = saved
