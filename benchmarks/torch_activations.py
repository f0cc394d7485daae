"""Small CNNs with each activation hwsim added for real exports (tanh, elu, selu, softplus, mish, prelu per channel
and shared, global max pooling), exported by PyTorch and read by hwsim: parameters and MACs against torch's,
ONNX Runtime against the NumPy reference, and the three policies under the schedule validator.

Two pythons take part, as in ``onnx_zoo.py``: one with torch, onnx and onnxscript exports each model (this
script, ``export`` mode) with the TorchScript exporter at opset 17 and the dynamo exporter at opset 20, and counts
torch's parameters (``sum(p.numel())``; the exporters fold the batch norm into the convolution before it,
whose bias takes its 16 scales and shifts) and the MACs of its Conv2d and Linear modules (forward hooks); then this
python (hwsim's, with the onnx extra) reads each model, runs ``hwsim verify MODEL --runtime onnxruntime`` in
process, verifies every count of every pass by execution (``hwsim verify``), and schedules it with ``paper``,
``strict`` and ``optimized`` under the validator.

Run: python benchmarks/torch_activations.py --torch-python /tmp/venv-torch/bin/python --dir /tmp/acts-torch
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
MODELS = ("tanh", "elu", "selu", "softplus", "mish", "prelu", "prelu-shared", "global-max", "amax")
RESNETS = ("resnet18-mish", "resnet18-prelu")
"""torchvision's ResNet-18 with each ReLU module replaced: by Mish, or by a PReLU of its channels (a basic block
calls its one ReLU module twice, so its slopes serve both)."""
EXPORTS = (("torchscript", 17), ("dynamo", 20))


def _export(directory: Path) -> None:
    """Each model, exported both ways, and torch's counts in ``counts.json`` (runs in the torch python)."""
    import torch
    from torch import nn

    class Net(nn.Module):
        """conv, batch norm, the activation, conv; a global pool (average, or max), a linear head, softmax."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name
            self.conv1, self.bn, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3)
            activations = {
                "tanh": nn.Tanh(),
                "elu": nn.ELU(0.5),
                "selu": nn.SELU(),
                "softplus": nn.Softplus(),
                "mish": nn.Mish(),
                "prelu": nn.PReLU(8),
                "prelu-shared": nn.PReLU(),
            }
            self.act = activations.get(name, nn.ReLU())
            self.head = nn.Linear(8, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.conv2(self.act(self.bn(self.conv1(x))))
            if self.name == "global-max":
                x = nn.functional.adaptive_max_pool2d(x, 1)
            elif self.name == "amax":
                x = torch.amax(x, dim=(2, 3), keepdim=True)
            else:
                x = nn.functional.adaptive_avg_pool2d(x, 1)
            return torch.softmax(self.head(torch.flatten(x, 1)), 1)  # verify trains under cross-entropy

    def resnet(name: str) -> nn.Module:
        import torchvision

        model = torchvision.models.resnet18(weights=None)
        act = (lambda c: nn.Mish()) if name.endswith("mish") else nn.PReLU
        model.relu = act(64)
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            for block in layer:
                block.relu = act(block.bn1.num_features)
        return nn.Sequential(model, nn.Softmax(1))

    torch.manual_seed(0)
    counts = {}
    for name in MODELS + RESNETS:
        model = (resnet(name) if name in RESNETS else Net(name)).eval()
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        with torch.no_grad():  # away from the initial values exporters fold or share
            for bn in norms:
                bn.running_mean.uniform_(-0.2, 0.2)
                bn.running_var.uniform_(0.5, 1.5)
                bn.weight.uniform_(0.8, 1.2)
                bn.bias.uniform_(-0.2, 0.2)
            for prelu in (m for m in model.modules() if isinstance(m, nn.PReLU)):
                prelu.weight.uniform_(0.1, 0.4)
        macs = [0]

        def hook(module: nn.Module, inputs: object, output: torch.Tensor, macs: list[int] = macs) -> None:
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                macs[0] += output.numel() * module.in_channels // module.groups * kh * kw
            else:
                macs[0] += output.numel() * module.in_features

        hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        example = torch.randn(1, 3, 64, 64) if name in RESNETS else torch.randn(1, 3, 16, 16)
        model(example)
        for handle in hooks:  # the exporters trace the model without them
            handle.remove()
        # the exporters fold each batch norm into the convolution before it: its C scales and C shifts become that
        # convolution's bias (torchvision's convolutions have none, so C parameters remain of the 2C)
        folded = sum(bn.num_features * (1 if name in RESNETS else 2) for bn in norms)
        counts[name] = {"params": sum(p.numel() for p in model.parameters()), "macs": macs[0], "folded": folded}
        for exporter, opset in EXPORTS:
            path = directory / f"{name}-{exporter}{opset}.onnx"
            torch.onnx.export(model, (example,), str(path), dynamo=exporter == "dynamo", opset_version=opset)
    (directory / "counts.json").write_text(json.dumps(counts))


def _check(directory: Path) -> None:
    """Each exported model read, run beside ONNX Runtime and scheduled; a row of the table per model."""
    import onnx

    from hwsim import api
    from hwsim.cost.inference import EXACT
    from hwsim.schedule import POLICIES, scheduled_costs
    from hwsim.schedule.base import Schedule
    from hwsim.schedule.validate import validate
    from hwsim.studies.runtime import runtime_agreement
    from hwsim.studies.verify import verify

    counts = json.loads((directory / "counts.json").read_text())
    hw = api.bundled_hardware("edge-npu")
    print(
        "| model | exporter | ONNX nodes | hwsim layers | parameters (torch) | MACs (torch's hooks) | ORT rel. error "
        "| counts executed | validator (paper, strict, optimized) |"
    )
    print("| --- | --- | --- | --- | ---: | ---: | --- | --- | --- |")
    for name in MODELS + RESNETS:
        for exporter, opset in EXPORTS:
            path = directory / f"{name}-{exporter}{opset}.onnx"
            graph = api.load_network(path)
            nodes = ", ".join(dict.fromkeys(n.op_type for n in onnx.load(str(path)).graph.node))
            layers = ", ".join(dict.fromkeys(layer.op.value for layer in graph.layers))
            macs = sum(EXACT.rule(layer.op)(layer, 1)[0] for layer in graph.layers)
            torch_counts = counts[name]
            torch_params, folded = torch_counts["params"], torch_counts["folded"]
            same = {torch_params: "=", torch_params - folded: f"= − {folded} folded BN"}.get(graph.params, torch_params)
            params = f"{graph.params:,} ({same})"
            mac_text = f"{macs:,} ({'=' if macs == torch_counts['macs'] else torch_counts['macs']})"
            agreement = runtime_agreement(path)  # the TorchScript export fixes the batch at 1
            verdicts = []
            for policy in ("paper", "strict", "optimized"):
                costs = api.cost_run(graph, hw, policy, EXACT, 1, None)[0]
                steps = POLICIES[policy](graph, costs, hw)
                schedule = Schedule(policy, graph.name, hw.name, "exact", 1, hw.precision.value, tuple(steps))
                violations = validate(schedule, scheduled_costs(policy, costs, hw, steps), hw)
                verdicts.append("clean" if not violations else f"{len(violations)} violations")
            error = f"{agreement.relative_error:.1e}" + ("" if agreement.agrees else " (disagrees)")
            checks = verify(graph, batch=2).checks  # every pass: forward, training forward, backward, optimizer
            executed = f"{len(checks)} agree" if all(c.modelled == c.executed for c in checks) else "differ"
            print(
                f"| {name} | {exporter} {opset} | {nodes} | {layers} | {params} | {mac_text} | {error} "
                f"| {executed} | {', '.join(verdicts)} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["export"], help="export the models (in the torch python)")
    parser.add_argument("--torch-python", default=sys.executable, help="a python with torch, onnx and onnxscript")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/acts-torch"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.mode == "export":
        _export(args.dir)
        return
    subprocess.run([args.torch_python, str(HERE), "export", "--dir", str(args.dir)], check=True)
    _check(args.dir)


if __name__ == "__main__":
    main()
