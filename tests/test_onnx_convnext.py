"""ConvNeXt in ONNX: a ConvNeXt written by PyTorch's own exporters reads into hwsim's NCHW layers (the channels-last
stretches between its Transposes, LayerNormalization or its pieces, GELU as Gelu or as its erf and tanh pieces, a
MatMul per pixel as a 1x1 conv, the layer scale as a scale), counts as torch counts it and runs as ONNX Runtime
runs it; hwsim's gelu and layer_norm export and import back to the same counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwsim import api
from hwsim.errors import InputError
from hwsim.studies.runtime import runtime_agreement
from tests.onnx_models import Net
from tests.test_onnx_runtime import conv_first

EXPORTS = Path(__file__).parent / "exports"
TORCH_PARAMS, LAYER_SCALE, TORCH_MACS = 1_757, 8, 72_272
"""torch's counts of the tiny ConvNeXt (tests/exports/README.md): parameters, of which the layer scale's, and the
MACs of its Conv2d and Linear modules by forward hooks."""


@pytest.mark.parametrize(
    ("file", "tanh"),
    [
        ("convnext-tiny-torchscript17.onnx", False),  # LayerNormalization, GELU as Div, Erf, Add, Mul, Mul
        ("convnext-tiny-tanh-torchscript13.onnx", True),  # layer norm as its nine pieces, the tanh GELU's pieces
        ("convnext-tiny-dynamo20.onnx", False),  # Gelu, the head's flatten as Reshape and an as_strided Gather
    ],
)
def test_a_real_convnext_export_reads_counts_as_torch_and_runs_as_onnx_runtime(file: str, tanh: bool) -> None:
    path = EXPORTS / file
    graph = api.load_network(path)
    ops = [layer.op.value for layer in graph.layers]
    block = ["dwconv", "layer_norm", "conv", "gelu", "conv", "scale", "add"]
    head = ["global_avg_pool", "layer_norm", "dense"]
    assert ops == ["conv", "layer_norm", *block, "layer_norm", "conv", *(["gelu"] if tanh else []), *head]
    gelus = [layer.attrs.approximate for layer in graph.layers if layer.op.value == "gelu"]  # type: ignore[attr-defined]
    assert gelus == (["none", "tanh"] if tanh else ["none"])
    assert graph.params == TORCH_PARAMS - LAYER_SCALE  # the layer scale is a scale's constants
    estimate = api.estimate(graph, api.load_hardware("paper-accelerator"), "paper")
    assert sum(cost.macs for cost in estimate.costs) == TORCH_MACS
    result = runtime_agreement(path)
    assert result.agrees, result.summary()


def test_the_dynamo_exporters_default_external_data_reads_the_same(tmp_path: Path) -> None:
    """``torch.onnx.export(..., dynamo=True)`` keeps every initializer outside the model file by default: the small
    ones are operands (the layer scale's factors, the as_strided Gather's indices) and are read from there."""
    import onnx

    model = onnx.load(str(EXPORTS / "convnext-tiny-dynamo20.onnx"))
    path = tmp_path / "outside.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="outside.onnx.data", size_threshold=0)
    assert not onnx.load(str(path), load_external_data=False).graph.initializer[0].raw_data
    graph, inline = api.load_network(path), api.load_network(EXPORTS / "convnext-tiny-dynamo20.onnx")
    assert [(layer.op, layer.attrs, layer.params) for layer in graph.layers] == [
        (layer.op, layer.attrs, layer.params) for layer in inline.layers
    ]
    assert runtime_agreement(path).agrees


def _gelu_model(net: Net, x: str, pieces: str) -> str:
    """GELU as the dynamo exporter writes it (a Gelu node) or as TorchScript's pieces."""
    if pieces == "Gelu":
        return net.node("Gelu", [x], "/act/Gelu", approximate="tanh")
    root = net.constant("/act/Constant_output_0", np.array(1.4142135, np.float32))
    one = net.constant("/act/Constant_1_output_0", np.array(1.0, np.float32))
    half = net.constant("/act/Constant_2_output_0", np.array(0.5, np.float32))
    erf = net.node("Erf", [net.node("Div", [x, root], "/act/Div")], "/act/Erf")
    return net.node("Mul", [net.node("Mul", [x, net.node("Add", [erf, one], "/act/Add")], "/act/Mul"), half], "/act/M")


@pytest.mark.parametrize(("pieces", "opset", "approximate"), [("Gelu", 20, "tanh"), ("erf", 17, "none")])
def test_gelu_reads_as_one_layer(pieces: str, opset: int, approximate: str, tmp_path: Path) -> None:
    net, x = conv_first()
    net.opset = opset
    path = net.save(_gelu_model(net, x, pieces), tmp_path / "gelu.onnx")
    graph = api.load_network(path)
    assert [layer.op.value for layer in graph.layers] == ["conv", "gelu"]
    assert graph.layers[1].attrs.approximate == approximate  # type: ignore[attr-defined]
    assert runtime_agreement(path).agrees


def test_a_gelu_approximation_hwsim_lacks_is_one_line(runner, tmp_path: Path) -> None:
    from hwsim.cli import main

    net, x = conv_first()
    net.opset = 20
    path = net.save(net.node("Gelu", [x], "/act/Gelu", approximate="sigmoid"), tmp_path / "gelu.onnx")
    result = runner.invoke(main, ["estimate", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().endswith("Gelu (1, first: /act/Gelu: approximate 'sigmoid')")
    assert len(result.output.strip().splitlines()) == 1


def test_erf_pieces_that_are_not_a_gelu_are_refused(tmp_path: Path) -> None:
    """x / 2 (not √2) through Erf is no GELU: the Erf is refused, not read as one."""
    net, x = conv_first()
    two = net.constant("/act/Constant_output_0", np.array(2.0, np.float32))
    output = net.node("Erf", [net.node("Div", [x, two], "/act/Div")], "/act/Erf")
    with pytest.raises(InputError, match=r"unsupported node type: Erf \(1, first: /act/Erf\)"):
        api.load_network(net.save(output, tmp_path / "erf.onnx"))


def test_a_channels_last_map_read_by_what_hwsim_cannot_read_so_refuses_its_transpose(tmp_path: Path) -> None:
    """A max pool over a permuted map pools (H, W, C) as if it were (C, H, W): the Transpose is refused, saying by
    what, in the one line that lists what is unsupported."""
    net, x = conv_first()
    nhwc = net.node("Transpose", [x], "/permute/Transpose", perm=[0, 2, 3, 1])
    output = net.node("MaxPool", [nhwc], "/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    with pytest.raises(InputError) as caught:
        api.load_network(net.save(output, tmp_path / "pool.onnx"))
    message = str(caught.value)
    assert "Transpose (1, first: /permute/Transpose: its channels-last map is read by MaxPool /pool/MaxPool)" in message
    assert "\n" not in message


def test_a_layer_norm_over_more_than_the_channels_is_refused(tmp_path: Path) -> None:
    """LayerNormalization at axis 1 of NCHW normalises each image over C, H and W: not hwsim's layer norm."""
    net, x = conv_first()
    gamma, beta = net.weight("ln.weight", (4, 5, 5)), net.weight("ln.bias", (4, 5, 5))
    output = net.node("LayerNormalization", [x, gamma, beta], "/ln/LayerNormalization", axis=1)
    with pytest.raises(InputError, match="over axes 1 to 3 of a 4-D map, not each pixel's channels"):
        api.load_network(net.save(output, tmp_path / "ln.onnx"))


CONVNEXT_LIKE = """
name: convnext-like
input: [10, 9, 3]
layers:
  - {op: conv, kernel: 2, stride: 2, filters: 8, name: stem}
  - {op: layer_norm, eps: 1.0e-6, name: stem_norm}
  - {op: dwconv, kernel: 7, padding: 3, name: dw}
  - {op: layer_norm, name: norm}
  - {op: conv, kernel: 1, filters: 32, name: expand}
  - {op: gelu, name: act}
  - {op: conv, kernel: 1, filters: 8, name: project}
  - {op: gelu, approximate: tanh, name: tanh_act}
  - {op: add, inputs: [stem_norm, tanh_act], name: residual}
  - {op: global_avg_pool, name: gap}
  - {op: layer_norm, name: head_norm}
  - {op: dense, units: 5, name: fc}
  - {op: softmax, name: out}
"""


def _exported(runner, tmp_path: Path) -> tuple[Path, Path]:
    from hwsim.cli import main

    source = tmp_path / "net.yaml"
    source.write_text(CONVNEXT_LIKE)
    onnx_path = tmp_path / "net.onnx"
    assert runner.invoke(main, ["export", str(source), "-o", str(onnx_path)]).exit_code == 0
    return source, onnx_path


def test_export_writes_what_torch_writes_and_imports_back_to_the_same_layers(runner, tmp_path: Path) -> None:
    import onnx

    source, onnx_path = _exported(runner, tmp_path)
    written = [node.op_type for node in onnx.load(str(onnx_path)).graph.node]
    assert written.count("Erf") == written.count("Tanh") == 1 and written.count("LayerNormalization") == 3
    original, imported = api.load_network(source), api.load_network(onnx_path)
    assert [(layer.name, layer.op, layer.attrs, layer.params) for layer in imported.layers] == [
        (layer.name, layer.op, layer.attrs, layer.params) for layer in original.layers
    ]
    assert runtime_agreement(onnx_path).agrees


def test_the_export_counts_and_runs_as_the_yaml_does(runner, tmp_path: Path) -> None:
    from hwsim.cli import main

    outputs = []
    for path in _exported(runner, tmp_path):
        result = runner.invoke(main, ["ops", str(path)])
        assert result.exit_code == 0
        outputs.append(result.output)
        result = runner.invoke(main, ["verify", str(path), "--runtime", "onnxruntime"])
        assert result.exit_code == 0 and "counts agree" in result.output and "agrees" in result.output, result.output
    assert outputs[0] == outputs[1]
