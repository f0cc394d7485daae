"""Issue 12's networks on one profile: every policy's latency beside the two lower bounds, and the ratios the
targets are stated in (docs/schedulers.md quotes this output).

python benchmarks/bench_networks.py [hardware] [network ...]

``bound`` is :func:`hwsim.cost.bound.lower_bound` (compulsory traffic or compute, whichever is longer);
``cut`` is :func:`hwsim.cost.cut.cut_bound` (at least ``bound``: a barrier's two sides add up). DenseNet-121
is torchvision's, built as ONNX by tests/onnx_models.py.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from hwsim import api
from hwsim.model.graph import Graph
from hwsim.schedule.base import CapacityError

NETWORKS = (
    "hairnet",
    "resnet18",
    "mobilenet-v1",
    "mobilenet-v2",
    "densenet121",
    "inception",
    "vgg16",
    "alexnet",
)


def load(name: str) -> Graph:
    """A bundled network, or DenseNet-121 from the tests' ONNX builder."""
    if name != "densenet121":
        return api.load_network(name)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import onnx  # noqa: PLC0415 (DenseNet-121 alone needs it)
    import onnx_models  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "densenet121.onnx"
        onnx.save(onnx_models.densenet121(), str(path))
        return api.load_network(path)


def main(hardware: str = "paper-accelerator", networks: tuple[str, ...] = NETWORKS) -> None:
    hw = api.load_hardware(hardware)
    print(f"on {hardware}; ms, and optimized over each bound; CPU seconds to schedule optimized")
    columns = ("paper", "strict", "optimized", "bound", "cut", "opt/bound", "opt/cut", "cpu")
    print(f"{'network':<14} " + " ".join(f"{c:>9}" for c in columns))
    for name in networks:
        graph = load(name)
        ms, cpu, summary = {}, float("nan"), {}
        for policy in ("paper", "strict", "optimized"):
            start = time.process_time()
            try:
                run = api.estimate(graph, hw, policy)
            except CapacityError:
                ms[policy] = float("nan")
                continue
            cpu = time.process_time() - start
            ms[policy] = run.schedule.total_s * 1e3
            summary = run.summary()
        bound, cut = summary["lower_bound_s"] * 1e3, summary["lower_bound_cut_s"] * 1e3
        figures = [ms[p] for p in ("paper", "strict", "optimized")] + [bound, cut]
        ratios = (ms["optimized"] / bound, ms["optimized"] / cut)
        print(
            f"{name:<14} "
            + " ".join(f"{x:9.2f}" for x in figures)
            + " ".join(f"{r:10.3f}" for r in ratios)
            + f"{cpu:10.2f}"
        )


if __name__ == "__main__":
    main(*sys.argv[1:2], *((tuple(sys.argv[2:]),) if len(sys.argv) > 2 else ()))
