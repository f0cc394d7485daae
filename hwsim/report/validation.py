"""``hwsim validate`` as a table: every row in CSV, Markdown and JSON, and a terminal view that groups them.

The DataFrame of :func:`rows_table` is the single source of the files; the terminal prints the published
and host rows one by one, each SCALE-Sim run as one line (its layers are in the files), and the summary
of every group: held-out published figures apart from fitted ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.table import Table

from hwsim.report.terminal import FITTED, View
from hwsim.studies.validation import PUBLISHED, SCALESIM, Row, Summary, Validation

if TYPE_CHECKING:
    import pandas as pd

    from hwsim.report.terminal import Screen

COLUMNS = ["case", "metric", "measured", "predicted", "rel_error", "source", "kind", "fitted", "note"]


def rows_table(validation: Validation) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "case": r.case,
                "metric": r.metric,
                "measured": r.measured,
                "predicted": r.predicted,
                "rel_error": r.rel_error,
                "source": r.source,
                "kind": r.kind,
                "fitted": r.fitted,
                "note": r.note,
            }
            for r in validation.rows
        ],
        columns=COLUMNS,
    )


def summary_records(validation: Validation) -> list[dict[str, object]]:
    return [
        {
            "group": s.group,
            "figures": s.figures,
            "predicted": s.rows,
            "median_abs_rel_error": None if math.isnan(s.median_abs_error) else s.median_abs_error,
            "worst_abs_rel_error": None if math.isnan(s.worst_abs_error) else s.worst_abs_error,
            "worst": s.worst,
        }
        for s in validation.summaries
    ]


def to_csv(validation: Validation) -> str:
    return rows_table(validation).to_csv(index=False)


def to_markdown(validation: Validation) -> str:
    import pandas as pd

    lines = ["# hwsim validate", "", pd.DataFrame(summary_records(validation)).to_markdown(index=False), ""]
    lines += [rows_table(validation).to_markdown(index=False, floatfmt=".6g"), ""]
    return "\n".join(lines)


def to_json(validation: Validation) -> str:
    rows = json.loads(rows_table(validation).to_json(orient="records", double_precision=15))
    return json.dumps({"summary": summary_records(validation), "rows": rows}, indent=2) + "\n"


FORMATS: dict[str, Callable[[Validation], str]] = {"csv": to_csv, "md": to_markdown, "json": to_json}


def _figure(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.4g}"


def _error(row_or_value: Row | float) -> str:
    value = row_or_value.rel_error if isinstance(row_or_value, Row) else row_or_value
    return "—" if math.isnan(value) else f"{value:+.1%}"


def render(validation: Validation, console: Screen, view: View = FITTED) -> None:
    """The published and host rows, one line per SCALE-Sim run, then the summaries (every column: ``view`` is
    for the tables that choose columns)."""
    rows = [r for r in validation.rows if r.kind != SCALESIM]
    table = Table(title="measured beside predicted", header_style="bold", pad_edge=False)
    for name in ("case", "metric", "measured", "predicted", "error", "held out", "source"):
        table.add_column(name, justify="right" if name in ("measured", "predicted", "error") else "left")
    for r in rows:
        source = r.source if not r.note else f"{r.source} [{r.note}]"
        held = "fitted" if r.fitted else "yes" if r.kind == PUBLISHED else r.kind
        table.add_row(r.case, r.metric, _figure(r.measured), _figure(r.predicted), _error(r), held, source)
    console.print(table)
    runs: dict[str, list[Row]] = {}
    for r in validation.rows:
        if r.kind == SCALESIM:
            runs.setdefault(r.case, []).append(r)
    if runs:
        scalesim = Table(title="SCALE-Sim v3 compute cycles, every layer (rows in -o)", header_style="bold")
        for name in ("run", "layers", "SCALE-Sim cycles", "hwsim cycles", "worst layer"):
            scalesim.add_column(name, justify="left" if name == "run" else "right")
        for case, members in runs.items():
            worst = max(members, key=lambda r: abs(r.rel_error))
            scalesim.add_row(
                case,
                str(len(members)),
                f"{sum(r.measured for r in members):,.0f}",
                f"{sum(r.predicted for r in members):,.0f}",
                f"{_error(worst)} ({worst.metric.split(':', 1)[1]})",
            )
        console.print(scalesim)
    for s in validation.summaries:
        console.print(_summary_line(s), highlight=False)


def _summary_line(s: Summary) -> str:
    predicted = f"{s.rows} predicted" if s.rows < s.figures else "all predicted"
    if not s.rows:
        return f"{s.group}: {s.figures} figures, none predicted"
    return (
        f"{s.group}: {s.figures} figures, {predicted}; median |error| {_share(s.median_abs_error)}, "
        f"worst {_share(s.worst_abs_error)} ({s.worst})"
    )


def _share(value: float) -> str:
    """A relative error as a percentage, with two significant digits below 1 % (0.0016 %, not 0.0 %)."""
    return f"{value:.1%}" if value >= 0.01 else f"{value * 100:.2g} %"
