"""Older opsets, as the ONNX Model Zoo's models (opsets 7 to 9) write them: each pattern reads into the layers it
means, and runs in the NumPy reference as ONNX Runtime runs it. Built with onnx.helper (no downloads, no torch)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from hwsim import api
from hwsim.errors import InputError
from hwsim.studies.runtime import runtime_agreement
from tests.onnx_models import Net


def conv_first(opset: int, size: int = 8, channels: int = 4) -> tuple[Net, str]:
    net = Net(["N", 3, size, size], opset=opset, seed=5)
    return net, net.conv("input", "/conv1", 3, channels, 3, pad=1, bias=True)


def upsample_scales_attribute() -> tuple[Net, str]:
    """Opset 7 and 8: Upsample (deprecated since 10) with its scales as an attribute."""
    net, x = conv_first(7)
    return net, net.node("Upsample", [x], "/up", mode="nearest", scales=[1.0, 1.0, 2.0, 2.0])


def batchnorm_spatial() -> tuple[Net, str]:
    """Opset 7: BatchNormalization with ``spatial`` 1 (per channel), its four extra outputs left out."""
    net, x = conv_first(7)
    x = net.bn(x, "/bn", 4)
    net.nodes[-1].attribute.append(helper.make_attribute("spatial", 1))
    return net, net.node("Relu", [x], "/relu")


def sum_of_three_maps() -> tuple[Net, str]:
    """Opset 8: Sum of several maps (an Inception-style merge)."""
    net, x = conv_first(8)
    a = net.node("Relu", [x], "/a")
    b = net.node("Sigmoid", [x], "/b")
    return net, net.node("Sum", [x, a, b], "/sum")


def dropout_with_mask() -> tuple[Net, str]:
    """Opset 7: Dropout's ratio an attribute; its mask output named but read by nothing."""
    net, x = conv_first(7)
    return net, net.node("Relu", [net.node("Dropout", [x], "/drop", outputs=2, ratio=0.2)], "/relu")


def axes_attributes() -> tuple[Net, str]:
    """Opset 9: ReduceMean, Squeeze and Unsqueeze with axes as attributes (inputs from 13 and 18)."""
    net, x = conv_first(9)
    x = net.node("ReduceMean", [x], "/mean", axes=[2, 3], keepdims=1)
    x = net.node("Squeeze", [x], "/squeeze", axes=[2, 3])
    x = net.gemm(x, "/fc", 4, 5)
    return net, net.node("Unsqueeze", [x], "/unsqueeze", axes=[2, 3])


def reshape_zero_and_minus_one() -> tuple[Net, str]:
    """Opset 9: Reshape to a Constant shape [0, -1] (0 keeps the batch, -1 takes the rest)."""
    net, x = conv_first(9)
    x = net.node("MaxPool", [x], "/pool", kernel_shape=[2, 2], strides=[2, 2])
    x = net.node("Reshape", [x, net.constant("/shape", np.array([0, -1], np.int64))], "/reshape")
    return net, net.gemm(x, "/fc", 4 * 4 * 4, 5)


def gemm_alpha_beta() -> tuple[Net, str]:
    """Opset 9: Gemm with alpha and beta (its weight and bias scaled) and the weight not transposed; Flatten at
    axis 1 after a global average pool."""
    net, x = conv_first(9)
    x = net.node("Flatten", [net.node("GlobalAveragePool", [x], "/gap")], "/flatten", axis=1)
    weight, bias = net.weight("fc.weight", (4, 5), 0.5), net.weight("fc.bias", (5,), 0.5)
    return net, net.node("Gemm", [x, weight, bias], "/fc/Gemm", alpha=0.5, beta=2.0)


def lrn() -> tuple[Net, str]:
    """Opset 8: LRN as AlexNet and GoogLeNet in the zoo write it."""
    net, x = conv_first(8)
    return net, net.node("LRN", [x], "/norm", size=3, alpha=1e-3, beta=0.75, bias=1.0)


def computed_shapes_opset7() -> tuple[Net, str]:
    """Opset 7, as TorchScript writes ShuffleNet's channel shuffle there: each Reshape's target computed from
    Constants (Cast, Unsqueeze with its axes an attribute, Concat), evaluated at the model's own opset."""
    net, x = conv_first(7, size=6, channels=8)

    def target(module: str, dims: list[int]) -> str:
        parts = []
        for i, dim in enumerate(dims):
            value = net.constant(f"{module}/Constant_{i}", np.array(float(dim), np.float32))
            cast = net.node("Cast", [value], f"{module}/Cast_{i}", to=7)
            parts.append(net.node("Unsqueeze", [cast], f"{module}/Unsqueeze_{i}", axes=[0]))
        return net.node("Concat", parts, f"{module}/Concat", axis=0)

    x = net.node("Reshape", [x, target("/grouped", [1, 2, 4, 6, 6])], "/shuffle/Reshape")
    x = net.node("Transpose", [x], "/shuffle/Transpose", perm=[0, 2, 1, 3, 4])
    return net, net.node("Reshape", [x, target("/back", [1, 8, 6, 6])], "/shuffle/Reshape_1")


ZOO: dict[str, tuple[Callable[[], tuple[Net, str]], list[str]]] = {
    "upsample-scales-attribute": (upsample_scales_attribute, ["conv", "upsample"]),
    "batchnorm-spatial": (batchnorm_spatial, ["conv", "batchnorm", "relu"]),
    "sum-of-three-maps": (sum_of_three_maps, ["conv", "relu", "sigmoid", "add"]),
    "dropout-with-mask": (dropout_with_mask, ["conv", "dropout", "relu"]),
    "axes-attributes": (axes_attributes, ["conv", "global_avg_pool", "dense"]),
    "reshape-zero-and-minus-one": (reshape_zero_and_minus_one, ["conv", "maxpool", "flatten", "dense"]),
    "gemm-alpha-beta": (gemm_alpha_beta, ["conv", "global_avg_pool", "dense"]),
    "lrn": (lrn, ["conv", "lrn"]),
    "computed-shapes-opset7": (computed_shapes_opset7, ["conv", "channel_shuffle"]),
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_a_model_zoo_pattern_reads_and_runs_as_onnx_runtime_runs_it(name: str, tmp_path: Path) -> None:
    build, ops = ZOO[name]
    net, output = build()
    path = net.save(output, tmp_path / f"{name}.onnx")
    assert [layer.op.value for layer in api.load_network(path).layers] == ops
    result = runtime_agreement(path, batch=1 if "computed-shapes" in name else 2)  # the batch written in the shapes
    assert result.agrees, result.summary()
    assert result.max_magnitude > 0.01


def test_gemms_alpha_and_beta_scale_the_weights_the_reference_adopts(tmp_path: Path, monkeypatch) -> None:
    """Without alpha and beta the outputs differ: the check can fail."""
    from hwsim.spec import onnx_ops

    net, output = gemm_alpha_beta()
    path = net.save(output, tmp_path / "gemm.onnx")
    assert api.load_network(path).layers[-1].params == 4 * 5 + 5

    def unscaled(node: onnx_ops.Node, ctx: onnx_ops.Context) -> onnx_ops.Translation:
        translation = onnx_ops.gemm(node, ctx)
        return translation._replace(arrays=tuple(array._replace(factor=1.0) for array in translation.arrays))

    monkeypatch.setitem(onnx_ops.TRANSLATORS, "Gemm", unscaled)
    assert not runtime_agreement(path, batch=2).agrees


def test_a_batch_norm_per_activation_is_refused(tmp_path: Path) -> None:
    net, x = conv_first(7)
    net.nodes.append(
        helper.make_node(
            "BatchNormalization",
            [x, *(net.weight(f"bn.{k}", (4, 8, 8), 0.1, 1.0) for k in ("weight", "bias", "mean", "var"))],
            ["y"],
            name="/bn",
            spatial=0,
        )
    )
    with pytest.raises(InputError, match=r"BatchNormalization \(1, first: /bn: spatial 0 on \[1, 4, 8, 8\]"):
        api.load_network(net.save("y", tmp_path / "bn.onnx"))


def test_a_batch_norm_with_consumed_inputs_reads_as_at_later_opsets(tmp_path: Path) -> None:
    """Opset 5 (older than ONNX Runtime runs): BatchNormalization-1's ``consumed_inputs`` and ``is_test``."""
    net, x = conv_first(5)
    x = net.bn(x, "/bn", 4)
    bn = net.nodes[-1]
    del bn.attribute[:]
    bn.attribute.extend(
        [helper.make_attribute("consumed_inputs", [0, 0, 0, 1, 1]), helper.make_attribute("is_test", 1)]
    )
    graph = api.load_network(net.save(x, tmp_path / "bn.onnx"))
    assert [(layer.op.value, layer.params, layer.state) for layer in graph.layers] == [
        ("conv", 3 * 4 * 9 + 4, 0),
        ("batchnorm", 8, 8),
    ]


def test_a_flatten_at_another_axis_reads_where_it_makes_the_same_features(tmp_path: Path) -> None:
    """Flatten at axis 2 of (N, 1, H, W) is (N, H*W), as at axis 1; of (N, 4, 1, 1) it is (4N, 1), and at axis 0
    it merges the batch: both refused."""
    net = Net(["N", 3, 8, 8], opset=9, seed=5)
    x = net.conv("input", "/conv1", 3, 1, 3, pad=1, bias=True)
    output = net.gemm(net.node("Flatten", [x], "/flatten", axis=2), "/fc", 64, 5)
    graph = api.load_network(net.save(output, tmp_path / "one-channel.onnx"))
    assert [layer.op.value for layer in graph.layers] == ["conv", "flatten", "dense"]
    assert runtime_agreement(tmp_path / "one-channel.onnx", batch=2).agrees
    for axis, reason in ((2, r"\[1, 4, 1, 1\] -> \[4, 1\] is not a flatten"), (0, "at axis 0: it merges the batch")):
        net, x = conv_first(9)
        output = net.node("Flatten", [net.node("GlobalAveragePool", [x], "/gap")], "/flatten", axis=axis)
        with pytest.raises(InputError, match=f"Flatten \\(1, first: /flatten: {reason}"):
            api.load_network(net.save(output, tmp_path / f"axis{axis}.onnx"))
