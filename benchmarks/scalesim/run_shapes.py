"""SCALE-Sim v3 on small layers of shapes the network runs do not have, on arrays they do not use.

The MobileNet v1 and ResNet-18 runs (``run_scalesim.py``) cover two arrays (32x32, 16x64) and the
layer shapes of two networks. The cycle model claims more: every conv, depthwise conv and dense layer
on every array. This script runs SCALE-Sim on the cases of ``shapes/cases.json`` (one hwsim layer
each: 1-wide matrix dimensions, strides above the kernel, rectangular kernels and strides, groups,
depthwise multipliers, batches, dilation) on arrays from 1x1 to 128x128, thin and tall, in all three
dataflows, and writes ``shapes/results/<config>.csv``; ``tests/test_cycles.py`` holds hwsim to them.

A case becomes SCALE-Sim layers as follows (``scalesim_rows``):

- a conv of one group, one stride for both axes, no dilation, batch 1: a conv row, its ifmap the rows
  and columns its windows read (SCALE-Sim has no padding), as ``run_scalesim.py`` writes them;
- a grouped conv: that conv row for one group (C/g channels, F/g filters), run g times;
- a depthwise conv: a ``DP`` row of the C channels and ``multiplier`` filters, which SCALE-Sim expands
  into C single-channel layers (``topology_utils.load_arrays_conv``); one is simulated, run C times;
- what a conv row cannot say (two strides, dilation, a batch, a dense layer over a batch): the matrix
  product itself, as SCALE-Sim's GEMM mode writes an M x K by K x N product (``load_arrays_gemm``):
  an M x K ifmap, a 1 x K filter of 1 channel, N filters, stride 1. M is the output pixels of every
  image, K the window, N the filters: what SCALE-Sim's own conv rows compute
  (``topo_calc_hyperparams``), here from hwsim's shapes.

Run in SCALE-Sim's virtual environment (README.md):

    python run_shapes.py configs     # shapes/configs/*.cfg
    python run_shapes.py run         # every config (a few minutes); --config 8x8-os for one
    python run_shapes.py random      # 900 random products on random arrays -> shapes/random.csv (2 minutes)

``random`` draws matrix products (P x W by W x F, written as GEMM rows) and arrays (1 to 128 a side)
at random, and records SCALE-Sim's compute cycles: a check of the cycle model on shapes nobody chose.
Each array's config is ``run_scalesim.config_text(rows, cols, dataflow)``, as for the other runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from access_counts import layer_counts
from check_closed_forms import Array, product_cycles
from run_scalesim import (
    COMPUTE_COLUMNS,
    TOPOLOGY_FIELDS,
    TopologyRow,
    config_name,
    config_text,
    shape,
    simulate,
    single_channel,
    write_topology,
)

HERE = Path(__file__).resolve().parent / "shapes"
ARRAYS = ((1, 1), (1, 16), (64, 1), (8, 8), (4, 64), (128, 8), (128, 128))
DATAFLOWS = ("os", "ws", "is")
ACCESS_COLUMNS = ["ifmap_reads", "filter_reads", "ofmap_writes"]
MAX_CYCLES = 20_000
"""A random product's cycles at most: SCALE-Sim takes about 0.1 ms of CPU a cycle."""


@dataclass(frozen=True)
class Simulated:
    """The SCALE-Sim layer one case stands for, and how many times the case runs it."""

    case: str
    form: str
    row: TopologyRow
    runs: int


def load_cases() -> list[dict]:
    return json.loads((HERE / "cases.json").read_text())


def case_layer(case: dict):
    """The hwsim layer of a case: a one-layer network on the case's input."""
    from hwsim.model.expand import build_graph
    from hwsim.spec.network import NetworkSpec
    from hwsim.spec.validate import validate
    from hwsim.spec.yamlio import Document

    spec = {"name": case["case"], "input": case["input"], "layers": [case["layer"]]}
    doc = Document("<case>", spec)
    (layer,) = build_graph(validate(NetworkSpec, spec, doc), doc).layers
    return layer


def scalesim_row(case: dict) -> Simulated:
    """The SCALE-Sim layer a case is simulated as (see the module's docstring for the forms)."""
    from hwsim.ops import ConvAttrs, Op

    name, batch = case["case"], case.get("batch", 1)
    assert "DP" not in name, "SCALE-Sim reads DP in a name as depthwise"
    layer = case_layer(case)
    if layer.op is Op.DENSE:
        inputs, units = layer.input_shape[2], layer.output_shape[2]
        if batch == 1:
            return Simulated(name, "dense", TopologyRow(name, name, 1, 1, 1, 1, inputs, units, 1), 1)
        return Simulated(name, "gemm", TopologyRow(name, name, batch, inputs, 1, inputs, 1, units, 1), 1)
    a = layer.attrs
    assert isinstance(a, ConvAttrs) and layer.op in (Op.CONV, Op.DWCONV)
    (kh, kw), (sh, sw) = a.kernel, a.stride
    ho, wo, co = layer.output_shape
    ci = layer.input_shape[2]
    if sh == sw and a.dilation == (1, 1) and batch == 1:
        read_h, read_w = (ho - 1) * sh + kh, (wo - 1) * sw + kw
        if layer.op is Op.DWCONV:
            row = TopologyRow(f"{name}.DP", name, read_h, read_w, kh, kw, ci, co // ci, sh)
            return Simulated(name, "depthwise", row, ci)
        row = TopologyRow(name, name, read_h, read_w, kh, kw, ci // a.groups, co // a.groups, sh)
        return Simulated(name, "conv" if a.groups == 1 else "grouped", row, a.groups)
    if layer.op is Op.DWCONV:
        raise ValueError(f"{name}: a depthwise case needs one stride, no dilation and batch 1")
    pixels, window = ho * wo * batch, kh * kw * (ci // a.groups)
    return Simulated(name, "gemm", TopologyRow(name, name, pixels, window, 1, window, 1, co // a.groups, 1), a.groups)


def simulated_as(simulated: Simulated) -> TopologyRow:
    """What SCALE-Sim simulates for a case: a DP row's channels are single-channel layers of their own."""
    return single_channel(simulated.row) if simulated.form == "depthwise" else simulated.row


def write_configs() -> None:
    folder = HERE / "configs"
    folder.mkdir(parents=True, exist_ok=True)
    for rows, cols in ARRAYS:
        for dataflow in DATAFLOWS:
            (folder / f"{config_name(rows, cols, dataflow)}.cfg").write_text(config_text(rows, cols, dataflow))


def run(config: str) -> Path:
    """SCALE-Sim on one layer per case (a depthwise case's single-channel layer), one row per case."""
    cases = [scalesim_row(case) for case in load_cases()]
    topology = HERE / "topology.csv"
    write_topology(topology, [simulated_as(c) for c in cases])
    config_path = HERE / "configs" / f"{config}.cfg"
    report, seconds = simulate(topology, config_path)
    counts = layer_counts(config_path, topology)
    if len(report) != len(cases) or len(counts) != len(cases):
        raise RuntimeError(f"SCALE-Sim reported {len(report)} and counted {len(counts)} layers for {len(cases)} cases")
    out = HERE / "results" / f"{config}.csv"
    out.parent.mkdir(exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["case", "form", *TOPOLOGY_FIELDS, "runs", *COMPUTE_COLUMNS, *ACCESS_COLUMNS])
        for c, line, (_, *accesses) in zip(cases, report, counts):
            writer.writerow([c.case, c.form, *shape(simulated_as(c)), c.runs, *line[1:], *map(int, accesses)])
    print(f"{config}: {len(cases)} cases in {seconds:.0f} s -> {out.relative_to(HERE.parent)}")
    return out


def random_products(seed: int, count: int) -> list[tuple[int, int, str, int, int, int]]:
    """(rows, cols, dataflow, pixels, window, filters): arrays of 1 to 128 a side, dimensions of 1 to 8 or 1 to
    300 (so 1-wide and partial folds are common), three products an array, each under MAX_CYCLES."""
    rng = random.Random(seed)
    drawn: list[tuple[int, int, str, int, int, int]] = []
    while len(drawn) < count:
        rows, cols, dataflow = rng.randint(1, 128), rng.randint(1, 128), rng.choice(DATAFLOWS)
        products = 0
        while products < 3:
            p, w, f = (rng.choice([rng.randint(1, 8), rng.randint(1, 300)]) for _ in range(3))
            if product_cycles(Array(rows, cols, dataflow), p, w, f) < MAX_CYCLES:
                drawn.append((rows, cols, dataflow, p, w, f))
                products += 1
    return drawn[:count]


def run_random(seed: int, count: int) -> Path:
    """SCALE-Sim on random products as GEMM rows, three to an array; one row per product in shapes/random.csv."""
    drawn = random_products(seed, count)
    out = HERE / "random.csv"
    with tempfile.TemporaryDirectory(prefix="scalesim-random-") as scratch, open(out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["rows", "cols", "dataflow", "pixels", "window", "filters", "compute_cycles", "stall_cycles"])
        for start in range(0, len(drawn), 3):
            group = drawn[start : start + 3]
            rows, cols, dataflow = group[0][:3]
            topology, config = (
                Path(scratch) / "topology.csv",
                Path(scratch) / f"{config_name(rows, cols, dataflow)}.cfg",
            )
            write_topology(
                topology, [TopologyRow(f"g{i}", f"g{i}", p, w, 1, w, 1, n, 1) for i, (*_, p, w, n) in enumerate(group)]
            )
            config.write_text(config_text(rows, cols, dataflow))
            report, _ = simulate(topology, config)
            for product, line in zip(group, report, strict=True):
                writer.writerow([*product, line[2], line[3]])
    print(f"{count} random products (seed {seed}) -> {out.relative_to(HERE.parent)}")
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["configs", "run", "random"])
    parser.add_argument("--config", help="run: one config name such as 8x8-os (default: all)")
    parser.add_argument("--seed", type=int, default=2, help="random: the seed (default 2, the committed data's)")
    parser.add_argument("--count", type=int, default=900, help="random: how many products (default 900)")
    args = parser.parse_args(argv)
    if args.step == "configs":
        write_configs()
        return
    if args.step == "random":
        run_random(args.seed, args.count)
        return
    for config in [args.config] if args.config else [p.stem for p in sorted((HERE / "configs").glob("*.cfg"))]:
        run(config)


if __name__ == "__main__":
    main(sys.argv[1:])
