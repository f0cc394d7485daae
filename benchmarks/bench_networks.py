"""Issue 12's networks on one profile: every policy's latency beside the lower bound, and the ratios the
targets are stated in (docs/schedulers.md quotes this output).

python benchmarks/bench_networks.py [hardware] [network ...]
"""

from __future__ import annotations

import sys
import time

from hwsim import api
from hwsim.schedule.base import CapacityError

NETWORKS = ("hairnet", "resnet18", "mobilenet-v1", "mobilenet-v2", "inception", "alexnet")


def main(hardware: str = "paper-accelerator", networks: tuple[str, ...] = NETWORKS) -> None:
    hw = api.load_hardware(hardware)
    print(f"on {hardware}; ms, and optimized / bound; CPU seconds to schedule optimized")
    print(f"{'network':<14} {'paper':>9} {'strict':>9} {'optimized':>9} {'bound':>9} {'opt/bound':>9} {'cpu':>6}")
    for name in networks:
        graph = api.load_network(name)
        ms = {}
        for policy in ("paper", "strict", "optimized"):
            start = time.process_time()
            try:
                run = api.estimate(graph, hw, policy)
            except CapacityError:
                ms[policy] = float("nan")
                continue
            cpu = time.process_time() - start
            ms[policy] = run.schedule.total_s * 1e3
            bound = run.summary()["lower_bound_s"] * 1e3
        ratio = ms["optimized"] / bound
        times = " ".join(f"{ms[p]:9.2f}" for p in ("paper", "strict", "optimized"))
        print(f"{name:<14} {times} {bound:9.2f} {ratio:9.3f} {cpu:6.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:2], *((tuple(sys.argv[2:]),) if len(sys.argv) > 2 else ()))
