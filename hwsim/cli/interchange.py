"""Commands that carry networks to and from ONNX: import a model as hwsim YAML, export a network as ONNX."""

from __future__ import annotations

from pathlib import Path

import click

from hwsim import api, bundled, files
from hwsim.cli.common import (
    FILE,
    check_outputs,
    file_option,
    input_shape_option,
    output_option,
    reports_input_errors,
    require_suffix,
)
from hwsim.errors import InputError


@click.command("import")
@click.argument("model", type=FILE, metavar="FILE")
@output_option("Write the YAML here (default: print it).")
@input_shape_option
@reports_input_errors
def import_model(model: Path, output: Path | None, input_shape: tuple[int, ...] | None) -> None:
    """Write the ONNX MODEL as an hwsim network (YAML) to edit: estimating either gives the same numbers.

    Layer names are the node names without the leading '/' and with '.' written '_'; where the names
    show a module repeated (layer1/layer1.0, layer1/layer1.1, ...) it becomes a block used once per
    instance. Every layer is checked against the model's own shapes and initializers first.

    \b
    hwsim import resnet18.onnx -o resnet18.yaml
    hwsim import detector.onnx --input-shape 1x3x320x320 -o detector.yaml
    """
    require_suffix(output, (".yaml", ".yml"), "the network is written as YAML")
    if model.suffix.lower() != ".onnx":
        raise InputError("hwsim import reads ONNX models (.onnx); a YAML network needs no import", str(model))
    check_outputs([model], [output])
    text = api.onnx_to_yaml(model, input_shape)
    if output:
        files.write_atomically(output, text)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@click.command("export")
@click.argument("network")
@output_option("The ONNX model to write (.onnx).", required=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the random weights.")
@file_option(
    "--checkpoint",
    help="Export the weights of this hwsim train checkpoint (.npz) instead of random ones.",
)
@reports_input_errors
def export_model(network: str, output: Path, seed: int, checkpoint: Path | None) -> None:
    """Write NETWORK as an ONNX model (opset 17) with the NumPy reference's weights, for Netron, ONNX Runtime
    and every tool that reads ONNX. The model reads NCHW images; `hwsim verify NETWORK --runtime onnxruntime`
    checks that ONNX Runtime computes what the reference does.

    \b
    hwsim export hairnet -o hairnet.onnx                        # random weights (seed 0)
    hwsim export hairnet-cifar10-small -o net.onnx --checkpoint run.npz
    """
    from hwsim.interchange.export import export_onnx

    require_suffix(output, (".onnx",), "an ONNX model")
    network_path = bundled.resolve("networks", network)
    check_outputs([network_path, *([checkpoint] if checkpoint else [])], [output])
    graph = api.load_network(network_path)
    metadata = {"hwsim.network": graph.name}
    if checkpoint:
        from hwsim.training.checkpoint import load_checkpoint

        run = load_checkpoint(checkpoint, graph)
        params, state = run.model.params, run.model.state
        metadata["hwsim.weights"] = f"checkpoint {checkpoint.name}, epoch {run.epoch}"
        metadata["hwsim.input_mean"] = ",".join(f"{v:.9g}" for v in run.normalization.mean)
        metadata["hwsim.input_std"] = ",".join(f"{v:.9g}" for v in run.normalization.std)
    else:
        from hwsim.reference import Model

        model = Model(graph, seed=seed)
        params, state = model.params, model.state
        metadata["hwsim.weights"] = f"random, seed {seed}"
    onnx_model = export_onnx(graph, params, state, metadata)
    import onnx

    onnx.checker.check_model(onnx_model, full_check=True)
    files.write_atomically(output, onnx_model.SerializeToString())
    click.echo(f"wrote {output} ({graph.name}: {len(graph.layers)} layers, {graph.params:,} parameters, opset 17)")
