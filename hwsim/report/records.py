"""CSV, JSON and Markdown from records (one dict per row), exactly as pandas writes the same DataFrame.

A report of 60 layers does not need pandas, whose import is half a second of ``hwsim estimate -o r.json``
on a loaded machine. These writers follow the rules pandas applies to such a frame: a column's type is
inferred from its values (whole numbers and floats together are floats), a missing value is an empty
CSV cell or JSON ``null``, floats in CSV are Python's shortest repr, and ``to_json(double_precision=15)``
rounds floats to 15 decimals the way its C encoder does. Markdown is tabulate's ``pipe`` table, which
pandas calls; a table of numbers and printable ASCII text is written here by tabulate's rules (its import
and its per-cell parsing were a tenth of ``hwsim estimate -o r.md``), anything else by tabulate itself.
tests/test_records.py writes random records and every bundled report both ways and compares the text.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Record = Mapping[str, Any]

_JSON_DECIMALS = 15
_JSON_EXPONENT_ABOVE = 1e16 - 1
_JSON_EXPONENT_BELOW = 1e-15


def column_kind(values: Iterable[Any]) -> str:
    """What pandas makes of a column of Python values: ``int``, ``float`` (whole numbers with floats, or any
    number with a missing value), ``bool`` or ``object``."""
    kinds = {"none" if v is None else "bool" if isinstance(v, bool) else type(v).__name__ for v in values}
    kinds = {"float" if kind.startswith("float") else "int" if kind.startswith("int") else kind for kind in kinds}
    if kinds and kinds <= {"int"}:
        return "int"
    if kinds and kinds <= {"bool"}:
        return "bool"
    if ("float" in kinds and kinds <= {"int", "float", "none"}) or kinds == {"int", "none"}:
        return "float"
    return "object"


def typed_rows(records: Sequence[Record], columns: Sequence[str], common: bool = False) -> list[list[Any]]:
    """The records as rows of ``columns``, each value of the Python type pandas would hold it as
    (a float column's whole numbers as floats, its missing values as NaN); ``common``: as ``DataFrame.values``
    holds them, all numbers floats when every column is numeric and one is float."""
    kinds = [column_kind(r[c] for r in records) for c in columns]
    if common and "float" in kinds and set(kinds) <= {"int", "float"}:
        kinds = ["float"] * len(kinds)
    return [
        [
            (math.nan if r[c] is None else float(r[c])) if kind == "float" else int(r[c]) if kind == "int" else r[c]
            for c, kind in zip(columns, kinds)
        ]
        for r in records
    ]


def _csv_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else value


def to_csv(records: Sequence[Record], columns: Sequence[str]) -> str:
    """``pd.DataFrame(records, columns=columns).to_csv(index=False)``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=os.linesep)
    writer.writerow(columns)
    writer.writerows([_csv_cell(v) for v in row] for row in typed_rows(records, columns))
    return out.getvalue()


def csv_line(values: Sequence[Any]) -> str:
    """One CSV row of already typed values (see :func:`typed_rows`), as :func:`to_csv` writes it."""
    out = io.StringIO()
    csv.writer(out, lineterminator=os.linesep).writerow([_csv_cell(v) for v in values])
    return out.getvalue()


def json_double(value: float) -> str:
    """A float as pandas' JSON encoder writes it at ``double_precision=15``: fixed point, rounded to 15
    decimals (half to even, except that .5 over a zero rounds up), trailing zeros dropped; ``%.15g`` beyond
    1e16 - 1 and below 1e-15 (pandas/_libs/src/vendored/ujson/lib/ultrajsonenc.c)."""
    negative = value < 0
    magnitude = -value if negative else value
    if magnitude > _JSON_EXPONENT_ABOVE or (magnitude != 0.0 and magnitude < _JSON_EXPONENT_BELOW):
        return f"{value:.15g}"
    scale = 10**_JSON_DECIMALS
    whole = int(magnitude)
    scaled = (magnitude - whole) * scale
    fraction = int(scaled)
    rest = scaled - fraction
    if rest > 0.5 or (rest == 0.5 and (fraction == 0 or fraction & 1)):
        fraction += 1
    if fraction >= scale:
        fraction = 0
        whole += 1
    digits = f"{fraction:0{_JSON_DECIMALS}d}".rstrip("0") if fraction else "0"
    return f"{'-' if negative else ''}{whole}.{digits}"


def _json_value(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(json_double(value))
    return value


def to_json_records(records: Sequence[Record], columns: Sequence[str]) -> list[dict[str, Any]]:
    """``json.loads(pd.DataFrame(records, columns=columns).to_json(orient="records", double_precision=15))``."""
    return [{c: _json_value(v) for c, v in zip(columns, row)} for row in typed_rows(records, columns)]


def to_markdown(records: Sequence[Record], columns: Sequence[str], floatfmt: str) -> str:
    """``pd.DataFrame(records, columns=columns).to_markdown(index=False, floatfmt=floatfmt)``."""
    rows = typed_rows(records, columns, common=True)
    if rows and all(map(_plain_cell, columns)) and all(_plain_cell(v) for row in rows for v in row):
        return pipe_table(rows, columns, floatfmt)
    from tabulate import tabulate  # multi-line, wide, coloured or control characters: tabulate's own rules

    return str(tabulate(rows, headers=list(columns), tablefmt="pipe", floatfmt=floatfmt))


def _plain_cell(value: Any) -> bool:
    """A number, a missing value, or one line of printable ASCII: what :func:`pipe_table` writes as tabulate does."""
    if type(value) is str:
        return value.isascii() and value.isprintable()
    return value is None or type(value) in (bool, int, float)


# The rules below are tabulate 0.10's (tabulate/__init__.py: _type, _more_generic, _format, _afterpoint,
# _align_column, _pipe_line_with_colons) for cells that pass _plain_cell, with its defaults: numbers
# aligned on the decimal point, text flushed left and stripped, two spaces of minimum padding.
_THOUSANDS = re.compile(r"^(([+-]?[0-9]{1,3})(?:,([0-9]{3}))*)?(?(1)\.[0-9]*|\.[0-9]+)?$")
_GENERALITY = (type(None), bool, int, float, str)
"""Cell types from the least to the most general: a column takes the most general of its cells'."""


def _converts(kind: type, text: str) -> bool:
    try:
        kind(text)
    except (ValueError, TypeError):
        return False
    return True


def _reads_as_number(text: str) -> bool:
    """Text ``float`` accepts, unless it only overflows to infinity ("1e999"); "inf" and "nan" themselves count."""
    if not _converts(float, text):
        return False
    value = float(text)
    return not (math.isinf(value) or math.isnan(value)) or text.lower() in ("inf", "-inf", "nan")


def _cell_type(value: Any) -> type:
    """The type tabulate reads a cell as: empty text is missing, and text that reads as a number is one."""
    if value is None or value == "":
        return type(None)
    if type(value) is not str:
        return type(value)
    if value in ("True", "False"):
        return bool
    if _converts(int, value) or (_THOUSANDS.match(value) and "." not in value):
        return int
    if _reads_as_number(value) or _THOUSANDS.match(value):
        return float
    return str


def _cell_text(value: Any, kind: type, floatfmt: str) -> str:
    if value is None or value == "":
        return ""
    if kind is int:
        return format(value, "")
    if kind is float:
        if isinstance(value, str):
            value = value.replace(",", "")
        try:
            return format(float(value), floatfmt)
        except (ValueError, TypeError):
            return f"{value}"
    return f"{value}"


def _after_point(text: str) -> int:
    """Characters after the decimal point (or the exponent's ``e``) of a number; -1 for an integer or text."""
    if not (_reads_as_number(text) or _THOUSANDS.match(text)) or _converts(int, text):
        return -1
    point = text.rfind(".")
    point = text.lower().rfind("e") if point < 0 else point
    return len(text) - point - 1 if point >= 0 else -1


def pipe_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], floatfmt: str) -> str:
    """``tabulate(rows, headers, tablefmt="pipe", floatfmt=floatfmt)`` for rows of :func:`_plain_cell` values."""
    columns, rules = [], []
    for header, cells in zip(headers, zip(*rows)):
        kind = max([bool, *map(_cell_type, cells)], key=_GENERALITY.index)  # tabulate's fold starts from bool
        numeric = kind in (int, float)
        texts = [_cell_text(v, kind, floatfmt) for v in cells]
        if numeric:
            points = [_after_point(t) for t in texts]
            texts = [t + " " * (max(points) - p) for t, p in zip(texts, points)]
        else:
            texts = [t.strip() for t in texts]
        width = max(len(header) + 2, *map(len, texts))
        pad = str.rjust if numeric else str.ljust
        columns.append([pad(header, width), *(pad(t, width) for t in texts)])
        rules.append("-" * (width + 1) + ":" if numeric else ":" + "-" * (width + 1))
    lines = ["|" + "|".join(f" {cell} " for cell in line) + "|" for line in zip(*columns)]
    return "\n".join([lines[0], "|" + "|".join(rules) + "|", *lines[1:]])
