"""How fast the NumPy reference runs, beside this machine's NumPy matmul and (when importable) PyTorch.

Two workloads, as issue 3 asks:
  - HairNet (networks/hairnet.yaml, Table 1) forward at 224x224, batch 1, inference;
  - one training step (forward, backward under cross-entropy, Adam) of the CIFAR-size HairNet,
    batch 64: Table 1's network at 32x32 with 10 filters in the last stage (one map per class).
Times are the best of several runs (the machine is shared; the best run is the least disturbed).
GFLOP/s divides the modelled ops (hwsim.cost.inference / hwsim.cost.training, verified by execution) by it.
BLAS runs with the library's default thread count unless --threads pins it (for NumPy's BLAS and
PyTorch alike); the output says which, and the load average before and after.

    python benchmarks/bench_reference.py [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from hwsim.cost.training import pass_ops
from hwsim.model.expand import build_graph
from hwsim.model.graph import Graph
from hwsim.ops import ConvAttrs, Op, Padding, PoolAttrs
from hwsim.reference import Adam, Model
from hwsim.spec.network import load_network_document

HAIRNET = Path(__file__).resolve().parent.parent / "networks" / "hairnet.yaml"


def hairnet(size: int, classes: int) -> Graph:
    """Table 1's HairNet for ``size`` x ``size`` images and ``classes`` maps in the last stage."""
    spec, doc = load_network_document(HAIRNET)
    layers = [dict(entry, filters=classes) if entry.get("name") == "stage5" else entry for entry in spec.layers]
    spec = spec.model_copy(update={"name": f"hairnet-{size}", "input": (size, size, 3), "layers": layers})
    return build_graph(spec, doc)


def best_of(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: first-touch allocation, BLAS threads
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(repeats: int, n: int = 1024) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / best_of(lambda: a @ a, repeats) / 1e9


def workload_inputs(graph: Graph, batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *graph.input_shape), dtype=np.float32)
    return x, rng.integers(0, graph.output.output_shape[2], batch)


def reference_forward(graph: Graph, batch: int, repeats: int) -> float:
    model, (x, _) = Model(graph), workload_inputs(graph, batch)
    return best_of(lambda: model.forward(x), repeats)


def reference_train_step(graph: Graph, batch: int, repeats: int) -> float:
    model, adam, (x, labels) = Model(graph), Adam(), workload_inputs(graph, batch)
    return best_of(lambda: adam.step(model.params, model.loss_and_grads(x, labels)[1]), repeats)


# ---- PyTorch, the same layers ------------------------------------------------------------------


def torch_network(graph: Graph):
    """The chain of layers of ``graph`` as a torch ``nn.Sequential`` on NCHW (HairNet's ops only)."""
    import torch
    from torch import nn

    def padded(module, padding: Padding, value: float = 0.0):
        if padding == Padding():
            return [module]
        return [nn.ConstantPad2d((padding.left, padding.right, padding.top, padding.bottom), value), module]

    modules = []
    for layer in graph.layers:
        a, channels = layer.attrs, layer.input_shape[2]
        if layer.op in (Op.CONV, Op.DWCONV):
            assert isinstance(a, ConvAttrs)
            conv = nn.Conv2d(channels, a.out_channels, a.kernel, a.stride, groups=a.groups, bias=a.bias)
            modules += padded(conv, a.padding)
        elif layer.op is Op.BATCHNORM:
            modules.append(nn.BatchNorm2d(channels, eps=a.eps, momentum=a.momentum))
        elif layer.op is Op.RELU:
            modules.append(nn.ReLU())
        elif layer.op is Op.MAXPOOL:
            assert isinstance(a, PoolAttrs)
            modules += padded(nn.MaxPool2d(a.kernel, a.stride), a.padding, -float("inf"))
        elif layer.op is Op.GLOBAL_AVG_POOL:
            modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        elif layer.op is Op.SOFTMAX:
            modules.append(nn.Softmax(dim=1))
        else:
            raise NotImplementedError(f"the benchmark translates HairNet's ops only, not {layer.op.value}")
    torch.manual_seed(0)
    return nn.Sequential(*modules)


def torch_times(
    forward_graph: Graph, train_graph: Graph, train_batch: int, repeats: int, threads: int | None
) -> tuple[float, float] | None:
    """(forward s, training step s) of the same workloads in PyTorch, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    net = torch_network(forward_graph).eval()
    x = torch.from_numpy(workload_inputs(forward_graph, 1)[0]).permute(0, 3, 1, 2).contiguous()

    def forward() -> None:
        with torch.no_grad():
            net(x)

    train_net = torch_network(train_graph).train()
    adam = torch.optim.Adam(train_net.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-8)
    images, labels = workload_inputs(train_graph, train_batch)
    xt, yt = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)

    def step() -> None:
        adam.zero_grad()
        loss = torch.nn.functional.nll_loss(torch.log(train_net(xt)), yt)  # cross-entropy on the softmax, as hwsim
        loss.backward()
        adam.step()

    return best_of(forward, repeats), best_of(step, repeats)


def blas_description() -> str:
    """NumPy's BLAS and the threads it runs with, as threadpoolctl sees them."""
    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    return (
        ", ".join(f"{pool['internal_api']} {pool['version']} with {pool['num_threads']} threads" for pool in pools)
        or "no BLAS found"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="pin BLAS (and PyTorch) to this many threads; default: the libraries' own",
    )
    args = parser.parse_args()
    repeats = args.repeats

    pinned = (
        contextlib.nullcontext() if args.threads is None else threadpool_limits(limits=args.threads, user_api="blas")
    )
    load_before = os.getloadavg()[0]
    with pinned:
        blas = blas_description() + (" (pinned by --threads)" if args.threads else " (library default)")
        forward_graph, train_graph, train_batch = hairnet(224, 1000), hairnet(32, 10), 64
        forward_ops = sum(row.forward for row in pass_ops(forward_graph, batch=1))
        train_ops = sum(
            row.forward_train + row.backward + row.optimizer for row in pass_ops(train_graph, batch=train_batch)
        )
        forward_s = reference_forward(forward_graph, 1, repeats)
        train_s = reference_train_step(train_graph, train_batch, repeats)
        torch_s = torch_times(forward_graph, train_graph, train_batch, repeats, args.threads)
        matmul = matmul_gflops(repeats)

    print(
        f"NumPy {np.__version__}, BLAS: {blas}; best of {repeats}; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print(f"NumPy matmul (1024x1024 float32): {matmul:.1f} GFLOP/s")
    header = f"{'workload':44} {'time':>9} {'images/s':>9} {'GFLOP/s':>8}"
    print(header + (f" {'PyTorch':>9} {'ratio':>6}" if torch_s else "  (PyTorch not importable)"))
    rows = [
        ("HairNet-224 forward, batch 1", forward_s, 1, forward_ops),
        (f"HairNet-32 training step, batch {train_batch}", train_s, train_batch, train_ops),
    ]
    for i, (name, seconds, images, ops) in enumerate(rows):
        line = f"{name:44} {seconds * 1e3:7.1f}ms {images / seconds:9.1f} {ops / seconds / 1e9:8.1f}"
        if torch_s:
            line += f" {torch_s[i] * 1e3:7.1f}ms {seconds / torch_s[i]:5.1f}x"
        print(line)


if __name__ == "__main__":
    main()
