"""Issue 12's scale targets, each case in a fresh process (its CPU time and peak RSS are its own):

- a two-block residual network on profiles where everything fits (16 MB), over map sizes, bandwidths and
  matrix throughputs from bus-bound to compute-bound: optimized / bound, the worst;
- a 10-block 3x3 conv chain at 896x896x64 on paper-accelerator: optimized's CPU time, peak RSS, events;
- issue 11's absurd sizes within the limits, strict and optimized: they answer or refuse in one line.

python benchmarks/bench_scale.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CASE = """
import json, resource, sys, time
from hwsim import api
from hwsim.errors import InputError
graph, hw = api.load_network(sys.argv[1]), api.load_hardware(sys.argv[2])
start = time.process_time()
try:
    run = api.estimate(graph, hw, sys.argv[3], batch=int(sys.argv[4]))
    answer = {"total_s": run.schedule.total_s, "bound_s": run.summary()["lower_bound_s"],
              "events": sum(len(s.events) for s in run.schedule.steps)}
except InputError as error:
    answer = {"refused": str(error).splitlines()[0]}
answer["cpu_s"] = time.process_time() - start
answer["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(answer))
"""

RESIDUAL = """name: two-blocks
input: [{side}, {side}, {channels}]
layers:
  - {{op: conv, kernel: 3, filters: {channels}, padding: same, name: stem}}
  - {{op: relu, name: skip0}}
  - {{op: conv, kernel: 3, filters: {channels}, padding: same}}
  - {{op: batchnorm}}
  - {{op: relu}}
  - {{op: conv, kernel: 3, filters: {channels}, padding: same}}
  - {{op: batchnorm}}
  - {{op: add, inputs: [batchnorm2, skip0]}}
  - {{op: relu, name: skip1}}
  - {{op: conv, kernel: 3, filters: {channels}, padding: same}}
  - {{op: batchnorm}}
  - {{op: relu}}
  - {{op: conv, kernel: 3, filters: {channels}, padding: same}}
  - {{op: batchnorm}}
  - {{op: add, inputs: [batchnorm4, skip1]}}
  - {{op: relu}}
"""
RESIDUAL_SHAPES = ((8, 16), (16, 32), (32, 32), (56, 64), (28, 128))
FITS = (
    "name: generated\nmemory:\n  internal: {{capacity: {capacity}}}\n  external: {{bandwidth: {bandwidth}}}\n"
    "compute:\n  matrix: {{throughput: {matrix}}}\n  vector: {{throughput: 10 GFLOPS}}\nprecision: fp32\n"
)

CHAIN = "name: chain\ninput: [896, 896, 64]\nlayers:\n" + "  - {op: conv, kernel: 3, filters: 64, padding: same}\n" * 10

FILTERS = "name: filters\ninput: [32, 32, 3]\nlayers:\n  - {op: conv, kernel: 3, filters: 1000000, padding: same}\n"
TALL = "name: tall\ninput: [100000, 100000, 3]\nlayers:\n  - {op: conv, kernel: 3, filters: 8, padding: same}\n"


def run(network: Path, hardware: str, policy: str, batch: int = 1) -> dict[str, float | str]:
    out = subprocess.run(
        [sys.executable, "-c", CASE, str(network), hardware, policy, str(batch)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        files = {name: here / f"{name}.yaml" for name in ("residual", "chain", "filters", "tall", "fits", "mid")}
        files["chain"].write_text(CHAIN)
        files["filters"].write_text(FILTERS)
        files["tall"].write_text(TALL)
        files["mid"].write_text(FITS.format(capacity="64 MB", bandwidth="1 GB/s", matrix="1 TFLOPS"))
        worst = (0.0, "")
        for side, channels in RESIDUAL_SHAPES:
            files["residual"].write_text(RESIDUAL.format(side=side, channels=channels))
            for bandwidth in ("1 GB/s", "10 GB/s", "100 GB/s"):
                for matrix in ("100 GFLOPS", "1 TFLOPS"):
                    files["fits"].write_text(FITS.format(capacity="16 MB", bandwidth=bandwidth, matrix=matrix))
                    r = run(files["residual"], str(files["fits"]), "optimized")
                    case = f"{side}x{side}x{channels}, {bandwidth}, {matrix}"
                    worst = max(worst, (r["total_s"] / r["bound_s"], case))
        print(
            f"two residual blocks on 16 MB, {len(RESIDUAL_SHAPES) * 6} profiles: optimized at most {worst[0]:.3f}x"
            f" the bound ({worst[1]})"
        )
        r = run(files["chain"], "paper-accelerator", "optimized")
        print(
            f"896x896x64 chain of 10 convs, optimized: {r['cpu_s']:.2f} s CPU, {r['rss_mb']:.0f} MB peak RSS,"
            f" {r['events']:,} events, {r['total_s']:.3f} s"
        )
        cases = [
            ("filters: 1,000,000", files["filters"], str(files["mid"]), 1),
            ("input 100,000 x 100,000", files["tall"], str(files["mid"]), 1),
            ("hairnet --batch 1,000,000", Path("hairnet"), "paper-accelerator", 1_000_000),
        ]
        for label, network, hardware, batch in cases:
            for policy in ("strict", "optimized"):
                r = run(network, hardware, policy, batch)
                answer = r.get("refused") or f"{r['total_s']:.4g} s, {r['events']:,} events"
                print(f"{label:<26} {policy:<9} {r['cpu_s']:6.2f} s CPU {r['rss_mb']:5.0f} MB  {answer}")


if __name__ == "__main__":
    main()
