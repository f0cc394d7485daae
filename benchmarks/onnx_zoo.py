"""Real ONNX exports of torchvision's models, read by hwsim: what reads, what is refused and why, and how the
numbers compare with torch's and torchvision's published ones.

Two pythons take part. torch is not a dependency of hwsim, so the models are exported by a python that has
torch, torchvision, onnx and onnxscript (``--torch-python``; this script, ``export`` mode, run there), with
random weights (``weights=None``), in eval mode, by the TorchScript exporter (``dynamo=False``) at opsets 11,
13 and 17 and by the dynamo exporter at its default opset where it works. A few models also as variants:
onnxsim's simplification, ONNX Runtime's basic graph optimisation saved as a model, torchvision's initial
weights left as they are, an open batch dim, fp16 weights, and ONNX Runtime's int8 quantisation in both
formats (QDQ and QLinearConv). Biases and batch norm are otherwise drawn away from torchvision's initial
values (zero biases, which exporters drop or share). The exporting python also counts each model's
parameters (``sum(p.numel())``), its convolution and linear MACs (forward hooks) and the parameters an
exporter removes by folding batch norm into a convolution, and reads torchvision's published figures from
the weights' metadata (``num_params``; ``_ops``, the GFLOPS of torchvision's docs, which count MACs),
without downloading any weights.

Then this python (hwsim's, with the onnx extra) reads each model (timed, best of 3), and runs ``hwsim
estimate``, ``hwsim ops`` and ``hwsim verify --runtime onnxruntime`` on it as a user would (``hwsim.cli.main``,
in this process), checking that each exits 0, 1 or 2 with no traceback. A model hwsim refuses shows the
node types its one-line error lists.

Run: python benchmarks/onnx_zoo.py --torch-python /tmp/venv-torch/bin/python --dir /tmp/zoo
     (--models resnet18,alexnet to pick some; --no-verify to skip the ONNX Runtime check, the slow part;
     --opsets 7,8,9,10 for TorchScript's exports at those opsets only, as the ONNX Model Zoo's older models)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()

# name -> (builder keyword arguments, input (C, H, W))
MODELS: dict[str, tuple[dict[str, Any], tuple[int, int, int]]] = {
    "resnet18": ({}, (3, 224, 224)),
    "resnet50": ({}, (3, 224, 224)),
    "resnext50_32x4d": ({}, (3, 224, 224)),
    "wide_resnet50_2": ({}, (3, 224, 224)),
    "densenet121": ({}, (3, 224, 224)),
    "googlenet": ({"aux_logits": False, "init_weights": True}, (3, 224, 224)),
    "inception_v3": ({"aux_logits": False, "init_weights": True}, (3, 299, 299)),
    "squeezenet1_0": ({}, (3, 224, 224)),
    "squeezenet1_1": ({}, (3, 224, 224)),
    "shufflenet_v2_x1_0": ({}, (3, 224, 224)),
    "mobilenet_v2": ({}, (3, 224, 224)),
    "mobilenet_v3_small": ({}, (3, 224, 224)),
    "mobilenet_v3_large": ({}, (3, 224, 224)),
    "efficientnet_b0": ({}, (3, 224, 224)),
    "mnasnet1_0": ({}, (3, 224, 224)),
    "regnet_y_400mf": ({}, (3, 224, 224)),
    "vgg16": ({}, (3, 224, 224)),
    "vgg16_bn": ({}, (3, 224, 224)),
    "alexnet": ({}, (3, 224, 224)),
    "fcn_resnet50": ({"weights_backbone": None, "aux_loss": False}, (3, 224, 224)),
    "deeplabv3_mobilenet_v3_large": ({"weights_backbone": None, "aux_loss": False}, (3, 224, 224)),
    "vit_b_16": ({}, (3, 224, 224)),
    "convnext_tiny": ({}, (3, 224, 224)),
    "swin_t": ({}, (3, 224, 224)),
}
TIMM_MODELS = (
    "efficientnet_b0",
    "tf_efficientnet_b0",
    "mixnet_s",
    "ghostnet_100",
    "rexnet_100",
    "regnety_002",
    "resnest14d",
    "cspdarknet53",
    "dla34",
    "dpn68",
    "xception41",
    "legacy_xception",
    "hrnet_w18_small",
    "mobilenetv3_large_100",
    "lcnet_050",
    "fbnetc_100",
    "semnasnet_100",
    "tinynet_a",
    "convmixer_768_32",
)
"""timm's CNNs (``timm-<name>``, built by ``timm.create_model`` with random weights), exported by TorchScript at
opset 17 only: they test the ops and conventions, the opsets are tested on torchvision's."""
MODELS.update({f"timm-{name}": ({}, (3, 224, 224)) for name in TIMM_MODELS})
TORCHSCRIPT_OPSETS = (11, 13, 17)
VARIANTS_OF = ("resnet18", "mobilenet_v3_small", "shufflenet_v2_x1_0")
"""Models also written as variants (optimised, fp16, quantised)."""
SEGMENTATION = ("fcn_resnet50", "deeplabv3_mobilenet_v3_large")


# ---- export (the torch python) ----------------------------------------------------------------------------


def _build(name: str) -> Any:
    import torch
    import torchvision

    kwargs, _ = MODELS[name]
    if name.startswith("timm-"):
        import timm

        model = timm.create_model(name.removeprefix("timm-"), pretrained=False).eval()
        _vary(model)
        return model
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    _vary(model)
    if name in SEGMENTATION:

        class Logits(torch.nn.Module):  # the dict output as one tensor
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, x: Any) -> Any:
                return self.inner(x)["out"]

        return Logits(model).eval()
    return model


def _vary(model: Any) -> None:
    """Every bias and batch norm away from torchvision's initial values (biases 0; batch norm's scale 1, shift 0,
    mean 0, variance 1): an exporter drops a zero bias or shares one between layers, so the model would hold
    fewer parameters than torch counts, and a neutral value would hide a convention hwsim got wrong from the
    numerics check."""
    import torch

    generator = torch.Generator().manual_seed(1)

    def draw(tensor: Any, offset: float, scale: float) -> None:
        tensor.copy_(offset + scale * torch.rand(tensor.shape, generator=generator))

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                draw(module.weight, 0.9, 0.2)
                draw(module.running_mean, -0.1, 0.2)
                draw(module.running_var, 1.0, 0.5)
            bias = getattr(module, "bias", None)
            if isinstance(bias, torch.nn.Parameter):
                draw(bias, -0.1, 0.2)


def _layer_scales(model: Any) -> int:
    """Parameters of ConvNeXt's layer scales (``layer_scale``, γ per channel): ONNX writes each as the constant of a
    Mul, which hwsim reads as a ``scale`` layer's attribute, neither parameter nor state (docs/onnx.md)."""
    return sum(p.numel() for name, p in model.named_parameters() if name.rsplit(".", 1)[-1] == "layer_scale")


def _torch_counts(model: Any, example: Any) -> tuple[int, int, int]:
    """(parameters, MACs of its Conv2d and Linear layers for one image, parameters an exporter removes by folding
    batch norm into the convolution whose output it reads: 2 per channel, less the bias that it adds)."""
    import torch

    macs = [0]
    conv_outputs: dict[int, Any] = {}
    folded = [0]

    def count(module: Any, inputs: Any, output: Any) -> None:
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            macs[0] += output.numel() * (module.in_channels // module.groups) * kh * kw
            conv_outputs[id(output)] = (module, output)  # kept alive: a freed tensor's id is reused
        else:
            macs[0] += output.numel() * module.in_features

    def fold(module: Any, inputs: Any) -> None:
        conv, _ = conv_outputs.get(id(inputs[0]), (None, None))
        if conv is not None:
            folded[0] += module.num_features * (1 if conv.bias is None else 2)

    layers = (torch.nn.Conv2d, torch.nn.Linear)
    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, layers)]
    handles += [m.register_forward_pre_hook(fold) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        model(example)
    for handle in handles:
        handle.remove()
    return sum(p.numel() for p in model.parameters()), macs[0], folded[0]


def _published(name: str) -> tuple[int | None, float | None]:
    """torchvision's published (parameters, GFLOPS) from its weights' metadata (no download)."""
    import torchvision

    if name.startswith("timm-"):
        return None, None
    try:
        meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    except Exception:
        return None, None
    return meta.get("num_params"), meta.get("_ops")


def _last_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"[:200]


def export(folder: Path, names: list[str], opsets: tuple[int, ...] | None = None) -> None:
    """Write every model's exports and ``manifest.json`` (one entry per file, or per failed export). ``opsets``:
    TorchScript's only, at these opsets (the Model Zoo's older ones), without the dynamo export or variants."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, Any]] = []
    for name in names:
        model = _build(name)
        example = torch.randn(1, *MODELS[name][1])
        params, macs, folded = _torch_counts(model, example)
        published_params, gflops = _published(name)
        base = {"model": name, "params_torch": params, "folded_params": folded, "macs_torch": macs}
        base["layer_scale_params"] = _layer_scales(model)
        base.update(published_params=published_params, published_gflops=gflops)
        runs: list[tuple[str, int | None]] = [("torchscript", opset) for opset in opsets or TORCHSCRIPT_OPSETS]
        if opsets is None:
            runs.append(("dynamo", None))
        if name.startswith("timm-") and opsets is None:
            runs = [("torchscript", 17)]
        for exporter, opset in runs:
            path = folder / f"{name}-{exporter}{opset or ''}.onnx"
            entry = {**base, "file": path.name, "exporter": exporter, "opset": opset}
            start = time.perf_counter()
            try:
                if path.exists():  # exported by an earlier run
                    entry["opset"] = _opset_of(path)
                    manifest.append(entry)
                    continue
                if exporter == "torchscript":
                    torch.onnx.export(model, (example,), str(path), opset_version=opset, dynamo=False)
                else:
                    program = torch.onnx.export(model, (example,), dynamo=True, verbose=False)
                    program.save(str(path))
                entry["opset"] = _opset_of(path)
            except Exception as err:  # the exporter's own failure: recorded, not hwsim's
                entry["export_error"] = _last_line(err)
                path.unlink(missing_ok=True)
            entry["export_seconds"] = round(time.perf_counter() - start, 1)
            manifest.append(entry)
            print(f"exported {path.name}: {entry.get('export_error', 'ok')}", flush=True)
        if name in VARIANTS_OF and opsets is None:
            manifest += _variants(folder, name, model, example, base)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _opset_of(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _variants(folder: Path, name: str, model: Any, example: Any, base: dict[str, Any]) -> list[dict[str, Any]]:
    """The opset-17 TorchScript export simplified by onnxsim, optimised by ONNX Runtime (basic level), with
    torchvision's initial weights (batch norm folded into zero biases, which the exporter shares through
    Identity nodes), with an open batch dim, in fp16, and quantised to int8."""
    import copy

    import numpy as np
    import onnxruntime as ort
    import torch

    source = folder / f"{name}-torchscript17.onnx"
    optimised_path = folder / f"{name}-ort-basic.onnx"
    entries = []

    def record(kind: str, write: Any) -> None:
        path = folder / f"{name}-{kind}.onnx"
        entry = {**base, "file": path.name, "exporter": kind, "opset": None}
        try:
            if not path.exists():
                write(path)
            entry["opset"] = _opset_of(path)
        except Exception as err:
            entry["export_error"] = _last_line(err)
        entries.append(entry)
        print(f"exported {path.name}: {entry.get('export_error', 'ok')}", flush=True)

    def optimised(path: Path) -> None:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(path)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])

    def simplified(path: Path) -> None:
        import onnx
        import onnxsim

        model, ok = onnxsim.simplify(onnx.load(str(source)))
        if not ok:
            raise ValueError("onnxsim could not check its result")
        onnx.save(model, str(path))

    def dynamic_batch(path: Path) -> None:
        axes = {"input": {0: "batch"}, "output": {0: "batch"}}
        torch.onnx.export(
            model,
            (example,),
            str(path),
            opset_version=17,
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes=axes,
        )

    def half(path: Path) -> None:
        torch.onnx.export(copy.deepcopy(model).half(), (example.half(),), str(path), opset_version=17, dynamo=False)

    def quantised(quant_format: Any) -> Any:
        from onnxruntime import quantization

        def write(path: Path) -> None:
            import onnx

            input_name = onnx.load(str(optimised_path), load_external_data=False).graph.input[0].name
            image = np.random.default_rng(0).standard_normal((1, *example.shape[1:])).astype(np.float32)

            class OneImage(quantization.CalibrationDataReader):
                def __init__(self) -> None:
                    self.feeds = iter([{input_name: image}])

                def get_next(self) -> Any:
                    return next(self.feeds, None)

            quantization.quantize_static(str(optimised_path), str(path), OneImage(), quant_format=quant_format)

        return write

    def batchnorm_at_init(path: Path) -> None:
        import torchvision

        fresh = torchvision.models.get_model(name, weights=None, **MODELS[name][0]).eval()
        torch.onnx.export(fresh, (example,), str(path), opset_version=17, dynamo=False)

    from onnxruntime.quantization import QuantFormat

    record("ort-basic", optimised)
    record("onnxsim", simplified)
    record("bn-at-init", batchnorm_at_init)
    record("dynamic-batch", dynamic_batch)
    record("fp16", half)
    record("int8-qdq", quantised(QuantFormat.QDQ))
    record("int8-qoperator", quantised(QuantFormat.QOperator))
    return entries


# ---- measure (hwsim's python) ---------------------------------------------------------------------------


def _cli(args: list[str]) -> tuple[int, str, str]:
    """A command run as the shell runs it (``hwsim.cli.main``), in this process to spare python's start:
    (exit code, its output, the traceback of an exception that escaped it, if any)."""
    import traceback

    from click.testing import CliRunner

    from hwsim.cli import main

    result = CliRunner().invoke(main, args)
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    trace = "".join(traceback.format_exception(escaped)) if escaped else ""
    return result.exit_code, result.output, trace


def measure(folder: Path, entry: dict[str, Any], verify: bool) -> dict[str, Any]:
    """Read the model in-process (best of 3), then run the three commands on it, as a user would."""
    from hwsim import api
    from hwsim.cost.inference import EXACT
    from hwsim.errors import InputError

    path = folder / entry["file"]
    row: dict[str, Any] = {"refused": None, "crash": []}
    best = float("inf")
    graph = None
    for _ in range(3):
        start = time.perf_counter()
        try:
            graph = api.load_network(path)
        except InputError as err:
            row["refused"] = str(err).splitlines()[0]
            break
        except Exception as err:  # a bug in hwsim: reported as such
            row["crash"].append(f"read: {_last_line(err)}")
            break
        best = min(best, time.perf_counter() - start)
    if graph is not None:
        row["read_ms"] = best * 1e3
        row["params"] = graph.params
        row["macs"] = sum(EXACT.rule(layer.op)(layer, 1)[0] for layer in graph.layers)
    commands = [["estimate", str(path)], ["ops", str(path)]]
    if verify and graph is not None:
        commands.append(["verify", str(path), "--runtime", "onnxruntime"])
    for command in commands:
        code, out, trace = _cli(command)
        if code not in (0, 1, 2) or trace:
            row["crash"].append(f"{command[0]}: exit {code}: {trace.strip().splitlines()[-1] if trace else ''}")
        if command[0] == "verify":
            found = re.search(r"max relative error ([0-9.e+-]+)", out)
            last = (out.strip().splitlines() or ["?"])[-1]  # error: <model>: <reason>; <advice>
            row["verify"] = float(found.group(1)) if found else "not run: " + last.split(": ", 2)[-1].split(";")[0]
    return row


def _params_versus_torch(params: int, entry: dict[str, Any]) -> str:
    """``=`` when hwsim counts torch's parameters; ``= - folded BN`` when the difference is exactly the batch
    norms the exporter folded into their convolutions (2 per channel, less the bias each conv gained); ``= -
    layer scale`` when it is exactly ConvNeXt's layer scales, which hwsim reads as scale constants."""
    if params == entry["params_torch"]:
        return "="
    if params == entry["params_torch"] - entry["folded_params"]:
        return f"= − {entry['folded_params']:,} folded BN"
    scales = entry.get("layer_scale_params", 0)
    if scales and params == entry["params_torch"] - scales:
        return f"= − {scales:,} layer scale"
    return f"{params - entry['params_torch']:+,}"


def _types_only(refusal: str) -> str:
    """``13 unsupported node types: Reshape (97, first: /Reshape: ...), ...`` as ``13 unsupported node types:
    Reshape (97), ...``: the table's cell; ``hwsim estimate`` prints the whole line."""
    found = re.findall(r"([\w.]+) \((\d+), first: ", refusal)
    if not found or "unsupported node type" not in refusal:
        return refusal
    return refusal.split(": ", 1)[0] + ": " + ", ".join(f"{op} ({count})" for op, count in found)


def row(folder: Path, entry: dict[str, Any], verify: bool) -> list[str]:
    """One line of the table: the model, how it was written, and what hwsim makes of it."""
    cells = [entry["model"], entry["exporter"], str(entry["opset"] or "-")]
    if "export_error" in entry:
        return [*cells, f"export fails: {entry['export_error'].split('. ')[0]}".replace("|", "/"), *["-"] * 7]
    measured = measure(folder, entry, verify)
    read = "yes" if not measured["refused"] else "refused: " + _types_only(measured["refused"].split(": ", 1)[-1])
    if measured["crash"]:
        read += " CRASH " + "; ".join(measured["crash"])
    params, macs, gflops = measured.get("params"), measured.get("macs"), entry["published_gflops"]
    verified = measured.get("verify", "-")
    return [
        *cells,
        read.replace("|", "/"),
        f"{params:,}" if params is not None else "-",
        _params_versus_torch(params, entry) if params is not None else "-",
        f"{macs:,}" if macs is not None else "-",
        ("=" if macs == entry["macs_torch"] else f"{macs / entry['macs_torch']:.4f}") if macs else "-",
        f"{macs / 1e9:.3f} / {gflops}" if macs and gflops else "-",
        f"{verified:.1e}" if isinstance(verified, float) else str(verified),
        f"{measured['read_ms']:.0f}" if "read_ms" in measured else "-",
    ]


HEAD = (
    "| model | exporter | opset | hwsim reads | parameters | vs torch | MACs | vs torch's hooks | GMACs / published "
    "GFLOPS | ONNX Runtime rel. error | read ms |"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="measure", choices=("measure", "export"))
    parser.add_argument("--torch-python", default=sys.executable, help="a python with torch and torchvision")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/hwsim-onnx-zoo"))
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated torchvision names")
    parser.add_argument("--no-verify", action="store_true", help="skip hwsim verify --runtime onnxruntime")
    parser.add_argument("--reuse", action="store_true", help="measure the models already in --dir")
    parser.add_argument("--manifest", type=Path, help="the export's list of models (default: --dir/manifest.json)")
    parser.add_argument("--opsets", help="TorchScript only, at these opsets (e.g. 7,8,9,10): no dynamo, no variants")
    args = parser.parse_args()
    opsets = tuple(int(v) for v in args.opsets.split(",")) if args.opsets else None
    names = [n for n in args.models.split(",") if n]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    if args.mode == "export":
        export(args.dir, names, opsets)
        return
    if not args.reuse:
        check = subprocess.run([args.torch_python, "-c", "import torch, torchvision, onnx"], capture_output=True)
        if check.returncode:
            print(f"{args.torch_python} cannot import torch, torchvision and onnx: nothing to export", file=sys.stderr)
            sys.exit(0)
        command = [args.torch_python, str(HERE), "export", "--dir", str(args.dir), "--models", ",".join(names)]
        command += ["--opsets", args.opsets] if args.opsets else []
        subprocess.run(command, check=True)
    manifest = json.loads((args.manifest or args.dir / "manifest.json").read_text())
    lines = [HEAD, "|" + " --- |" * HEAD.count(" | ") + " --- |"]
    for entry in manifest:
        if entry["model"] in names:
            lines.append("| " + " | ".join(row(args.dir, entry, not args.no_verify)) + " |")
            print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
