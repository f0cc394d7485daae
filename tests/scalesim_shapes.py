"""SCALE-Sim's runs of small layers (benchmarks/scalesim/shapes): the cases as hwsim layers, the configs as arrays,
and the matrix product SCALE-Sim computed for each row, for the cycle and access tests."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from schedule_helpers import graph_from

from hwsim import api
from hwsim.cost.cycles import MatrixView
from hwsim.cost.inference import LayerCost, graph_costs
from hwsim.spec.hardware import ComputeUnit

SHAPES = Path(__file__).resolve().parents[1] / "benchmarks" / "scalesim" / "shapes"
SHAPE_RUNS = sorted((SHAPES / "results").glob("*.csv"))
CASES = {case["case"]: case for case in json.loads((SHAPES / "cases.json").read_text())}


def rows_of(run: Path) -> list[dict[str, str]]:
    with open(run, newline="") as f:
        return list(csv.DictReader(f))


def case_cost(case: dict) -> LayerCost:
    """The one layer of a case over its batch."""
    graph = graph_from({"name": case["case"], "input": case["input"], "layers": [case["layer"]]})
    return graph_costs(graph, api.load_hardware("paper-accelerator"), batch=case.get("batch", 1))[0]


def array_of(config: str) -> ComputeUnit:
    """``4x64-ws`` -> a 4 x 64 weight-stationary array (the clock does not matter for cycles)."""
    shape, dataflow = config.split("-")
    rows, cols = (int(side) for side in shape.split("x"))
    return ComputeUnit(array=(rows, cols), dataflow=dataflow, clock=1e9)


def scalesim_view(row: dict[str, str]) -> MatrixView:
    """The matrix product SCALE-Sim computes for a topology row (``topo_calc_hyperparams``: no padding, so
    ``ceil((H - k + s) / s)`` outputs a side): one run of it."""
    kh, kw, stride = int(row["filter_h"]), int(row["filter_w"]), int(row["stride"])
    out_h = math.ceil((int(row["ifmap_h"]) - kh + stride) / stride)
    out_w = math.ceil((int(row["ifmap_w"]) - kw + stride) / stride)
    return MatrixView(1, out_h * out_w, kh * kw * int(row["channels"]), int(row["filters"]))


def one_group(view: MatrixView) -> MatrixView:
    return MatrixView(1, view.pixels, view.window, view.filters)
