"""The import's conventions, proved by execution: an ONNX model run in ONNX Runtime as it is, and in the NumPy
reference as hwsim reads it (its own weights converted to hwsim's layout), give the same output.

Each small model exercises one convention: explicit and automatic pads (TensorFlow's extra pixel after, or
before), average pooling over padding, grouped and depthwise convolutions, LRN, nearest upsampling, a mean
over height and width, a flatten in ONNX's (c, h, w) order before a dense layer (and a batch norm over the
flat features), MatMul with an Add for its bias, softmax over channels; and each newer op: Clip, LeakyRelu,
Sigmoid, HardSigmoid, HardSwish, a broadcast Mul and Add, Pad, bilinear Resize, ceil-mode pools, dilation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from hwsim.cli import main
from hwsim.studies.runtime import runtime_agreement
from tests import onnx_models
from tests.onnx_models import Net


def conv_first(size: int = 9, channels: int = 4) -> tuple[Net, str]:
    net = Net(["N", 3, size, size], opset=17, seed=1)
    return net, net.conv("input", "/stem", 3, channels, 3, pad=1, bias=True)


def pads(kind: str) -> Callable[[], tuple[Net, str]]:
    def build() -> tuple[Net, str]:
        net, x = conv_first()
        weight = net.weight("w", (5, 4, 3, 3), 0.3)
        if kind in ("SAME_UPPER", "SAME_LOWER"):
            return net, net.node("Conv", [x, weight], "/c/Conv", strides=[2, 2], auto_pad=kind)
        return net, net.node("Conv", [x, weight], "/c/Conv", strides=[2, 2], pads=[0, 1, 1, 0])

    return build


def average_over_padding() -> tuple[Net, str]:
    net, x = conv_first()
    return net, net.node(
        "AveragePool",
        [x],
        "/p/AveragePool",
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        count_include_pad=1,
    )


def max_over_padding() -> tuple[Net, str]:
    net, x = conv_first()
    return net, net.node("MaxPool", [x], "/p/MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])


def grouped_and_depthwise() -> tuple[Net, str]:
    net, x = conv_first(channels=4)
    x = net.conv(x, "/grouped", 4, 6, 3, pad=1, groups=2, bias=True)
    return net, net.conv(x, "/depthwise", 6, 12, 3, stride=2, pad=1, groups=6)


def lrn() -> tuple[Net, str]:
    net, x = conv_first(channels=6)
    return net, net.node("LRN", [x], "/lrn/LRN", size=3, alpha=0.3, beta=0.75, bias=1.5)


def nearest_upsampling() -> tuple[Net, str]:
    net, x = conv_first()
    scales = net.weight("scales", (4,))
    net.initializers[-1] = onnx.numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    return net, net.node("Resize", [x, "", scales], "/up/Resize", mode="nearest")


def mean_then_dense() -> tuple[Net, str]:
    net, x = conv_first()
    x = net.node("ReduceMean", [x], "/mean/ReduceMean", axes=[2, 3], keepdims=0)
    return net, net.gemm(x, "/fc", 4, 3)


def flatten_in_onnx_order() -> tuple[Net, str]:
    """(N, 8, 3, 3) flattened as ONNX does, then dropout, ReLU and a batch norm over the 72 features, then Gemm."""
    net, x = conv_first(size=6, channels=8)
    x = net.node("MaxPool", [x], "/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    x = net.node("Flatten", [x], "/Flatten", axis=1)
    x = net.node("Dropout", [x], "/drop/Dropout")
    x = net.bn(net.node("Relu", [x], "/relu/Relu"), "/bn", 72)
    return net, net.gemm(x, "/fc", 72, 5)


def matmul_with_bias() -> tuple[Net, str]:
    net, x = conv_first(size=4, channels=2)
    x = net.node("Flatten", [x], "/Flatten", axis=1)
    x = net.node("MatMul", [x, net.weight("w", (32, 7))], "/fc/MatMul")
    return net, net.node("Add", [x, net.weight("b", (7,))], "/fc/Add")


def softmax_over_channels() -> tuple[Net, str]:
    net, x = conv_first()
    return net, net.node("Softmax", [x], "/softmax/Softmax", axis=1)


def activation(op: str, **attrs: object) -> Callable[[], tuple[Net, str]]:
    def build() -> tuple[Net, str]:
        net, x = conv_first()
        return net, net.node(op, [x], f"/act/{op}", **attrs)

    return build


def clip(low: float, high: float) -> Callable[[], tuple[Net, str]]:
    def build() -> tuple[Net, str]:
        net, x = conv_first()
        return net, net.node(
            "Clip",
            [x, net.constant("/lo", np.array(low, np.float32)), net.constant("/hi", np.array(high, np.float32))],
            "/clip/Clip",
        )

    return build


def broadcast(op: str) -> tuple[Net, str]:
    """Squeeze-and-excitation's product: a per-channel (N, C, 1, 1) scale times the (N, C, H, W) map."""
    net, x = conv_first()
    scale = net.node("Sigmoid", [net.node("GlobalAveragePool", [x], "/se/avg")], "/se/gate")
    return net, net.node(op, [x, scale], f"/se/{op}")


def pad(mode: str, value: float = 0.0) -> Callable[[], tuple[Net, str]]:
    def build() -> tuple[Net, str]:
        net, x = conv_first()
        sides = net.constant("/pads", np.array([0, 0, 1, 2, 0, 0, 2, 0], np.int64))
        fill = net.constant("/value", np.array(value, np.float32))
        return net, net.node("Pad", [x, sides, fill], "/pad/Pad", mode=mode)

    return build


def bilinear(transform: str) -> Callable[[], tuple[Net, str]]:
    def build() -> tuple[Net, str]:
        net, x = conv_first(size=5)
        scales = net.constant("/scales", np.array([1, 1, 2, 3], np.float32))
        return net, net.node(
            "Resize", [x, "", scales], "/up/Resize", mode="linear", coordinate_transformation_mode=transform
        )

    return build


def ceil_pool(op: str, **attrs: object) -> Callable[[], tuple[Net, str]]:
    def build() -> tuple[Net, str]:
        net, x = conv_first(size=8)  # 8 -> 4 windows of 3 at stride 2 in ceil mode, 3 in floor mode
        return net, net.node(op, [x], f"/pool/{op}", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, **attrs)

    return build


def dilated() -> tuple[Net, str]:
    net, x = conv_first()
    return net, net.conv(x, "/dilated", 4, 5, 3, pad=2, dilation=2, bias=True)


def mlp() -> tuple[Net, str]:
    """Flat features in, (N, 12): Gemm, ReLU, Gemm, softmax over the classes."""
    net = Net(["N", 12], seed=3)
    x = net.node("Relu", [net.gemm("input", "/fc1", 12, 16)], "/relu/Relu")
    return net, net.node("Softmax", [net.gemm(x, "/fc2", 16, 5)], "/softmax/Softmax", axis=1)


def older_opsets() -> tuple[Net, str]:
    """Opset 9: Upsample with its scales as an input, Dropout's ratio an attribute, Softmax over a flat axis 1."""
    net, x = conv_first()
    net.opset = 9
    scales = net.constant("/scales", np.array([1, 1, 2, 2], np.float32))
    x = net.node("Upsample", [x, scales], "/up/Upsample", mode="nearest")
    x = net.node("GlobalAveragePool", [x], "/pool")
    x = net.node("Dropout", [net.node("Flatten", [x], "/flat", axis=1)], "/drop/Dropout", ratio=0.3)
    return net, net.node("Softmax", [x], "/softmax/Softmax", axis=1)


def mean_over_axes_input() -> tuple[Net, str]:
    """Opset 18: ReduceMean takes its axes as an input."""
    net, x = conv_first()
    net.opset = 18
    return net, net.node("ReduceMean", [x, net.constant("/axes", np.array([-2, -1], np.int64))], "/mean", keepdims=1)


CONVENTIONS = {
    "relu6": clip(0.0, 6.0),
    "clip": clip(-0.5, 0.25),
    "leaky-relu": activation("LeakyRelu", alpha=0.2),
    "sigmoid": activation("Sigmoid"),
    "hard-sigmoid": activation("HardSigmoid", alpha=0.2, beta=0.4),
    "hard-swish": activation("HardSwish"),
    "identity": activation("Identity"),
    "mul-broadcast": lambda: broadcast("Mul"),
    "add-broadcast": lambda: broadcast("Add"),
    "pad-constant": pad("constant", 0.5),
    "pad-reflect": pad("reflect"),
    "pad-edge": pad("edge"),
    "bilinear-half-pixel": bilinear("half_pixel"),
    "bilinear-align-corners": bilinear("align_corners"),
    "maxpool-ceil": ceil_pool("MaxPool"),
    "avgpool-ceil-counting-padding": ceil_pool("AveragePool", count_include_pad=1),
    "avgpool-ceil-not-counting": ceil_pool("AveragePool", pads=[1, 1, 1, 1], count_include_pad=0),
    "dilated-conv": dilated,
    "mlp": mlp,
    "older-opsets": older_opsets,
    "mean-over-axes-input": mean_over_axes_input,
    "same-upper": pads("SAME_UPPER"),
    "same-lower": pads("SAME_LOWER"),
    "explicit-asymmetric-pads": pads("explicit"),
    "average-over-padding": average_over_padding,
    "max-over-padding": max_over_padding,
    "grouped-and-depthwise": grouped_and_depthwise,
    "lrn": lrn,
    "nearest-upsampling": nearest_upsampling,
    "mean-then-dense": mean_then_dense,
    "flatten-in-onnx-order": flatten_in_onnx_order,
    "matmul-with-bias": matmul_with_bias,
    "softmax-over-channels": softmax_over_channels,
}


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_the_reference_runs_an_imported_model_as_onnx_runtime_does(name: str, tmp_path: Path) -> None:
    net, output = CONVENTIONS[name]()
    result = runtime_agreement(net.save(output, tmp_path / f"{name}.onnx"), batch=2)
    assert result.agrees, result.summary()
    assert result.max_magnitude > 0.01


def test_the_flatten_order_matters(tmp_path: Path, monkeypatch) -> None:
    """Without permuting the dense rows to hwsim's (h, w, c) order the outputs differ: the check can fail."""
    from hwsim.interchange import weights

    net, output = flatten_in_onnx_order()
    path = net.save(output, tmp_path / "flat.onnx")
    monkeypatch.setattr(weights, "_flattened_map", lambda graph, layer, network: None)
    assert not runtime_agreement(path, batch=2).agrees


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: onnx_models.resnet18(zeros=False, size=32), id="resnet18", marks=pytest.mark.slow),
        pytest.param(
            lambda: onnx_models.resnet18(zeros=False, size=32, folded=True),
            id="resnet18-folded",
            marks=pytest.mark.slow,
        ),
        pytest.param(lambda: onnx_models.inception(zeros=False, size=12, ceil_pool=False), id="inception"),
        pytest.param(lambda: onnx_models.densenet121(zeros=False, size=32), id="densenet121", marks=pytest.mark.slow),
    ],
)
def test_torchvision_like_models_run_as_onnx_runtime_runs_them(build, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(build(), str(path))
    result = runtime_agreement(path, batch=2)
    assert result.agrees, result.summary()


def test_weights_kept_outside_the_model_are_read(tmp_path: Path) -> None:
    net, output = grouped_and_depthwise()
    path = tmp_path / "external.onnx"
    onnx.save(net.model(output), str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    assert (tmp_path / "w.bin").stat().st_size > 0
    assert runtime_agreement(path).agrees


def test_verify_runtime_on_an_onnx_model_and_on_a_yaml_network(runner, tmp_path: Path) -> None:
    net, output = grouped_and_depthwise()
    path = net.save(output, tmp_path / "model.onnx")
    result = runner.invoke(main, ["verify", str(path), "--runtime", "onnxruntime"])
    assert result.exit_code == 0, result.output
    assert "model: op counts not verified: training them needs a network that ends in softmax" in result.stdout
    assert "model: onnxruntime " in result.stdout and " agrees with the NumPy reference" in result.stdout
    result = runner.invoke(main, ["verify", "hairnet-cifar10-small", "--runtime", "onnxruntime"])
    assert result.exit_code == 0, result.output
    assert "all " in result.stdout and "counts agree" in result.stdout  # the op counts, as before
    assert "hairnet-cifar10-small: onnxruntime" in result.stdout


SEGMENTER = """
name: segmenter
input: [8, 8, 3]
layers:
  - {op: conv, kernel: 3, filters: 4}
  - {op: conv, kernel: 1, filters: 2}
  - {op: softmax}
"""


def test_a_softmax_per_pixel_skips_the_counts_and_still_runs_in_onnx_runtime(runner, tmp_path: Path) -> None:
    """A segmentation network cannot train under verify's cross-entropy: plain verify says so before running
    anything, and --runtime compares it with ONNX Runtime all the same."""
    path = tmp_path / "segmenter.yaml"
    path.write_text(SEGMENTER)
    result = runner.invoke(main, ["verify", str(path)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "must end in softmax of one vector per image (1x1x2), not 8x8x2" in result.stderr
    result = runner.invoke(main, ["verify", str(path), "--runtime", "onnxruntime"])
    assert result.exit_code == 0, result.output
    assert "segmenter: op counts not verified" in result.stdout
    assert "segmenter: onnxruntime " in result.stdout and " agrees with the NumPy reference" in result.stdout


def test_verify_runtime_exits_1_when_the_outputs_differ(runner, monkeypatch) -> None:
    from hwsim.interchange import export

    monkeypatch.setitem(export.WRITERS, "relu", export._same_rank("Sigmoid"))
    result = runner.invoke(main, ["verify", "hairnet-cifar10-small", "--runtime", "onnxruntime"])
    assert result.exit_code == 1 and "DIFFERS from the NumPy reference" in result.stdout


def test_a_model_onnx_runtime_refuses_is_refused_in_one_line(runner, tmp_path: Path, capfd) -> None:
    """PyTorch and hwsim take output padding smaller than the stride or the dilation; ONNX Runtime checks the
    stride alone and refuses this transposed conv. hwsim says so in one line: ONNX Runtime's own logger wrote its
    error to the process's stderr as well, beside hwsim's (CliRunner sees hwsim's line, capfd the logger's)."""
    path = tmp_path / "dilated.yaml"
    path.write_text(
        "name: dilated\ninput: [6, 6, 4]\nlayers:\n"
        "  - {op: conv_transpose, filters: 6, kernel: 1, dilation: 3, output_padding: 2}\n"
    )
    capfd.readouterr()
    result = runner.invoke(main, ["verify", str(path), "--runtime", "onnxruntime"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "ONNX Runtime cannot run the model" in result.stderr
    assert capfd.readouterr().err == ""
