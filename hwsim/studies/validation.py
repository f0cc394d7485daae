"""``hwsim validate``: hwsim's predictions beside measured figures, each with its relative error and source.

Four kinds of evidence, reported apart (docs/accelerators.md):

- ``published``: figures measured on silicon (Eyeriss v1, the Coral Edge TPU), from the bundled table
  ``measurements.yaml``. A case is *held out* unless a profile it runs on marks a value ``fitted`` on
  it; fitted cases are summarised apart, since agreeing with what a value was fitted to proves nothing.
- ``scalesim``: per-layer compute cycles of SCALE-Sim v3, the cycle-accurate simulator, from the
  committed runs of ``benchmarks/scalesim`` (bundled with the package as data).
- ``host``: this machine, measured by :mod:`hwsim.studies.calibrate`, against the NumPy reference's
  measured forward latency (``hwsim validate --host``; seconds, not milliseconds).
- ``given mapping``: a diagnostic, neither held out nor a prediction: a case's processing time with every conv
  layer on a row-stationary mapping the table gives (published, or read off the measurement) instead of the one
  hwsim's search picks, so that the cost model's error shows apart from the choice of mapping.

Every row says ``case``, ``metric``, ``measured``, ``predicted``, ``rel_error`` ((predicted - measured)
/ measured), ``source``, ``kind`` and ``fitted``.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from hwsim import bundled
from hwsim.cost.cycles import layer_cycles
from hwsim.cost.inference import graph_costs
from hwsim.cost.rowstationary import conv_shape, mapping_cost
from hwsim.errors import InputError
from hwsim.estimate import Estimate, estimate
from hwsim.model.expand import build_graph, bundled_network
from hwsim.model.graph import Graph
from hwsim.schedule.base import Step
from hwsim.schedule.energy import EnergyParts
from hwsim.spec.hardware import ComputeUnit, HardwareSpec, bundled_hardware
from hwsim.spec.network import load_network_document

MEASUREMENTS = Path(__file__).resolve().parent / "measurements.yaml"
WORKLOADS = Path(__file__).resolve().parent / "workloads"
"""Networks only the table runs (a published micro-benchmark, not a network anyone would estimate)."""
SCALESIM_SOURCE = "SCALE-Sim v3 (scalesim 3.0.0 on PyPI), benchmarks/scalesim/configs/{config}.cfg"
PUBLISHED, SCALESIM, HOST, GIVEN = "published", "scalesim", "host", "given mapping"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Measured(_Strict):
    metric: str
    measured: float = Field(gt=0)
    source: str


class GivenMappings(_Strict):
    """Row-stationary mappings of a case's conv layers, given rather than searched for."""

    hardware: str = Field(description="the bundled rs profile that costs them")
    source: str = Field(min_length=20)
    layers: dict[str, tuple[int, int, int, int, int, int, int]] = Field(
        description="per conv layer of the network, Table III's (e, p, q, r, t, n, m)"
    )


class Case(_Strict):
    """One network on one bundled profile, run as the measurement was, and the figures measured."""

    case: str
    network: str
    hardware: str
    policy: str
    batch: int = Field(1, ge=1)
    steady_state: bool | None = None
    layers: tuple[str, ...] = Field((), description="the ops whose steps the figures cover (all when empty)")
    up_to: str | None = Field(
        None,
        description="the last layer the measured chip ran: the network is scheduled as far as it (with the layers it "
        "reads), as a chip measured on a network's conv layers ran no classifier after them",
    )
    map_zeros: dict[str, float] | None = Field(
        None, description="the maps' zero fractions as measured in the same experiments: a workload input"
    )
    map_zeros_source: str = Field("", description="where the zero fractions come from, named in every row's source")
    note: str = ""
    metrics: tuple[Measured, ...]
    given_mappings: GivenMappings | None = Field(
        None, description="mappings to cost the processing time with apart, as a diagnostic (kind 'given mapping')"
    )

    def graph(self) -> Graph:
        """The case's network as the measurement ran it: as far as :attr:`up_to`, where given."""
        graph = case_network(self.network)
        if self.up_to is None:
            return graph
        try:
            return graph.up_to(self.up_to)
        except KeyError:
            raise InputError(f"case {self.case}: up_to: {self.network} has no layer {self.up_to!r}") from None


class Table(_Strict):
    cases: tuple[Case, ...]


def load_cases(path: Path = MEASUREMENTS) -> tuple[Case, ...]:
    """The bundled table of published measurements."""
    return Table.model_validate(yaml.safe_load(path.read_text())).cases


def case_network(name: str) -> Graph:
    """A case's network: one of the table's own workloads, else the bundled network of that name."""
    workload = WORKLOADS / f"{name}.yaml"
    return build_graph(*load_network_document(workload)) if workload.is_file() else bundled_network(name)


@dataclass(frozen=True)
class Row:
    case: str
    metric: str
    measured: float
    predicted: float
    source: str
    kind: str
    fitted: bool
    note: str = ""

    @property
    def rel_error(self) -> float:
        return (self.predicted - self.measured) / self.measured


# ---- what each metric predicts, from the steps a measurement covers ---------------------------------

Selected = Sequence[tuple[Step, EnergyParts]]


def _seconds(selected: Selected) -> float:
    return sum(step.total_s for step, _ in selected)


def _dram_accesses_per_mac(result: Estimate, selected: Selected) -> float:
    value_bytes = result.costs[0].precision.bytes
    return sum(step.bytes_moved for step, _ in selected) / value_bytes / sum(step.macs for step, _ in selected)


def _on_chip_j(selected: Selected) -> float:
    """Energy on chip: DRAM excluded, as the measurements are."""
    return sum(parts.compute_j + parts.internal_j + parts.static_j for _, parts in selected)


METRICS: dict[str, Callable[[Estimate, Selected], float]] = {
    "frames_per_s": lambda result, selected: result.schedule.batch / _seconds(selected),
    "latency_s": lambda result, selected: _seconds(selected) / result.schedule.batch,
    "processing_s": lambda result, selected: sum(step.compute_s for step, _ in selected),
    "dram_accesses_per_mac": _dram_accesses_per_mac,
    "chip_power_w": lambda result, selected: _on_chip_j(selected) / _seconds(selected),
    "chip_energy_per_image_j": lambda result, selected: _on_chip_j(selected) / result.schedule.batch,
}


def selected_steps(result: Estimate, ops: Sequence[str]) -> Selected:
    """The steps (with their energy) whose first layer is one of ``ops``; every step when ``ops`` is empty."""
    pairs = list(zip(result.schedule.steps, result.step_energy))
    return [(step, parts) for step, parts in pairs if not ops or step.op.split("+")[0] in ops]


def fitted_cases(profile: HardwareSpec) -> set[str]:
    """The cases a profile's fitted values were fitted on."""
    return {value.case for value in profile.fitted}


def published_rows(cases: Sequence[Case], profiles: Callable[[str], HardwareSpec] = bundled_hardware) -> list[Row]:
    """One row per measured figure of every case. A case hwsim cannot schedule gets NaN and the reason."""
    rows = []
    for case in cases:
        if unknown := [m.metric for m in case.metrics if m.metric not in METRICS]:
            raise InputError(f"case {case.case}: unknown metric {unknown[0]!r}; known: {', '.join(METRICS)}")
        profile = profiles(case.hardware)
        fitted = case.case in fitted_cases(profile)
        try:
            result = estimate(
                case.graph(),
                profile,
                case.policy,
                batch=case.batch,
                steady_state=case.steady_state,
                map_zeros=case.map_zeros,
            )
        except Exception as failure:  # noqa: BLE001 - one case's failure is reported in its rows, not hidden
            reason = f"not predicted: {type(failure).__name__}: {failure}"
            rows += [
                Row(case.case, m.metric, m.measured, math.nan, m.source, PUBLISHED, fitted, reason)
                for m in case.metrics
            ]
            continue
        selected = selected_steps(result, case.layers)
        zeros = f"; maps' zero fractions (an input, not fitted): {case.map_zeros_source}" if case.map_zeros else ""
        rows += [
            Row(
                case.case,
                m.metric,
                m.measured,
                METRICS[m.metric](result, selected),
                m.source + zeros,
                PUBLISHED,
                fitted,
            )
            for m in case.metrics
        ]
    return rows


def given_mapping_rows(cases: Sequence[Case]) -> list[Row]:
    """For each case that gives mappings and measured its processing time: that time with each of its layers on the
    given mapping, costed by the row-stationary model that costs the mappings hwsim chooses. The mappings are not
    checked against the chip here: the table is bundled, and tests/test_rowstationary.py holds them to legal ones."""
    rows = []
    for case in cases:
        given = case.given_mappings
        measured = next((m for m in case.metrics if m.metric == "processing_s"), None)
        if given is None or measured is None:
            continue
        profile = bundled_hardware(given.hardware)
        unit = profile.compute["matrix"]
        if unit.row_stationary is None or unit.array is None or unit.clock is None:
            raise InputError(f"case {case.case}: given mappings need an rs profile, not {given.hardware!r}")
        cycles = 0
        for cost in graph_costs(case.graph(), profile, batch=case.batch):
            if case.layers and cost.layer.op.value not in case.layers:
                continue
            shape = conv_shape(cost.layer, case.batch, unit.array[0], unit.row_stationary)
            if cost.name not in given.layers or shape is None:
                raise InputError(f"case {case.case}: no given mapping for layer {cost.name!r}")
            e, p, q, r, t, n, m = given.layers[cost.name]
            cycles += mapping_cost(shape, unit.row_stationary, e, r, t, p, q, n, m)[0]
        note = "a diagnostic, not held out: the mapping is given, not chosen by hwsim"
        rows.append(
            Row(case.case, "processing_s", measured.measured, cycles / unit.clock, given.source, GIVEN, False, note)
        )
    return rows


# ---- SCALE-Sim's committed per-layer cycles -------------------------------------------------------


def scalesim_array(config: str) -> ComputeUnit:
    """``32x32-os`` -> a 32 x 32 output-stationary array (the clock does not matter for cycles)."""
    shape, dataflow = config.split("-")
    rows, cols = (int(side) for side in shape.split("x"))
    return ComputeUnit.model_validate({"array": (rows, cols), "dataflow": dataflow, "clock": 1e9})


def scalesim_rows(folder: Path | None = None) -> list[Row]:
    """One row per layer of every committed SCALE-Sim run: SCALE-Sim's compute cycles for the layer (every run
    it stands for: a depthwise layer is C single-channel runs) against hwsim's."""
    folder = folder or bundled.scalesim_results()
    hardware = bundled_hardware("paper-accelerator")  # only its units' names matter for the layers' costs
    rows = []
    for path in sorted(p for p in folder.glob("*.csv") if not p.stem.endswith("_full")):
        network, config = path.stem.split("_")
        unit = scalesim_array(config)
        costs = {c.name: c for c in graph_costs(bundled_network(network), hardware)}
        with open(path, newline="") as f:
            for line in csv.DictReader(f):
                measured = int(line["runs"]) * int(line["compute_cycles"])
                predicted = layer_cycles(costs[line["layer"]], unit)
                source = SCALESIM_SOURCE.format(config=config)
                rows.append(
                    Row(
                        f"scalesim/{network}/{config}",
                        f"cycles:{line['layer']}",
                        measured,
                        predicted,
                        source,
                        SCALESIM,
                        False,
                    )
                )
    return rows


# ---- summaries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    group: str
    figures: int
    rows: int
    """Of the figures, those predicted (a case hwsim cannot schedule has none)."""
    median_abs_error: float
    worst_abs_error: float
    worst: str


def summarise(rows: Sequence[Row]) -> list[Summary]:
    """Per group (held-out published figures, fitted ones, SCALE-Sim, this machine): how many were predicted,
    and the median and worst relative error among them."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        name = f"{row.kind} (fitted)" if row.fitted else f"{row.kind} (held out)" if row.kind == PUBLISHED else row.kind
        groups.setdefault(name, []).append(row)
    summaries = []
    for name, members in groups.items():
        predicted = [r for r in members if not math.isnan(r.predicted)]
        if not predicted:
            summaries.append(Summary(name, len(members), 0, math.nan, math.nan, ""))
            continue
        worst = max(predicted, key=lambda r: abs(r.rel_error))
        summaries.append(
            Summary(
                name,
                len(members),
                len(predicted),
                statistics.median(abs(r.rel_error) for r in predicted),
                abs(worst.rel_error),
                f"{worst.case} {worst.metric}",
            )
        )
    return summaries


@dataclass(frozen=True)
class Validation:
    rows: tuple[Row, ...]

    @property
    def summaries(self) -> list[Summary]:
        return summarise(self.rows)


def validate_all(host: Sequence[Row] = ()) -> Validation:
    """The published cases, their processing under given mappings, the SCALE-Sim runs, and any rows measured on this
    machine."""
    cases = load_cases()
    return Validation((*published_rows(cases), *given_mapping_rows(cases), *scalesim_rows(), *host))


# ---- this machine ------------------------------------------------------------------------------------

HOST_NETWORKS = (("hairnet", 1), ("alexnet", 1), ("hairnet-cifar10", 16))
"""Networks (and batches) the NumPy reference runs on this machine: a few seconds in all."""
HOST_POLICY = "strict"
"""NumPy runs one layer after another, each waiting for its inputs: the serial policy with real capacity."""
HOST_SOURCE = "this machine: the NumPy reference's forward, best of {repeats} (hwsim calibrate, same run)"


def host_rows(repeats: int = 3, networks: Sequence[tuple[str, int]] = HOST_NETWORKS) -> list[Row]:
    """Measure this machine into a profile, then each network's reference forward beside hwsim's prediction on it."""
    import numpy as np

    from hwsim.reference import Model
    from hwsim.studies.calibrate import best_of, host_profile, measure

    profile = HardwareSpec.model_validate(yaml.safe_load(host_profile(measure(repeats))))
    rows = []
    for network, batch in networks:
        graph = bundled_network(network)
        model = Model(graph)
        x = np.random.default_rng(0).standard_normal((batch, *graph.input_shape)).astype(np.float32)
        measured = best_of(lambda: model.forward(x), repeats)  # noqa: B023 (called before the loop moves on)
        predicted = estimate(graph, profile, HOST_POLICY, batch=batch).schedule.total_s
        rows.append(
            Row(
                f"host/{network}",
                f"latency_s (batch {batch})",
                measured,
                predicted,
                HOST_SOURCE.format(repeats=repeats),
                HOST,
                False,
            )
        )
    return rows
