"""How close optimized comes to the lower bound on random networks of each family, and how it compares
with strict and paper.

python benchmarks/bench_families.py [networks per family]

The networks are the property tests' (tests/schedule_helpers.py: chains, residual blocks, branches added
up, branches concatenated, dense blocks), drawn by hypothesis with a fixed seed, each on every
accelerator of the property tests (internal memory 2 kB to 1 MB, bus 0.1 to 100 GB/s). A pair that does
not fit at all (not even one row) is left out. Per family it prints the pairs, the median and the worst
efficiency (lower bound / optimized), the same against the cut bound (hwsim.cost.cut, at least the lower
bound), how many pairs the cut raises, and how often optimized is slower than strict, and than paper where
paper's schedule fits (paper charged for loading the image and storing the scores, which it assumes on chip).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from schedule_helpers import FAMILIES, hardware, networks  # noqa: E402

from hwsim.cost.bound import lower_bound  # noqa: E402
from hwsim.cost.cut import cut_bound  # noqa: E402
from hwsim.cost.inference import graph_costs  # noqa: E402
from hwsim.model.graph import Graph  # noqa: E402
from hwsim.ops import elements  # noqa: E402
from hwsim.schedule import POLICIES  # noqa: E402
from hwsim.schedule.base import CapacityError, Schedule  # noqa: E402
from hwsim.schedule.validate import validate  # noqa: E402

CAPACITIES = (2_000, 8_000, 32_000, 1e6)
BANDWIDTHS = (1e8, 1e9, 1e11)


def drawn(family: str, count: int) -> list[Graph]:
    """``count`` different networks of ``family`` (each with at least one of its blocks), the same ones on
    every run."""
    kinds = FAMILIES[family]
    found: dict[str, Graph] = {}

    @settings(max_examples=20 * count, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(networks(kinds, having=kinds[-1]))
    def collect(graph: Graph) -> None:
        found.setdefault(repr(graph.layers), graph)

    collect()
    return list(found.values())[:count]


def pair(graph: Graph, capacity: float, bandwidth: float) -> dict[str, float] | None:
    """The three policies' times and the bound on one network and accelerator (None: it does not fit)."""
    hw = hardware(capacity, bandwidth)
    costs = graph_costs(graph, hw)
    times = {}
    try:
        for policy in ("paper", "strict", "optimized"):
            steps = tuple(POLICIES[policy](graph, costs, hw))
            times[policy] = sum(s.total_s for s in steps)
            if policy == "paper":
                schedule = Schedule(policy, graph.name, hw.name, "exact", 1, "fp32", steps)
                times["paper_fits"] = float(not validate(schedule, costs, hw))
    except CapacityError:
        return None
    # the paper assumes the image on chip and leaves the scores there: charged here for moving them
    free = (elements(graph.input_shape) + elements(graph.output.output_shape)) * 4
    times["paper_charged"] = times["paper"] + free / bandwidth
    times["bound"] = lower_bound(costs, hw).total_s
    times["cut"] = cut_bound(costs, hw).total_s
    return times


def main(count: int = 30) -> None:
    print(f"{count} networks per family, each on {len(CAPACITIES) * len(BANDWIDTHS)} accelerators")
    header = ("family", "pairs", "median eff", "worst eff", "median cut", "worst cut", "cut>bound", ">strict", ">paper")
    header += ("paper fits",)
    print(f"{header[0]:<10} " + " ".join(f"{h:>10}" for h in header[1:]))
    for family in FAMILIES:
        rows = [
            result
            for graph in drawn(family, count)
            for capacity in CAPACITIES
            for bandwidth in BANDWIDTHS
            if (result := pair(graph, capacity, bandwidth)) is not None
        ]
        efficiency = [r["bound"] / r["optimized"] for r in rows]
        cut = [r["cut"] / r["optimized"] for r in rows]
        raised = sum(r["cut"] > r["bound"] * (1 + 1e-9) for r in rows)
        slower_strict = sum(r["optimized"] > r["strict"] * (1 + 1e-9) for r in rows)
        fits = [r for r in rows if r["paper_fits"]]
        slower_paper = sum(r["optimized"] > r["paper_charged"] * (1 + 1e-9) for r in fits)
        figures = (
            len(rows),
            *(f"{f(e):.3f}" for e in (efficiency, cut) for f in (statistics.median, min)),
            raised,
            slower_strict,
        )
        print(f"{family:<10} " + " ".join(f"{x:>10}" for x in (*figures, slower_paper, len(fits))))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
