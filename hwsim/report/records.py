"""CSV, JSON and Markdown from records (one dict per row), exactly as pandas writes the same DataFrame.

A report of 60 layers does not need pandas, whose import is half a second of ``hwsim estimate -o r.json``
on a loaded machine. These writers follow the rules pandas applies to such a frame: a column's type is
inferred from its values (whole numbers and floats together are floats), a missing value is an empty
CSV cell or JSON ``null``, floats in CSV are Python's shortest repr, and ``to_json(double_precision=15)``
rounds floats to 15 decimals the way its C encoder does. tests/test_records.py writes random records
and every bundled report both ways and compares the text.
"""

from __future__ import annotations

import csv
import io
import math
import os
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
    from tabulate import tabulate

    rows = typed_rows(records, columns, common=True)
    return str(tabulate(rows, headers=list(columns), tablefmt="pipe", floatfmt=floatfmt))
