"""Bad ONNX is one line and exit code 2: unsupported ops listed in one error, dynamic shapes, damaged files,
missing external data, models over the limits, and the onnx extra not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hwsim.cli import main
from hwsim.spec import onnx_file
from tests.onnx_models import Net


def invoke(runner, *args: object):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, *pieces: str) -> None:
    """Exit 2 and exactly one line on stderr, holding every piece; nothing on stdout."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), repr(result.stderr)
    assert all(piece in result.stderr for piece in pieces), result.stderr
    assert result.stdout == ""


def small_net(input_shape=("N", 3, 16, 16)) -> Net:
    net = Net(list(input_shape))
    net.node("Relu", [net.conv("input", "/conv", 3, 8, 3, pad=1)], "/relu/Relu")
    return net


def save(net: Net, output: str, path: Path) -> Path:
    return net.save(output, path)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return save(small_net(), "/relu/Relu_output_0", tmp_path / "model.onnx")


def test_every_unsupported_node_type_is_listed_once_with_its_count_and_first_node(runner, tmp_path: Path) -> None:
    net = small_net()
    x = "/relu/Relu_output_0"
    for i in range(2):
        x = net.node("Cos", [x], f"/act{i}/Cos")
    x = net.node("Neg", [x], "/neg/Neg")
    x = net.node("MaxPool", [x], "/pool/MaxPool", kernel_shape=[2, 2], dilations=[2, 2])
    result = invoke(runner, "estimate", save(net, x, tmp_path / "m.onnx"))
    assert_one_line_error(
        result,
        f"error: {tmp_path / 'm.onnx'}: 3 unsupported node types: Cos (2, first: /act0/Cos), "
        "Neg (1, first: /neg/Neg), MaxPool (1, first: /pool/MaxPool: dilations [2, 2])",
    )


def test_an_op_from_another_domain_is_named_with_its_domain(runner, tmp_path: Path) -> None:
    net = small_net()
    net.nodes.append(helper.make_node("FusedGelu", ["/relu/Relu_output_0"], ["y"], name="/g", domain="com.example"))
    path = tmp_path / "m.onnx"
    onnx.save(net.model("y", domains=["com.example"]), str(path))
    assert_one_line_error(
        invoke(runner, "estimate", path), "1 unsupported node type: com.example.FusedGelu (1, first: /g)"
    )


def test_dynamic_dims_need_input_shape(runner, tmp_path: Path) -> None:
    path = save(small_net(("N", 3, "height", "width")), "/relu/Relu_output_0", tmp_path / "m.onnx")
    assert_one_line_error(
        invoke(runner, "estimate", path),
        "input 'input' has dynamic dims [N, 3, height, width]: give them with --input-shape, "
        "e.g. --input-shape 1x3x224x224",
    )
    result = invoke(runner, "estimate", path, "--input-shape", "1x3x32x24", "--format", "json")
    assert result.exit_code == 0, result.output
    assert '"output_shape": "32x24x8"' in result.stdout or "32x24x8" in result.stdout


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("3x32x32", "--input-shape has 3 dims, input 'input' has 4 [N, 3, height, width]"),
        ("1x4x32x32", "--input-shape gives 4 for dim 1 of input 'input', the model fixes it at 3"),
    ],
)
def test_an_input_shape_that_does_not_fit_the_model_is_refused(
    runner, tmp_path: Path, given: str, complaint: str
) -> None:
    path = save(small_net(("N", 3, "height", "width")), "/relu/Relu_output_0", tmp_path / "m.onnx")
    assert_one_line_error(invoke(runner, "estimate", path, "--input-shape", given), complaint)


def test_input_shape_is_for_onnx_models_only(runner) -> None:
    assert_one_line_error(
        invoke(runner, "estimate", "hairnet", "--input-shape", "1x3x8x8"), "--input-shape is for ONNX models"
    )


def test_an_input_shape_that_is_not_one_is_a_usage_error(runner, model: Path) -> None:
    result = invoke(runner, "estimate", model, "--input-shape", "1xthree")
    assert result.exit_code == 2 and "not a shape like 1x3x224x224: '1xthree'" in result.stderr


def test_a_truncated_model_is_one_line(runner, model: Path, tmp_path: Path) -> None:
    data = model.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    assert_one_line_error(invoke(runner, "estimate", cut), "not a readable ONNX model, truncated or corrupt")


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"", "empty file, not an ONNX model"),
        (b"name: hairnet\nlayers: []\n", "not a readable ONNX model, truncated or corrupt"),
        (bytes(range(256)) * 4, "not a readable ONNX model, truncated or corrupt"),
    ],
    ids=["empty", "yaml", "noise"],
)
def test_a_file_that_is_not_onnx_is_one_line(runner, tmp_path: Path, content: bytes, complaint: str) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    assert_one_line_error(invoke(runner, "estimate", path), complaint)


def test_a_missing_file_and_a_folder_are_one_line(runner, tmp_path: Path) -> None:
    assert_one_line_error(invoke(runner, "estimate", tmp_path / "none.onnx"), "none.onnx: no such file")
    (tmp_path / "dir.onnx").mkdir()
    assert_one_line_error(invoke(runner, "estimate", tmp_path / "dir.onnx"), "is a directory, not a model file")


def test_missing_or_short_external_data_is_one_line(runner, tmp_path: Path) -> None:
    path = tmp_path / "external.onnx"
    model = small_net().model("/relu/Relu_output_0")
    onnx.save(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    assert invoke(runner, "estimate", path).exit_code == 0  # the data is there
    weights = tmp_path / "weights.bin"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 4])
    assert_one_line_error(
        invoke(runner, "estimate", path), "keeps its data in 'weights.bin'", "truncated external data"
    )
    weights.unlink()
    assert_one_line_error(
        invoke(runner, "estimate", path), "keeps its data in 'weights.bin', which does not exist beside the model"
    )


def test_external_data_outside_the_models_folder_is_refused(runner, tmp_path: Path) -> None:
    model = small_net().model("/relu/Relu_output_0")
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True, location="w.bin", size_threshold=0)
    loaded = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    for tensor in loaded.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../../etc/passwd"
    onnx.save(loaded, str(tmp_path / "evil.onnx"))
    assert_one_line_error(
        invoke(runner, "estimate", tmp_path / "evil.onnx"), "must be a file name inside the model's folder"
    )


def test_weights_whose_raw_data_does_not_match_their_dims_are_refused(runner, tmp_path: Path) -> None:
    model = small_net().model("/relu/Relu_output_0")
    weight = model.graph.initializer[0]
    weight.raw_data = weight.raw_data[:-4]
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    assert_one_line_error(invoke(runner, "estimate", path), "holds 860 bytes of data, not the 864 its dims need")


def test_a_model_beyond_the_size_limit_is_refused_unread(runner, model: Path, monkeypatch) -> None:
    monkeypatch.setattr(onnx_file, "MAX_MODEL_BYTES", 100)
    assert_one_line_error(
        invoke(runner, "estimate", model), "1,223 bytes, more than the 100 a model file may have (see docs/limits.md)"
    )


def test_two_inputs_or_no_output_are_refused(runner, tmp_path: Path) -> None:
    net = small_net()
    model = net.model("/relu/Relu_output_0")
    del model.graph.output[:]
    no_output = tmp_path / "none.onnx"
    no_output.write_bytes(model.SerializeToString())
    assert_one_line_error(invoke(runner, "estimate", no_output), "no outputs (truncated?)")
    model = net.model("/relu/Relu_output_0")
    model.graph.input.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, [1, 3, 16, 16]))
    two_inputs = tmp_path / "inputs.onnx"
    two_inputs.write_bytes(model.SerializeToString())
    assert_one_line_error(invoke(runner, "estimate", two_inputs), "2 data inputs ('input', 'other')")


def test_an_invalid_model_is_one_line(runner, tmp_path: Path) -> None:
    net = small_net()
    net.nodes[0].attribute.append(helper.make_attribute("no_such_attribute", 1))
    path = save(net, "/relu/Relu_output_0", tmp_path / "m.onnx")
    assert_one_line_error(
        invoke(runner, "estimate", path),
        "not a valid ONNX model: node /conv/Conv: Conv (opset 17) has no attribute 'no_such_attribute'",
    )


def test_without_the_onnx_extra_an_onnx_model_is_one_line_naming_it(runner, model: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    assert_one_line_error(
        invoke(runner, "estimate", model), "reading ONNX models needs the onnx extra: pip install 'hwsim[onnx]'"
    )


def test_without_onnxruntime_verify_runtime_is_one_line_naming_the_extra(runner, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert_one_line_error(
        invoke(runner, "verify", "hairnet-cifar10-small", "--runtime", "onnxruntime"),
        "checking against ONNX Runtime needs onnxruntime: pip install 'hwsim[onnx]'",
    )


def test_a_shape_computed_at_run_time_is_followed_to_a_flatten(tmp_path: Path) -> None:
    """PyTorch's x.view(x.size(0), -1): Shape, Gather, Unsqueeze and Concat feed the Reshape; they are no layers."""
    from hwsim import api

    net = small_net(("N", 3, 4, 4))
    x = "/relu/Relu_output_0"
    shape = net.node("Shape", [x], "/Shape")
    zero = net.constant("/Constant_output_0", np.array(0, np.int64))
    batch = net.node("Gather", [shape, zero], "/Gather", axis=0)
    batch = net.node("Unsqueeze", [batch, net.constant("/axes", np.array([0], np.int64))], "/Unsqueeze")
    target = net.node("Concat", [batch, net.constant("/minus_one", np.array([-1], np.int64))], "/Concat", axis=0)
    x = net.node("Reshape", [x, target], "/Reshape")
    graph = api.load_network(save(net, x, tmp_path / "view.onnx"))
    assert [(layer.name, layer.op.value) for layer in graph.layers] == [
        ("conv/Conv", "conv"),
        ("relu/Relu", "relu"),
        ("Reshape", "flatten"),
    ]
    assert graph.output.output_shape == (1, 1, 128)


def unchecked(net: Net, output: str, path: Path) -> Path:
    """The model as built, no shape inference run on it (which would refuse what the test wants to show)."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, net.input_shape)
    y = helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 8, 16, 16])
    graph = helper.make_graph(net.nodes, "g", [x], [y], net.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_a_node_missing_an_input_or_a_required_attribute_is_one_line(runner, tmp_path: Path) -> None:
    net = small_net()
    del net.nodes[0].input[1]  # the conv's weight
    path = unchecked(net, "/relu/Relu_output_0", tmp_path / "m.onnx")
    assert_one_line_error(
        invoke(runner, "estimate", path), "node /conv/Conv: Conv (opset 17) takes 2 to 3 inputs, not 1"
    )
    net = small_net()
    net.node("LRN", ["/relu/Relu_output_0"], "/lrn")
    path = unchecked(net, "/lrn_output_0", tmp_path / "lrn.onnx")
    assert_one_line_error(invoke(runner, "estimate", path), "node /lrn: LRN (opset 17) needs its attribute 'size'")


def test_a_tensor_defined_twice_is_one_line(runner, tmp_path: Path) -> None:
    net = small_net()
    net.nodes.append(helper.make_node("Relu", ["/conv/Conv_output_0"], ["/relu/Relu_output_0"], name="/again"))
    model = net.model("/relu/Relu_output_0")
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    assert_one_line_error(invoke(runner, "estimate", path), "tensor '/relu/Relu_output_0' is defined twice")


@pytest.mark.parametrize("command", ["estimate", "import"])
def test_an_opset_newer_than_onnx_knows_is_one_line(runner, tmp_path: Path, command: str) -> None:
    """Once read as if its ops meant what they mean at the latest opset onnx knows (opset 99 estimated)."""
    net = Net([1, 3, 16, 16], opset=onnx.defs.onnx_opset_version())
    out = net.node("Relu", [net.conv("input", "/conv", 3, 8, 3, pad=1)], "/relu/Relu")
    model = net.model(out)
    assert invoke(runner, command, save(net, out, tmp_path / "known.onnx")).exit_code == 0
    model.opset_import[0].version = onnx.defs.onnx_opset_version() + 1
    onnx.save(model, str(tmp_path / "future.onnx"))
    assert_one_line_error(
        invoke(runner, command, tmp_path / "future.onnx"),
        f"opset {onnx.defs.onnx_opset_version() + 1} is newer than the {onnx.defs.onnx_opset_version()} this onnx",
    )
