"""Do the closed forms in README.md reproduce SCALE-Sim's compute cycles? Reads only the committed data.

For every results/<network>_<config>.csv it recomputes each layer's compute cycles from the layer's
shape and the config's array and dataflow, and compares them with what SCALE-Sim reported; so for the
small layers of shapes/results/<config>.csv and the random products of shapes/random.csv
(run_shapes.py). For every results/*_full.csv (SCALE-Sim run on the whole topology, every depthwise
channel a layer of its own) it checks that each SCALE-Sim layer has exactly the figures of its shape
in the distinct run, which is what lets the distinct runs stand for the full ones. Needs only the
standard library.

    python benchmarks/scalesim/check_closed_forms.py
"""

from __future__ import annotations

import configparser
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHAPES = HERE / "shapes"
FIGURES = [
    "total_cycles_incl_prefetch",
    "compute_cycles",
    "stall_cycles",
    "overall_util_pct",
    "mapping_efficiency_pct",
    "compute_util_pct",
]


@dataclass(frozen=True)
class Array:
    rows: int
    cols: int
    dataflow: str

    @staticmethod
    def read(config: str, folder: Path = HERE) -> Array:
        parser = configparser.ConfigParser()
        parser.read(folder / "configs" / f"{config}.cfg")
        presets = parser["architecture_presets"]
        return Array(int(presets["ArrayHeight"]), int(presets["ArrayWidth"]), presets["Dataflow"].strip())


def product(row: dict[str, str]) -> tuple[int, int, int]:
    """(pixels, window, filters) of a topology row: SCALE-Sim has no padding, ``ceil((H - k + s) / s)`` a side."""
    kh, kw, stride = int(row["filter_h"]), int(row["filter_w"]), int(row["stride"])
    out_h = math.ceil((int(row["ifmap_h"]) - kh + stride) / stride)
    out_w = math.ceil((int(row["ifmap_w"]) - kw + stride) / stride)
    return out_h * out_w, kh * kw * int(row["channels"]), int(row["filters"])


def mapped(pixels: int, window: int, filters: int, dataflow: str) -> tuple[int, int, int]:
    """(Sr, Sc, T): the operand matrices' dimensions as SCALE-Sim maps them onto rows, columns and time."""
    return {"os": (pixels, filters, window), "ws": (window, filters, pixels), "is": (window, pixels, filters)}[dataflow]


def matrix_view(row: dict[str, str], dataflow: str) -> tuple[int, int, int]:
    return mapped(*product(row), dataflow)


def folds(row: dict[str, str], array: Array) -> list[tuple[int, int]]:
    """The rows and columns of the array each fold maps, folds over Sc outer and Sr inner."""
    sr, sc, _ = matrix_view(row, array.dataflow)
    used_rows = [min(array.rows, sr - i) for i in range(0, sr, array.rows)]
    used_cols = [min(array.cols, sc - j) for j in range(0, sc, array.cols)]
    return [(r, c) for c in used_cols for r in used_rows]


def product_cycles(array: Array, pixels: int, window: int, filters: int) -> int:
    """Folds times cycles per fold, less one: the cycle of SCALE-Sim's last output write (stall-free)."""
    sr, sc, t = mapped(pixels, window, filters, array.dataflow)
    per_fold = (array.rows if array.dataflow == "os" else 2 * array.rows) + array.cols + t - 2
    return math.ceil(sr / array.rows) * math.ceil(sc / array.cols) * per_fold - 1


def compute_cycles(row: dict[str, str], array: Array) -> int:
    return product_cycles(array, *product(row))


def utilisations(row: dict[str, str], array: Array, cycles: int) -> tuple[float, float, float]:
    """(overall, mapping efficiency, compute utilisation) in percent, as COMPUTE_REPORT computes them."""
    sr, sc, t = matrix_view(row, array.dataflow)
    pes = array.rows * array.cols
    mapped = [r * c for r, c in folds(row, array)]
    # the lines a fold is divided by for compute_util: its demand matrix's rows + columns - 1
    lines = array.rows + array.cols + t - 2 if array.dataflow == "os" else 2 * array.rows + 2 * array.cols + t - 3
    overall = 100 * sr * sc * t / (pes * cycles)
    mapping = 100 * sum(m / pes for m in mapped) / len(mapped)
    compute = 100 * sum(m * t / (pes * lines) for m in mapped) / len(mapped)
    return overall, mapping, compute


@dataclass
class Totals:
    """A network's cycles and MACs, all layers and the depthwise ones (a DP row's C single-channel runs)."""

    cycles: int = 0
    macs: int = 0
    depthwise_cycles: int = 0
    depthwise_macs: int = 0

    def add(self, row: dict[str, str], array: Array) -> None:
        sr, sc, t = matrix_view(row, array.dataflow)
        runs = int(row["runs"])
        cycles, macs = runs * int(row["compute_cycles"]), runs * sr * sc * t
        self.cycles, self.macs = self.cycles + cycles, self.macs + macs
        if row["scalesim_layer"].endswith(".DP"):
            self.depthwise_cycles, self.depthwise_macs = self.depthwise_cycles + cycles, self.depthwise_macs + macs

    def describe(self, array: Array) -> str:
        utilisation = self.macs / (array.rows * array.cols * self.cycles)
        text = f"{self.cycles:,} cycles for {self.macs:,} MACs, utilisation {utilisation:.1%}"
        if self.depthwise_cycles:
            text += f"; depthwise {self.depthwise_cycles:,} cycles for {self.depthwise_macs:,} MACs"
        return text


def matches(row: dict[str, str], array: Array, label: str) -> bool:
    """Whether a layer's compute cycles, stalls and utilisations are the closed forms'; prints a mismatch."""
    reported, predicted = int(row["compute_cycles"]), compute_cycles(row, array)
    shares = [float(row[f]) for f in ("overall_util_pct", "mapping_efficiency_pct", "compute_util_pct")]
    predicted_shares = utilisations(row, array, predicted)
    close = all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(shares, predicted_shares))
    if reported == predicted and int(row["stall_cycles"]) == 0 and close:
        return True
    print(f"  {label}: SCALE-Sim {reported:,} cycles, {row['stall_cycles']} stalls,")
    print(f"    utilisations {shares}; closed forms {predicted:,} and {list(predicted_shares)}")
    return False


def check_distinct(path: Path) -> tuple[int, int, str]:
    """(layers, layers whose cycles and utilisations all match, the network's totals); prints every mismatch."""
    network, config = path.stem.split("_")
    array = Array.read(config)
    rows = list(csv.DictReader(open(path)))
    exact, totals = 0, Totals()
    for row in rows:
        totals.add(row, array)
        exact += matches(row, array, f"{network} {config} {row['layer']}")
    return len(rows), exact, totals.describe(array)


def check_shapes(path: Path) -> tuple[int, int]:
    """(cases, cases whose cycles and utilisations all match) of one config of the small-layer runs (shapes/)."""
    array = Array.read(path.stem, SHAPES)
    rows = list(csv.DictReader(open(path)))
    return len(rows), sum(matches(row, array, f"{path.stem} {row['case']}") for row in rows)


def check_full(path: Path) -> tuple[int, int]:
    """(SCALE-Sim layers, layers whose six figures equal their shape's in the distinct run)."""
    network, config, _ = path.stem.split("_")
    distinct = {row["layer"]: row for row in csv.DictReader(open(HERE / "results" / f"{network}_{config}.csv"))}
    full = list(csv.DictReader(open(path)))
    same = sum(all(row[f] == distinct[row["layer"]][f] for f in FIGURES) for row in full)
    return len(full), same


def check_random(path: Path) -> tuple[int, int]:
    """(products, products whose compute cycles are the closed form's without stalls) of shapes/random.csv."""
    exact = 0
    rows = list(csv.DictReader(open(path)))
    for row in rows:
        array = Array(int(row["rows"]), int(row["cols"]), row["dataflow"])
        dims = int(row["pixels"]), int(row["window"]), int(row["filters"])
        reported, predicted = int(row["compute_cycles"]), product_cycles(array, *dims)
        if reported == predicted and int(row["stall_cycles"]) == 0:
            exact += 1
        else:
            print(f"  random {row}: closed form {predicted:,}")
    return len(rows), exact


def one_cycle_share(paths: list[Path]) -> str:
    """How much hwsim's one cycle per SCALE-Sim layer (a count, where SCALE-Sim reports the last cycle's
    index) weighs against these layers' reported cycles: 1 / compute_cycles each."""
    shares = sorted(1 / int(row["compute_cycles"]) for path in paths for row in csv.DictReader(open(path)))
    over = sum(share > 0.05 for share in shares)
    median = shares[len(shares) // 2]
    return f"one cycle per run is at most {shares[-1]:.1%} of a figure, over 5 % on {over}, median {median:.2%}"


def main() -> int:
    failures = 0
    print("closed forms against SCALE-Sim's compute cycles (results/<network>_<config>.csv):")
    for path in sorted((HERE / "results").glob("*.csv")):
        if path.stem.endswith("_full"):
            continue
        layers, exact, totals = check_distinct(path)
        failures += layers - exact
        print(f"  {path.stem}: {exact}/{layers} layers exact (cycles, no stalls, utilisations)")
        print(f"    {totals}")
    print("closed forms against SCALE-Sim's compute cycles on small layers (shapes/results/<config>.csv):")
    for path in sorted((SHAPES / "results").glob("*.csv")):
        cases, exact = check_shapes(path)
        failures += cases - exact
        print(f"  {path.stem}: {exact}/{cases} cases exact (cycles, no stalls, utilisations)")
    print(f"  {one_cycle_share(sorted((SHAPES / 'results').glob('*.csv')))}")
    products, exact = check_random(SHAPES / "random.csv")
    failures += products - exact
    print(f"  shapes/random.csv: {exact}/{products} random products on random arrays exact (cycles, no stalls)")
    print("full runs against the distinct runs (results/*_full.csv):")
    for path in sorted((HERE / "results").glob("*_full.csv")):
        layers, same = check_full(path)
        failures += layers - same
        print(f"  {path.stem}: {same}/{layers} SCALE-Sim layers equal their shape's distinct figures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
