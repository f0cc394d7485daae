"""Transposed convolutions as PyTorch exports them: a small U-Net and a DCGAN generator, read by hwsim.

Two pythons take part, as in ``onnx_zoo.py``: torch is not a dependency of hwsim. The python given by
``--torch-python`` (with torch, onnx and onnxscript) runs this script in ``export`` mode: it builds both models
(random weights, batch norm statistics drawn away from 0 and 1, eval mode), counts their parameters
(``sum(p.numel())``) and the parameters of their batch norms, their MACs by forward hooks (Conv2d: output
pixels x output channels x Kh*Kw*Ci/groups; ConvTranspose2d: *input* pixels x input channels x Kh*Kw*Co/groups,
the products its scatter performs) and by ``torch.utils.flop_counter`` (FLOPs / 2: its transposed rule is the
same product), and exports each with the TorchScript exporter at opset 17 and the dynamo exporter (opset 20).

Then this python (hwsim's, with the onnx extra) reads each export: parameters and MACs against torch's, ONNX
Runtime against the NumPy reference running the model with its own weights (``hwsim verify --runtime
onnxruntime``), and the three policies on the bundled accelerator with the schedule validator (strict and
optimized: no violation; paper: capacity alone, the paper's rule).

Run: python benchmarks/decoders_onnx.py --torch-python /tmp/venv-torch/bin/python --dir /tmp/decoders
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
EXPORTS = ("ts17", "dynamo")


def _models() -> dict[str, tuple[Any, Any]]:
    """name -> (model, example input): built in the torch python."""
    import torch
    from torch import nn

    class UNet(nn.Module):
        """Two poolings down, two transposed convs up (k2 s2; k3 s2 p1 op1) with skips concatenated, then a
        grouped transposed conv whose stride leaves gaps and a dilated depthwise one."""

        def __init__(self) -> None:
            super().__init__()
            self.e1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.e2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.e3 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
            self.up2 = nn.ConvTranspose2d(32, 16, 2, stride=2)
            self.d2 = nn.Sequential(nn.Conv2d(32, 16, 3, padding=1), nn.ReLU())
            self.up1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
            self.d1 = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU())
            self.gaps = nn.ConvTranspose2d(8, 8, 2, stride=3, groups=2)
            self.dilated = nn.ConvTranspose2d(8, 8, 3, dilation=2, padding=2, groups=8)
            self.head = nn.Conv2d(8, 4, 1)

        def forward(self, x: Any) -> Any:
            s1 = self.e1(x)
            s2 = self.e2(s1)
            y = self.d2(torch.cat([self.up2(self.e3(s2)), s2], 1))
            y = self.d1(torch.cat([self.up1(y), s1], 1))
            return self.head(self.dilated(self.gaps(y)))

    def generator(nz: int = 16, ngf: int = 8) -> Any:
        """DCGAN's generator from a 1x1 latent to 32x32, its final Tanh a Sigmoid."""
        layers: list[Any] = []
        widths = [nz, ngf * 8, ngf * 4, ngf * 2]
        for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
            stride, pad = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        return nn.Sequential(*layers, nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1, bias=False), nn.Sigmoid())

    torch.manual_seed(0)
    return {"unet": (UNet(), torch.randn(1, 3, 16, 16)), "dcgan": (generator(), torch.randn(1, 16, 1, 1))}


def _hook_macs(model: Any, example: Any) -> int:
    import torch
    from torch import nn

    total = 0

    def count(module: Any, inputs: Any, output: Any) -> None:
        nonlocal total
        taps = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):
            n, c, h, w = inputs[0].shape
            total += n * h * w * c * taps * module.out_channels // module.groups
        else:
            n, co, ho, wo = output.shape
            total += n * ho * wo * co * taps * module.in_channels // module.groups

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model(example)
    for hook in hooks:
        hook.remove()
    return total


def export(folder: Path) -> None:
    """In the torch python: export both models both ways and write what torch counts to ``torch.json``."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    counts = {}
    for name, (model, example) in _models().items():
        model.eval()
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                for tensor, low, high in (
                    (module.running_mean, -0.5, 0.5),
                    (module.running_var, 0.5, 2.0),
                    (module.weight, 0.5, 1.5),
                    (module.bias, -0.5, 0.5),
                ):
                    tensor.data.uniform_(low, high)
        with FlopCounterMode(display=False) as flops, torch.no_grad():
            model(example)
        counts[name] = {
            "params": sum(p.numel() for p in model.parameters()),
            "batchnorm_params": sum(
                p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()
            ),
            "hook_macs": _hook_macs(model, example),
            "flop_counter_macs": flops.get_total_flops() // 2,
        }
        torch.onnx.export(model, (example,), str(folder / f"{name}-ts17.onnx"), dynamo=False, opset_version=17)
        torch.onnx.export(model, (example,), str(folder / f"{name}-dynamo.onnx"), dynamo=True)
    (folder / "torch.json").write_text(json.dumps(counts, indent=1))


def check(folder: Path) -> list[str]:
    """In hwsim's python: one Markdown row per export."""
    from hwsim.api import bundled_hardware, estimate, load_network
    from hwsim.cost.inference import EXACT, graph_costs
    from hwsim.ops import Op
    from hwsim.schedule.validate import Rule, validate
    from hwsim.studies.runtime import runtime_agreement

    torch_counts = json.loads((folder / "torch.json").read_text())
    hardware = bundled_hardware("paper-accelerator")
    rows = []
    for name, counted in torch_counts.items():
        for kind in EXPORTS:
            path = folder / f"{name}-{kind}.onnx"
            graph = load_network(path)
            macs = sum(c.macs for c in graph_costs(graph, hardware, EXACT, 1))
            transposed = sum(layer.op is Op.CONV_TRANSPOSE for layer in graph.layers)
            runtime = runtime_agreement(path, batch=1)
            clean = []
            for policy in ("paper", "strict", "optimized"):
                run = estimate(graph, hardware, policy)
                found = {v.rule for v in validate(run.schedule, run.scheduled_costs, hardware)}
                clean.append(not found or (policy == "paper" and found <= {Rule.CAPACITY}))
            params = graph.params
            folded = counted["params"] - params
            versus = "=" if folded == 0 else f"= − {folded} folded BN"
            rows.append(
                f"| {name} | {kind} | {transposed} | {params:,} | {versus} | {macs:,} | "
                f"{'=' if macs == counted['hook_macs'] == counted['flop_counter_macs'] else 'differs'} | "
                f"{runtime.relative_error:.1e} {'agrees' if runtime.agrees else 'DIFFERS'} | "
                f"{'clean' if all(clean) else 'VIOLATIONS'} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["export"], help="export: run in the torch python")
    parser.add_argument("--torch-python", help="a python with torch, onnx and onnxscript")
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.mode == "export":
        export(args.dir)
        return
    if args.torch_python:
        subprocess.run([args.torch_python, str(HERE), "export", "--dir", str(args.dir)], check=True)
    print("| model | export | ConvTranspose nodes | parameters | vs torch | MACs | vs hooks and flop_counter |", end="")
    print(" ONNX Runtime rel. error | paper, strict, optimized + validator |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in check(args.dir):
        print(row)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
