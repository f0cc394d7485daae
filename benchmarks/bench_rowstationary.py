"""How long the row-stationary mapping search takes per layer (CPU time): hwsim's search against ranking every legal
mapping (the baseline, measured in the same run), on Eyeriss's 12 x 14 PEs and on larger arrays, where the legal
mappings grow to millions a network. Both must pick the same mapping; the script stops if they do not.

python benchmarks/bench_rowstationary.py [network ...] [--array ROWSxCOLS ...]
"""

from __future__ import annotations

import argparse
import time

from hwsim import api
from hwsim.cost.inference import graph_costs
from hwsim.cost.rowstationary import best_mapping, conv_shape, costed_mappings, mapping_rank


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("networks", nargs="*", default=["alexnet", "resnet18", "mobilenet-v1"])
    parser.add_argument("--array", action="append", default=None, help="ROWSxCOLS (default 12x14 and 32x32)")
    args = parser.parse_args()
    hw = api.load_hardware("eyeriss-v1-rs")
    rs = hw.compute["matrix"].row_stationary
    assert rs is not None
    arrays = [tuple(int(v) for v in a.split("x")) for a in args.array or ["12x14", "32x32"]]
    print("network      array    layers  ranking every mapping  search   speed-up  slowest layer (search)")
    for network in args.networks:
        graph = api.load_network(network)
        for rows, cols in arrays:
            shapes = {s for c in graph_costs(graph, hw) if (s := conv_shape(c.layer, 1, rows, rs)) is not None}
            every = search = slowest = 0.0
            for shape in shapes:
                start = time.process_time()
                expected = min(costed_mappings(shape, rows, cols, rs, 2), key=mapping_rank)
                middle = time.process_time()
                found = best_mapping.__wrapped__(shape, rows, cols, rs, 2)
                end = time.process_time()
                assert found == expected, (network, shape)
                every, search, slowest = every + middle - start, search + end - middle, max(slowest, end - middle)
            print(
                f"{network:12} {rows:3d}x{cols:<4d} {len(shapes):6d}  {every:17.2f} s  {search:6.2f} s"
                f"  {every / search:6.1f}x  {slowest:8.3f} s"
            )


if __name__ == "__main__":
    main()
