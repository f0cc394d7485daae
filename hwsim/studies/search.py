"""Search instead of grids: the Pareto front of latency, energy, area and the like over hardware ranges.

A grid of five fields at ten values each is 100,000 schedules; a multi-objective search finds the
trade-off curve in a few hundred. Optuna's samplers propose the points (NSGA-II by default, TPE on
request), seeded; hwsim schedules them as a sweep schedules its points (:func:`sweep.schedule_points`,
on the same local workers or Dask cluster), and constraints (``latency<=10ms``) steer the sampler and
bound the front. Trials are proposed in batches of a fixed size and told in trial order, so a search
gives the same trials with any number of workers.

The front is computed here, not taken from Optuna: the trials that have a schedule and meet every
constraint, and that no other such trial beats on every objective (at least as good on all, better on
one). Optuna is an optional extra: ``pip install 'hwsim[search]'``.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.cost.coding import MapZeros
from hwsim.cost.inference import Counting
from hwsim.errors import InputError
from hwsim.model.graph import Graph
from hwsim.spec.energy import MM2, area_mm2
from hwsim.spec.hardware import HardwareSpec, Precision
from hwsim.studies import sweep
from hwsim.studies.parallel import Pool, Serial
from hwsim.units import parse_physical, parse_quantity

if TYPE_CHECKING:
    import optuna
    import pandas as pd

SAMPLERS = ("nsga2", "tpe")
"""``--sampler``: NSGA-II (a genetic algorithm, Optuna's default for several objectives) or TPE."""
POPULATION = 50
"""Trials NSGA-II proposes per generation, and so per batch."""
TPE_BATCH = 10
"""Trials TPE proposes per batch (its first batch is random, as Optuna's first 10 TPE trials are)."""
MAX_TRIALS = 100_000
"""More trials than any front needs; the time budget usually binds first."""
MAX_SEED = 2**32 - 1
"""The samplers seed NumPy's legacy generator, which takes no other seed."""
TRIAL = "trial"
MEETS = "meets_constraints"
FRONT = "on_front"

_CONSTRAINT = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op><=|>=|<|>)\s*(?P<value>\S.*?)\s*$")


@dataclass(frozen=True)
class Objective:
    """What a search minimises (or maximises): its name on the command line, the trials' column it reads, and
    the kind of quantity a constraint on it is written in (``time``, ``energy``, ``area``, ``number``, or a
    hardware field's kind)."""

    name: str
    column: str
    kind: str
    maximize: bool = False

    def parse(self, text: str) -> float:
        """A constraint's bound in this objective's column's unit (``10ms`` -> 0.01; ``2 mm2`` -> 2.0)."""
        if self.kind in ("time", "energy"):
            return parse_physical(text, self.kind)
        if self.kind == "area":
            return parse_physical(text, "area") / MM2
        if self.kind == "number":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(f"must be finite, got {text!r}")
            return value
        return parse_quantity(text, self.kind)


OBJECTIVES = {
    "latency": Objective("latency", "total_s", "time"),
    "energy": Objective("energy", "energy_per_image_j", "energy"),
    "area": Objective("area", "area_mm2", "area"),
    "edp": Objective("edp", "edp_js", "number"),
    "throughput": Objective("throughput", "images_per_s", "number", maximize=True),
    "bytes": Objective("bytes", "bytes_moved", "bytes"),
}
"""Objectives by name: latency per batch, energy per image, silicon area (mm², from the profile's ``area:``
section), energy x delay per image, images per second, bytes moved. Any varied field is one too (the
smaller the cheaper: ``memory.internal.capacity``)."""


@dataclass(frozen=True)
class Dimension:
    """One ``--vary`` of a search: a range searched continuously (``:lin`` or ``:log``), or, given ``:N``, its
    grid of N values."""

    range: sweep.Range
    grid: sweep.Axis | None = None

    @property
    def field(self) -> str:
        return self.range.field

    @property
    def column(self) -> str:
        return self.field + sweep.UNIT_SUFFIX[self.range.kind]

    def distribution(self) -> Any:
        from optuna.distributions import FloatDistribution, IntDistribution

        if self.grid is not None:
            return IntDistribution(0, len(self.grid.values) - 1)
        return FloatDistribution(self.range.lo, self.range.hi, log=self.range.scale == "log")

    def value(self, sampled: float) -> float:
        """The hardware value of what the sampler proposed: a grid value, or the number as a profile holds it."""
        if self.grid is not None:
            return self.grid.values[int(sampled)]
        clipped = min(max(sampled, self.range.lo), self.range.hi)
        return sweep.as_written(float(sweep.written(self.range.kind, np.array(clipped))))


def parse_dimension(text: str, hardware: HardwareSpec) -> Dimension:
    """``FIELD=LO..HI[:lin|log][:N]``, as ``hwsim sweep`` reads it; without N the range is continuous."""
    searched = sweep.parse_range(text, hardware)
    return Dimension(searched, sweep.parse_axis(text, hardware) if searched.count else None)


def objective_named(name: str, dimensions: Sequence[Dimension]) -> Objective:
    """An objective of :data:`OBJECTIVES`, or a varied field; errors name ``--objective``."""
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    for dimension in dimensions:
        if dimension.field == name:
            return Objective(name, dimension.column, dimension.range.kind)
    choices = ", ".join([*OBJECTIVES, *(d.field for d in dimensions)])
    raise InputError(f"unknown objective {name!r}; choose from {choices}", field="--objective")


@dataclass(frozen=True)
class Constraint:
    """``latency<=10ms``: an objective, a comparison and a bound in the objective's column's unit."""

    objective: Objective
    comparison: str
    bound: float
    text: str

    def met(self, value: float) -> bool:
        return {
            "<=": value <= self.bound,
            "<": value < self.bound,
            ">=": value >= self.bound,
            ">": value > self.bound,
        }[self.comparison]

    def violation(self, value: float) -> float:
        """How far ``value`` is on the wrong side of the bound, relative to it (at most 0: met), as Optuna
        takes constraints."""
        scale = abs(self.bound) or 1.0
        return (value - self.bound) / scale if self.comparison in ("<=", "<") else (self.bound - value) / scale


def parse_constraint(text: str, dimensions: Sequence[Dimension]) -> Constraint:
    """``NAME<=VALUE`` (or ``<``, ``>=``, ``>``) with the objective's units: ``latency<=10ms``, ``area<2mm2``,
    ``energy<=1.5mJ``, ``throughput>=200``; errors name ``--constraint``."""
    match = _CONSTRAINT.match(text)
    if not match:
        raise InputError(f"{text!r}: expected NAME<=VALUE, e.g. latency<=10ms or area<2mm2", field="--constraint")
    try:
        objective = objective_named(match["name"], dimensions)
        bound = objective.parse(match["value"])
    except InputError as err:
        raise InputError(f"{text!r}: {err.message}", field="--constraint") from None
    except ValueError as err:
        raise InputError(f"{text!r}: {err}", field="--constraint") from None
    return Constraint(objective, match["op"], bound, text.strip())


@dataclass(frozen=True)
class SearchResult:
    network: str
    hardware: str
    policy: str
    sampler: str
    seed: int
    dimensions: tuple[Dimension, ...]
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    trials: pd.DataFrame
    """One row per trial, in trial order: ``trial``, a column per dimension, the sweep's metrics, ``area_mm2``,
    ``meets_constraints`` (empty where no schedule fits), ``on_front``, ``note``."""

    @property
    def front(self) -> pd.DataFrame:
        """The Pareto-optimal trials, by the first objective (best first)."""
        first = self.objectives[0]
        front = self.trials[self.trials[FRONT]]
        return front.sort_values([first.column, TRIAL], ascending=[not first.maximize, True])


def pareto_front(costs: np.ndarray) -> np.ndarray:
    """Which rows of ``costs`` (one column per objective, smaller is better) no other row dominates: at least
    as small in every column and smaller in one. Equal rows are all kept."""
    front = np.ones(len(costs), dtype=bool)
    for i in range(len(costs)):
        if front[i]:  # a row a dominated row dominates is dominated by its dominator too
            beaten = np.all(costs[i] <= costs, axis=1) & np.any(costs[i] < costs, axis=1)
            front[beaten] = False
    return front


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise InputError("hwsim search needs the search extra: pip install 'hwsim[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _sampler(optuna: Any, name: str, seed: int) -> tuple[optuna.samplers.BaseSampler, int]:
    """The sampler and the batch it proposes at once: a generation of NSGA-II, or :data:`TPE_BATCH` trials."""
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=POPULATION, seed=seed), POPULATION
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True), TPE_BATCH
    raise InputError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}", field="--sampler")


def run(
    graph: Graph,
    hardware: HardwareSpec,
    dimensions: Sequence[Dimension],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
    trials: int = 200,
    sampler: str = "nsga2",
    seed: int = 0,
    policy: str = "paper",
    counting: Counting | str = "exact",
    batch: int = 1,
    precision: Precision | str | None = None,
    pool: Pool | None = None,
    on_progress: Callable[[int], None] | None = None,
    map_zeros: MapZeros = None,
) -> SearchResult:
    """Search ``dimensions`` of ``hardware`` for the Pareto front of ``objectives`` under ``constraints`` in
    ``trials`` trials, scheduled on ``pool`` (default: here); ``on_progress(n)`` as trials finish. ``map_zeros``:
    the maps' zero fractions, as :func:`hwsim.estimate.estimate` takes them.

    Raises :class:`InputError` for bad options, an area the profile cannot give, a search that would take
    longer than :data:`sweep.MAX_HOURS` on the pool's workers, or no trial with a schedule.
    """
    import pandas as pd

    if not dimensions:
        raise InputError("nothing to search: give at least one --vary")
    if len({d.field for d in dimensions}) != len(dimensions):
        raise InputError("a field is varied twice", field="--vary")
    if not objectives:
        raise InputError("give at least one --objective (latency, energy, area, ...)", field="--objective")
    if len({o.name for o in objectives}) != len(objectives):
        raise InputError("an objective is named twice", field="--objective")
    if not 1 <= trials <= MAX_TRIALS:
        raise InputError(f"give 1 to {MAX_TRIALS:,} trials, not {trials:,}", field="--trials")
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"a seed is 0 to {MAX_SEED:,}, not {seed:,}", field="--seed")
    optuna = _optuna()
    chosen, size = _sampler(optuna, sampler, seed)
    base = sweep.cost_once(graph, hardware, policy, counting, batch, precision, map_zeros)
    if any(o.column == "area_mm2" for o in (*objectives, *(c.objective for c in constraints))):
        if math.isnan(area_mm2(hardware, base.precision)):
            raise InputError(
                f"{hardware.name} has no area: section, so it has no area to search (docs/energy.md)",
                field="--objective",
            )
    study = optuna.create_study(
        directions=["maximize" if o.maximize else "minimize" for o in objectives], sampler=chosen
    )
    space = {d.field: d.distribution() for d in dimensions}
    pool = pool or Serial()
    frames = []
    per_trial: float | None = None
    seen: dict[tuple[float, ...], Outcome] = {}
    told = 0
    while told < trials:
        asked = [study.ask(space) for _ in range(min(size, trials - told))]
        points = {d.field: np.array([d.value(t.params[d.field]) for t in asked]) for d in dimensions}
        if per_trial is None:
            start = time.process_time()
            first = sweep.schedule_points(base, {f: v[:1] for f, v in points.items()})
            per_trial = time.process_time() - start
            sweep.check_budget(trials, per_trial, pool.workers, policy, "trials")
            _remember(seen, {f: v[:1] for f, v in points.items()}, first)
        metrics, notes = _schedule_unseen(points, base, pool, per_trial, seen)
        frame = _frame(asked, dimensions, points, base, metrics, notes, constraints)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for k, trial in enumerate(asked):
                _tell(optuna, study, trial, frame.iloc[k], objectives, constraints)
        frames.append(frame)
        told += len(asked)
        if on_progress:
            on_progress(len(asked))
    table = pd.concat(frames, ignore_index=True)
    feasible = (table[sweep.NOTE] == "") & table[MEETS].fillna(False).astype(bool)
    costs = np.column_stack(
        [(-1.0 if o.maximize else 1.0) * table.loc[feasible, o.column].to_numpy(float) for o in objectives]
    )
    on_front = np.zeros(len(table), dtype=bool)
    on_front[np.flatnonzero(feasible.to_numpy())] = pareto_front(costs)
    # a sampler may propose a point it already tried: the front lists the point once, at its first trial
    on_front &= ~table.duplicated([d.column for d in dimensions]).to_numpy()
    table.insert(len(table.columns) - 1, FRONT, on_front)
    if (table[sweep.NOTE] != "").all():
        raise InputError(
            f"none of the {len(table):,} trials has a schedule under policy {policy}; "
            f"e.g. trial 0: {table[sweep.NOTE].iloc[0]}",
            field="--vary",
        )
    return SearchResult(
        graph.name,
        hardware.name,
        policy,
        sampler,
        seed,
        tuple(dimensions),
        tuple(objectives),
        tuple(constraints),
        table,
    )


Outcome = tuple[dict[str, Any], str]
"""One point's metrics and note, as :func:`sweep.schedule_points` gives them for a point."""


def _keys(points: dict[str, np.ndarray]) -> list[tuple[float, ...]]:
    return list(zip(*(values.tolist() for values in points.values()), strict=True))


def _remember(seen: dict[tuple[float, ...], Outcome], points: dict[str, np.ndarray], results: sweep.Results) -> None:
    metrics, notes = results
    for k, key in enumerate(_keys(points)):
        seen[key] = ({m: values[k] for m, values in metrics.items()}, notes[k])


def _schedule_unseen(
    points: dict[str, np.ndarray],
    base: sweep.Costed,
    pool: Pool,
    per_trial: float,
    seen: dict[tuple[float, ...], Outcome],
) -> sweep.Results:
    """Every point's results, scheduling only the points not in ``seen`` (which gains them): samplers propose
    points again, NSGA-II's offspring often repeat a parent on a grid, and a schedule is the same every time."""
    keys = _keys(points)
    unseen = list(dict.fromkeys(key for key in keys if key not in seen))
    if unseen:
        columns = {field: np.array([key[j] for key in unseen]) for j, field in enumerate(points)}
        _remember(seen, columns, _schedule(columns, base, pool, per_trial))
    outcomes = [seen[key] for key in keys]
    metrics = {m: np.array([outcome[0][m] for outcome in outcomes]) for m in outcomes[0][0]}
    return metrics, [outcome[1] for outcome in outcomes]


def _schedule(points: dict[str, np.ndarray], base: sweep.Costed, pool: Pool, per_trial: float) -> sweep.Results:
    """Every point scheduled, in order: in chunks on ``pool``, or here when that is quicker."""
    n = len(next(iter(points.values())))
    runner = pool if per_trial * n >= sweep.POOL_MIN_SECONDS else Serial()
    size = max(1, math.ceil(n / (2 * runner.workers)))
    chunks = [list(range(i, min(i + size, n))) for i in range(0, n, size)]
    done = dict(runner.imap(sweep.schedule_points, base, [{f: v[c] for f, v in points.items()} for c in chunks]))
    return _joined(*(done[k] for k in range(len(chunks))))


def _joined(*parts: sweep.Results) -> sweep.Results:
    metrics = {m: np.concatenate([p[0][m] for p in parts]) for m in parts[0][0]}
    return metrics, [note for p in parts for note in p[1]]


def _frame(
    asked: list[Any],
    dimensions: Sequence[Dimension],
    points: dict[str, np.ndarray],
    base: sweep.Costed,
    metrics: dict[str, np.ndarray],
    notes: list[str],
    constraints: Sequence[Constraint],
) -> pd.DataFrame:
    """One row per trial of a batch, as :attr:`SearchResult.trials` holds them."""
    import pandas as pd

    bound = sweep.lower_bounds(base, points)
    columns: dict[str, Any] = {TRIAL: [t.number for t in asked]}
    columns |= {d.column: sweep.whole_if_integral(points[d.field]) for d in dimensions}
    columns |= {m: metrics[m] for m in sweep.sweep_paper.SCHEDULE_METRICS}
    columns["lower_bound_s"] = bound
    columns["efficiency"] = sweep.efficiencies(bound, metrics["total_s"])
    columns = {c: columns[c] for c in [TRIAL, *(d.column for d in dimensions), *sweep.METRICS]}
    infeasible = np.isnan(metrics["total_s"])
    columns["bytes_moved"] = pd.arrays.IntegerArray(np.nan_to_num(metrics["bytes_moved"]).astype(np.int64), infeasible)
    columns["area_mm2"] = metrics["area_mm2"]
    frame = pd.DataFrame(columns)
    meets = [
        None if infeasible[k] else all(c.met(float(frame[c.objective.column].iloc[k])) for c in constraints)
        for k in range(len(frame))
    ]
    frame[MEETS] = pd.array(meets, dtype="boolean")
    frame[sweep.NOTE] = notes
    return frame


def _tell(
    optuna: Any,
    study: optuna.Study,
    trial: optuna.Trial,
    row: pd.Series,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
) -> None:
    """Give the sampler a trial's outcome: its objectives and constraints, or a failure where no schedule fits."""
    if row[sweep.NOTE]:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return
    for k, constraint in enumerate(constraints):
        trial.set_constraint(f"c{k}", constraint.violation(float(row[constraint.objective.column])))
    study.tell(trial, [float(row[o.column]) for o in objectives])
