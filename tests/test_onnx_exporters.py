"""What real exporters write, built with onnx.helper as they write it (no torch): each pattern found in the
exports of torchvision's models (``benchmarks/onnx_zoo.py``) reads into hwsim, counts as the model says, and
runs in the NumPy reference as ONNX Runtime runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hwsim import api
from hwsim.studies.runtime import runtime_agreement
from tests.onnx_models import Net
from tests.test_onnx_runtime import conv_first


def shared_zero_biases() -> tuple[Net, str]:
    """TorchScript keeps one copy of equal initializers and hands it to each reader through an Identity: the
    zero biases of convolutions whose batch norm, at its initial state, was folded into them."""
    net, x = conv_first()
    zeros = net.weight("onnx::Conv_39", (4,), 0.0)
    for index in range(2):
        shared = net.node("Identity", [zeros], f"Identity_{index}")
        weight = net.weight(f"onnx::Conv_{index}", (4, 4, 3, 3), 0.3)
        x = net.node("Conv", [x, weight, shared], f"/c{index}/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    return net, x


def concat_of_one() -> tuple[Net, str]:
    """DenseNet's first layer of each block concatenates a list of one map (``torch.cat([x], 1)``); a Sum of
    one map is the same: that map."""
    net, x = conv_first()
    x = net.node("Concat", [x], "/features/denseblock1/denselayer1/Concat", axis=1)
    x = net.node("Relu", [net.node("Sum", [x], "/sum/Sum")], "/relu/Relu")
    return net, net.node("Concat", [x, net.conv(x, "/c", 4, 2, 1)], "/Concat", axis=1)


PATTERNS: dict[str, Callable[[], tuple[Net, str]]] = {
    "shared-zero-biases": shared_zero_biases,
    "concat-of-one": concat_of_one,
}


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_an_exporters_pattern_runs_as_onnx_runtime_runs_it(name: str, tmp_path: Path) -> None:
    net, output = PATTERNS[name]()
    result = runtime_agreement(net.save(output, tmp_path / f"{name}.onnx"), batch=2)
    assert result.agrees, result.summary()
    assert result.max_magnitude > 0.01


def test_a_shared_initializer_counts_for_every_reader(tmp_path: Path) -> None:
    net, output = shared_zero_biases()
    graph = api.load_network(net.save(output, tmp_path / "shared.onnx"))
    stem, *convs = graph.layers
    assert [layer.params for layer in convs] == [4 * 4 * 9 + 4, 4 * 4 * 9 + 4]
    assert all(layer.attrs.bias for layer in convs)
    assert not [layer for layer in graph.layers if layer.op.value == "identity"]


def test_a_computed_weight_is_still_refused(tmp_path: Path) -> None:
    """An Identity of the data is a layer; a weight computed from the data is refused, not taken as a constant."""
    net, x = conv_first()
    weight = net.node("Identity", [net.weight("w", (4, 4, 3, 3), 0.3)], "/w/Identity")
    doubled = net.node("Mul", [weight, net.constant("/two", np.array(2.0, np.float32))], "/w/Mul")
    output = net.node("Conv", [x, doubled], "/c/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    with pytest.raises(Exception, match="Conv .*its weight is computed, not an initializer"):
        api.load_network(net.save(output, tmp_path / "computed.onnx"))


def test_a_concat_of_one_map_is_no_layer(tmp_path: Path) -> None:
    net, output = concat_of_one()
    graph = api.load_network(net.save(output, tmp_path / "one.onnx"))
    assert [layer.op.value for layer in graph.layers] == ["conv", "relu", "conv", "concat"]
    assert graph.layers[-1].output_shape == (9, 9, 6)
