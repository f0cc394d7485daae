"""Op counts checked two ways: against execution by the NumPy reference, and against golden files.

:func:`verify` runs an inference forward, a training forward and backward under the cross-entropy
loss, and one Adam step, with a ledger counting every primitive; it then compares the executed
counts with the cost model (:mod:`hwsim.cost.inference` for inference, :mod:`hwsim.cost.training` for the
rest) layer by layer and pass by pass. :func:`op_table` and :func:`golden_differences` keep the
modelled counts under regression: a change is a deliberate edit of ``tests/golden/*.ops.csv``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim import files
from hwsim.cost.inference import EXACT, Counting
from hwsim.cost.training import pass_ops
from hwsim.errors import InputError
from hwsim.model.execution import Pass
from hwsim.model.graph import Graph
from hwsim.ops import Op

GOLDEN_COLUMNS = ["layer", "op", *(p.value for p in Pass)]


@dataclass(frozen=True)
class Check:
    """One layer in one pass: the cost model's count beside the executed one."""

    layer: str
    op: Op
    pass_: Pass
    modelled: int
    executed: int

    @property
    def agrees(self) -> bool:
        return self.modelled == self.executed


@dataclass(frozen=True)
class Verification:
    network: str
    counting: str
    batch: int
    checks: tuple[Check, ...]

    @property
    def differences(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.agrees)

    def total(self, pass_: Pass, executed: bool) -> int:
        return sum(c.executed if executed else c.modelled for c in self.checks if c.pass_ is pass_)


def trains(graph: Graph) -> bool:
    """Whether ``graph`` trains under cross-entropy, as verify runs it: it ends in one softmax vector per image
    (a segmentation network's softmax per pixel does not)."""
    return graph.output.op is Op.SOFTMAX and graph.output.output_shape[:2] == (1, 1)


def execute(graph: Graph, batch: int = 1, seed: int = 0, max_memory: str | None = None) -> dict[tuple[str, Pass], int]:
    """Executed ops per (layer, pass): inference forward, training forward + backward, one Adam step.

    Refused before anything is allocated if the reference would take more than ``max_memory`` (default:
    ``HWSIM_MAX_MEMORY`` or 4 GB; see :mod:`hwsim.reference.memory`).
    """
    from hwsim.reference import Adam, Model, counting  # the reference is only needed when executing
    from hwsim.reference.memory import check_budget, memory_limit, step_bytes

    if not trains(graph):
        h, w, c = graph.output.output_shape
        per_pixel = f" of one vector per image (1x1x{c}), not {h}x{w}x{c}" if graph.output.op is Op.SOFTMAX else ""
        raise InputError(
            f"{graph.name}: verify trains under a cross-entropy loss, so the network must end in softmax{per_pixel}"
        )
    check_budget(f"verify {graph.name} at batch {batch}", step_bytes(graph, batch, "adam"), memory_limit(max_memory))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *graph.input_shape)).astype(np.float32)
    labels = rng.integers(0, graph.output.output_shape[2], batch)
    model = Model(graph, seed=seed)
    try:
        with counting() as ledger:
            model.forward(x, training=False)
            _, grads = model.loss_and_grads(x, labels)
            Adam().step(model.params, grads)
    except ValueError as err:  # e.g. batch norm over a single value per channel
        raise InputError(f"{graph.name}: {err}") from None
    return dict(ledger.ops)


def verify(
    graph: Graph, counting: Counting = EXACT, batch: int = 1, seed: int = 0, max_memory: str | None = None
) -> Verification:
    """Compare modelled and executed ops for every layer and pass (see module docstring)."""
    executed = execute(graph, batch, seed, max_memory)
    checks = tuple(
        Check(row.layer.name, row.layer.op, pass_, row.of(pass_), executed.get((row.layer.name, pass_), 0))
        for row in pass_ops(graph, counting, batch, optimizer="adam")
        for pass_ in Pass
    )
    return Verification(graph.name, counting.name, batch, checks)


# ---- golden files ----------------------------------------------------------------------------


def op_table(graph: Graph, counting: Counting = EXACT, batch: int = 1) -> list[dict[str, str | int]]:
    """Modelled ops per layer and pass (optimizer: Adam), as rows of :data:`GOLDEN_COLUMNS`."""
    return [
        {"layer": row.layer.name, "op": row.layer.op.value, **{p.value: row.of(p) for p in Pass}}
        for row in pass_ops(graph, counting, batch, optimizer="adam")
    ]


def format_op_table(rows: list[dict[str, str | int]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, GOLDEN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_golden(path: Path) -> list[dict[str, str | int]]:
    """A golden op table; an unreadable or malformed file is an :class:`InputError` naming it."""
    try:
        with io.StringIO(files.read_text(path, files.MAX_TEXT_BYTES, "golden CSV file"), newline="") as f:
            reader = csv.DictReader(f, strict=True)
            if reader.fieldnames != GOLDEN_COLUMNS:
                raise InputError(
                    f"expected columns {','.join(GOLDEN_COLUMNS)}, got {','.join(reader.fieldnames or [])}", str(path)
                )
            rows: list[dict[str, str | int]] = []
            first_line: dict[str, int] = {}
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row:
                    raise InputError(
                        f"{len(GOLDEN_COLUMNS) + len(row[None])} values, the header has {len(GOLDEN_COLUMNS)} columns",
                        where,
                    )
                if None in row.values():
                    raise InputError(
                        f"{sum(v is not None for v in row.values())} values, "
                        f"the header has {len(GOLDEN_COLUMNS)} columns",
                        where,
                    )
                if row["layer"] in first_line:
                    raise InputError(f"layer {row['layer']!r} again (first on line {first_line[row['layer']]})", where)
                first_line[row["layer"]] = reader.line_num
                counts: dict[str, str | int] = {p.value: int(row[p.value]) for p in Pass}
                rows.append({**row, **counts})
            return rows
    except OSError as err:
        raise InputError(err.strerror or str(err), str(path)) from None
    except csv.Error as err:  # an unclosed quote, a cell beyond the csv module's limit
        raise InputError(f"not CSV: {err}", f"{path}:{reader.reader.line_num}") from None
    except ValueError as err:
        raise InputError(f"not an op count: {err}", str(path)) from None


def golden_differences(golden: list[dict[str, str | int]], current: list[dict[str, str | int]]) -> list[str]:
    """Readable lines, one per layer and pass whose count changed, and per layer added or removed."""
    old = {str(row["layer"]): row for row in golden}
    new = {str(row["layer"]): row for row in current}
    lines = []
    for name, row in new.items():
        if name not in old:
            lines.append(f"{name}: new layer ({row['op']}), not in the golden file")
            continue
        for pass_ in Pass:
            before, after = int(old[name][pass_.value]), int(row[pass_.value])
            if before != after:
                lines.append(f"{name} {pass_.value}: golden {before:,}, now {after:,} ({after - before:+,})")
    lines.extend(f"{name}: in the golden file, no longer in the network" for name in old if name not in new)
    return lines
