"""The lower bound and the cut bound side by side, without scheduling: every bundled profile, the networks of
bench_networks.py, batch 1 and 8, with and without steady state. Prints the rows where the cut raises the
bound (docs/schedulers.md quotes this output).

python benchmarks/bench_bounds.py [network ...]
"""

from __future__ import annotations

import sys

from bench_networks import NETWORKS, load

from hwsim import api
from hwsim.bundled import bundled_names
from hwsim.cost.bound import lower_bound
from hwsim.cost.cut import cut_bound
from hwsim.cost.inference import graph_costs
from hwsim.cost.steady import steady_state


def main(networks: tuple[str, ...] = NETWORKS) -> None:
    graphs = {name: load(name) for name in networks}
    profiles = bundled_names("hardware")
    print(f"{len(profiles)} profiles x {len(networks)} networks x batch 1, 8 x steady state or not; ms")
    header = f"{'hardware':<16} {'network':<13} {'batch':>5} {'steady':>6} {'bound':>10} {'cut':>10}"
    print(f"{header} {'cut/bound':>9}  barrier")
    raised = total = 0
    for profile in profiles:
        hw = api.load_hardware(profile)
        for name, graph in graphs.items():
            for batch in (1, 8):
                costs = graph_costs(graph, hw, batch=batch)
                for steady in (False, True):
                    kept, seen = steady_state(costs, hw) if steady else (costs, hw)
                    plain, cut = lower_bound(kept, seen).total_s, cut_bound(kept, seen)
                    total += 1
                    if cut.layer is None:
                        continue
                    raised += 1
                    print(
                        f"{profile:<16} {name:<13} {batch:>5} {'yes' if steady else 'no':>6} {plain * 1e3:10.4g} "
                        f"{cut.total_s * 1e3:10.4g} {cut.total_s / plain:9.3f}  {cut.layer}"
                    )
    print(f"the cut raises the bound in {raised} of {total} cases")


if __name__ == "__main__":
    main(*((tuple(sys.argv[1:]),) if len(sys.argv) > 1 else ()))
