"""scale, an affine map by constants (x * scale + shift): forward against loops, backward against central
differences, the YAML entry, the cost model against execution, the export against ONNX Runtime; and the ONNX
arithmetic it reads (Add, Sub, Mul, Div by a constant), built as exporters write it, against ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx_models import Net
from reference_helpers import check_gradients, make_layer, random_inputs, run
from schedule_helpers import graph_from

from hwsim import api
from hwsim.errors import InputError
from hwsim.interchange.export import export_onnx
from hwsim.interchange.runtime import agreement, varied_weights
from hwsim.ops import Op, ScaleAttrs
from hwsim.reference import Pass
from hwsim.studies.runtime import runtime_agreement
from hwsim.studies.verify import verify


@pytest.mark.parametrize(
    "scale, shift", [((0.5,), (0.0,)), ((1.0,), (3.0,)), ((2.0, -1.0, 0.25), (0.1, 0.2, -0.3)), ((-1.0,), (1.5, 0, 2))]
)
def test_scale_multiplies_then_adds_per_channel(scale: tuple[float, ...], shift: tuple[float, ...]) -> None:
    layer = make_layer(Op.SCALE, ((2, 4, 3),), ScaleAttrs(scale, shift))
    (x,) = random_inputs(layer, 2)
    _, y = run(layer, [x], {}, training=False)
    for n, i, j, c in np.ndindex(y.shape):
        factor, offset = scale[c % len(scale)], shift[c % len(shift)]
        assert y[n, i, j, c] == pytest.approx(x[n, i, j, c] * factor + offset)
    check_gradients(layer)


def _network(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "scaled",
        "input": [5, 5, 3],
        "layers": [entry, {"op": "conv", "filters": 4, "kernel": 3}, {"op": "global_avg_pool"}, {"op": "softmax"}],
    }


@pytest.mark.parametrize(
    "entry, ops_per_element",
    [
        ({"op": "scale", "scale": [4.367, 4.464, 4.444], "shift": [-2.118, -2.036, -1.804]}, 2),
        ({"op": "scale", "scale": 0.5}, 1),
        ({"op": "scale", "shift": 3}, 1),
        ({"op": "scale"}, 0),
    ],
)
def test_the_cost_model_counts_what_the_reference_executes(entry: dict[str, Any], ops_per_element: int) -> None:
    graph = graph_from(_network(entry))
    scaled = graph.layers[0]
    assert (scaled.params, scaled.state) == (0, 0)  # constants, as clip's bounds
    checks = verify(graph, batch=2).checks
    inference = next(c for c in checks if c.op is Op.SCALE and c.pass_ is Pass.FORWARD)
    assert inference.modelled == inference.executed == ops_per_element * 2 * 5 * 5 * 3
    assert all(c.modelled == c.executed for c in checks)


def test_per_channel_constants_must_match_the_channels() -> None:
    with pytest.raises(InputError, match="scale: shift has 2 values for a map of 3 channels"):
        graph_from(_network({"op": "scale", "shift": [1, 2]}))


@pytest.mark.parametrize("entry", [{"op": "scale", "scale": [1, 2, 3], "shift": -1}, {"op": "scale", "shift": 3}])
def test_the_export_runs_in_onnx_runtime_as_in_the_reference(entry: dict[str, Any]) -> None:
    graph = graph_from(_network(entry))
    params, state = varied_weights(graph)
    result = agreement(graph, params, state, export_onnx(graph, params, state), batch=2)
    assert result.agrees, result.summary()


# ---- what exporters write ---------------------------------------------------------------------------


def normalised_input() -> tuple[Net, str]:
    """``(x - mean) / std`` inside the model, mean and std buffers of shape (1, 3, 1, 1), then a conv."""
    net = Net(["N", 3, 6, 6], seed=1)
    mean = net.weight("mean", (1, 3, 1, 1), 0.1, 0.45)
    std = net.weight("std", (1, 3, 1, 1), 0.01, 0.225)
    x = net.node("Div", [net.node("Sub", ["input", mean], "/Sub"), std], "/Div")
    return net, net.conv(x, "/stem", 3, 4, 3, pad=1, bias=True)


def hand_written_hard_swish() -> tuple[Net, str]:
    """``x * F.relu6(x + 3) / 6`` as TorchScript writes it (timm's and GhostNet's ``hard_swish`` before torch had
    one), then ``x * 0.5`` and ``1 - x``, its scalars Constant nodes."""
    net = Net(["N", 3, 6, 6], seed=1)
    x = net.conv("input", "/stem", 3, 4, 3, pad=1, bias=True)
    three, six = net.constant("/three", np.array(3.0, np.float32)), net.constant("/six", np.array(6.0, np.float32))
    zero = net.constant("/zero", np.array(0.0, np.float32))
    clipped = net.node("Clip", [net.node("Add", [x, three], "/act/Add"), zero, six], "/act/Clip")
    y = net.node("Div", [net.node("Mul", [x, clipped], "/act/Mul"), six], "/act/Div")
    y = net.node("Mul", [y, net.constant("/half", np.array(0.5, np.float32))], "/Mul")
    return net, net.node("Sub", [net.constant("/one", np.array(1.0, np.float32)), y], "/Sub")


def layer_scale() -> tuple[Net, str]:
    """ConvNeXt's and CaiT's layer scale: a per-channel initializer of shape (C, 1, 1) times the map."""
    net = Net(["N", 3, 6, 6], seed=1)
    x = net.conv("input", "/stem", 3, 4, 3, pad=1, bias=True)
    return net, net.node("Mul", [x, net.weight("gamma", (4, 1, 1), 0.5, 1.0)], "/ls/Mul")


@pytest.mark.parametrize("pattern", [normalised_input, hand_written_hard_swish, layer_scale])
def test_constant_arithmetic_runs_as_onnx_runtime_runs_it(pattern: Any, tmp_path: Path) -> None:
    net, output = pattern()
    result = runtime_agreement(net.save(output, tmp_path / "model.onnx"), batch=2)
    assert result.agrees, result.summary()
    assert result.max_magnitude > 0.01


def test_constant_arithmetic_becomes_scale_layers(tmp_path: Path) -> None:
    net, output = normalised_input()
    graph = api.load_network(net.save(output, tmp_path / "normalised.onnx"))
    sub, div = graph.layers[:2]
    assert (sub.op, div.op) == (Op.SCALE, Op.SCALE)
    assert sub.attrs.scale == (1.0,) and len(sub.attrs.shift) == 3
    assert div.attrs.shift == (0.0,) and len(div.attrs.scale) == 3
    net, output = hand_written_hard_swish()
    graph = api.load_network(net.save(output, tmp_path / "hard_swish.onnx"))
    assert [layer.op.value for layer in graph.layers] == ["conv", "scale", "clip", "mul", "scale", "scale", "scale"]
    assert [(layer.attrs.scale, layer.attrs.shift) for layer in graph.layers[-3:]] == [
        (pytest.approx((1 / 6,)), (0.0,)),
        ((0.5,), (0.0,)),
        ((-1.0,), (1.0,)),
    ]


@pytest.mark.parametrize(
    "build, reason",
    [
        (lambda net, x: net.node("Div", [net.constant("/c", np.array(1.0, np.float32)), x], "/op"), "a reciprocal"),
        (lambda net, x: net.node("Sub", [x, x], "/op"), "a Sub of two maps"),
        (
            lambda net, x: net.node("Mul", [x, net.weight("/c", (1, 1, 9, 1))], "/op"),
            r"a constant of shape \[1, 1, 9, 1\]",
        ),
        (lambda net, x: net.node("Add", [x, net.weight("/c", (2, 4, 1, 1))], "/op"), "broadcasts"),
        (lambda net, x: net.node("Div", [x, x], "/op"), "a Div of two maps"),
    ],
)
def test_arithmetic_hwsim_cannot_express_is_refused_with_its_reason(build: Any, reason: str, tmp_path: Path) -> None:
    net = Net(["N", 3, 9, 9], seed=1)
    x = net.conv("input", "/stem", 3, 4, 3, pad=1, bias=True)
    with pytest.raises(InputError, match=f"/op: .*{reason}"):
        api.load_network(net.save(build(net, x), tmp_path / "refused.onnx"))


def test_a_mean_of_one_map_is_no_layer(tmp_path: Path) -> None:
    net = Net(["N", 3, 9, 9], seed=1)
    x = net.conv("input", "/stem", 3, 4, 3, pad=1, bias=True)
    graph = api.load_network(net.save(net.node("Relu", [net.node("Mean", [x], "/Mean")], "/Relu"), tmp_path / "m.onnx"))
    assert [layer.op.value for layer in graph.layers] == ["conv", "relu"]
