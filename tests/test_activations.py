"""tanh, elu, selu, softplus, mish, prelu and global_max_pool: the activations and the pool real CNN exports use.

Each forward against its formula and each backward against central differences (float64); their YAML entries;
every count executed as modelled in every pass; the three policies under the validator; and ONNX: each op, the
pieces exporters write some of them in (Softplus, Tanh, Mul as Mish before opset 18; PyTorch's thresholded
softplus as Softplus, Greater, Where), PRelu's slope shapes, ONNX Runtime against the reference, and hwsim's
export read back with the same counts."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx_models import Net
from reference_helpers import check_gradients, make_layer, random_inputs, random_params, run
from schedule_helpers import graph_from, hardware
from schedule_helpers import run as schedule

from hwsim import api
from hwsim.cli import main
from hwsim.errors import InputError
from hwsim.interchange import export
from hwsim.interchange.runtime import varied_weights
from hwsim.model.execution import Pass
from hwsim.model.expand import load_network
from hwsim.ops import SELU, EluAttrs, Op, PReluAttrs, SeluAttrs
from hwsim.schedule.validate import Rule
from hwsim.studies.runtime import runtime_agreement
from hwsim.studies.verify import verify

A, G = SELU.alpha, SELU.gamma


def _each(x: np.ndarray, f) -> np.ndarray:
    return np.array([f(float(v)) for v in x.ravel()]).reshape(x.shape)


def _softplus(v: float) -> float:
    return v if v > 20 else math.log1p(math.exp(v))


@pytest.mark.parametrize(
    ("op", "attrs", "scalar"),
    [
        (Op.TANH, None, math.tanh),
        (Op.ELU, EluAttrs(1.0), lambda v: v if v > 0 else math.expm1(v)),
        (Op.ELU, EluAttrs(0.5), lambda v: v if v > 0 else 0.5 * math.expm1(v)),
        (Op.SELU, SELU, lambda v: G * (v if v > 0 else A * math.expm1(v))),
        (Op.SELU, SeluAttrs(1.5, 0.8), lambda v: 0.8 * (v if v > 0 else 1.5 * math.expm1(v))),
        (Op.SOFTPLUS, None, _softplus),
        (Op.MISH, None, lambda v: v * math.tanh(_softplus(v))),
    ],
    ids=lambda p: p.value if isinstance(p, Op) else "",
)
def test_activations_match_their_formula_and_central_differences(op, attrs, scalar) -> None:
    layer = make_layer(op, ((3, 4, 5),), *([attrs] if attrs else []))
    x = random_inputs(layer, 2)
    x[0] *= 4  # far into the saturated ends
    _, y = run(layer, x, {}, training=False)
    np.testing.assert_allclose(y, _each(x[0], scalar), rtol=1e-9, atol=1e-15)
    check_gradients(layer)


@pytest.mark.parametrize("shared", [False, True], ids=["per-channel", "shared"])
def test_prelu_slopes_are_parameters_with_their_gradient(shared: bool) -> None:
    layer = make_layer(Op.PRELU, ((3, 4, 5),), PReluAttrs(shared))
    assert (layer.params, layer.state) == (1 if shared else 5, 0)
    x, params = random_inputs(layer, 2), random_params(layer)
    _, y = run(layer, x, params, training=False)
    slope = np.broadcast_to(params["slope"], x[0].shape)
    np.testing.assert_array_equal(y, np.where(x[0] > 0, x[0], slope * x[0]))
    check_gradients(layer)


def test_global_max_pool_keeps_each_channels_maximum_and_routes_its_gradient_there() -> None:
    layer = make_layer(Op.GLOBAL_MAX_POOL, ((3, 4, 5),))
    assert layer.output_shape == (1, 1, 5)
    x = random_inputs(layer, 2)
    for training in (False, True):
        np.testing.assert_array_equal(run(layer, x, {}, training)[1], x[0].max(axis=(1, 2), keepdims=True))
    check_gradients(layer)


@pytest.mark.parametrize("op", [Op.ELU, Op.SELU, Op.SOFTPLUS, Op.MISH, Op.TANH])
def test_large_inputs_in_float32_stay_finite_and_exact(op: Op) -> None:
    """exp(1000) is inf in float32: the branch taken there is x's (softplus is x above 20, as PyTorch's)."""
    attrs = {Op.ELU: [EluAttrs(1.0)], Op.SELU: [SELU]}.get(op, [])
    layer = make_layer(op, ((1, 1, 5),), *attrs)
    x = np.array([-1000, -30, 0, 30, 1000], np.float32).reshape(1, 1, 1, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel, y = run(layer, [x], {}, training=True)
        (dx,), _ = kernel.backward(np.ones_like(y), {}, (True,))
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    gamma = np.float32(G) if op is Op.SELU else np.float32(1)
    assert y[0, 0, 0, 4] == (np.float32(1) if op is Op.TANH else gamma * np.float32(1000))


def _one(layer: dict[str, Any], input_shape: list[int] | None = None):
    return graph_from({"name": "t", "input": input_shape or [4, 4, 6], "layers": [layer]}).output


def test_the_yaml_entries_default_as_pytorch_does() -> None:
    assert _one({"op": "elu"}).attrs == EluAttrs(1.0)
    assert _one({"op": "selu"}).attrs == SeluAttrs(1.6732632423543772, 1.0507009873554805)
    assert _one({"op": "prelu"}).params == 6 and _one({"op": "prelu", "shared": True}).params == 1
    assert _one({"op": "global_max_pool"}).output_shape == (1, 1, 6)


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ({"op": "elu", "alpha": -1}, "layers[0].alpha"),
        ({"op": "selu", "gamma": 0}, "layers[0].gamma"),
        ({"op": "selu", "alpha": -1.5}, "layers[0].alpha"),
        ({"op": "prelu", "shared": 2}, "layers[0].shared"),
        ({"op": "prelu", "slope": 0.25}, "layers[0]: unknown field 'slope'"),
        ({"op": "tanh", "alpha": 1}, "layers[0]: unknown field 'alpha'"),
    ],
)
def test_bad_entries_are_one_line_errors(tmp_path: Path, runner, layer, field) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ninput: [4, 4, 3]\nlayers:\n" + f"  - {layer}\n".replace("'", ""))
    with pytest.raises(InputError) as caught:
        load_network(path)
    assert field in str(caught.value) and "\n" not in str(caught.value)
    result = runner.invoke(main, ["estimate", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output


NETWORK = """
name: activations
input: [9, 8, 3]
layers:
  - {op: conv, kernel: 3, filters: 8, name: c1}
  - {op: batchnorm, name: bn1}
  - {op: tanh, name: tanh}
  - {op: conv, kernel: 3, filters: 8, name: c2}
  - {op: elu, alpha: 0.5, name: elu}
  - {op: conv, kernel: 3, filters: 8, name: c3}
  - {op: selu, name: selu}
  - {op: conv, kernel: 3, filters: 8, name: c4}
  - {op: softplus, name: softplus}
  - {op: conv, kernel: 3, filters: 8, name: c5}
  - {op: mish, name: mish}
  - {op: conv, kernel: 3, filters: 8, name: c6}
  - {op: prelu, name: prelu}
  - {op: conv, kernel: 3, filters: 8, name: c7}
  - {op: prelu, shared: true, name: shared}
  - {op: global_max_pool, name: gmp}
  - {op: dense, units: 5, name: fc}
  - {op: prelu, name: prelu_fc}
  - {op: softmax, name: out}
"""


@pytest.fixture
def network(tmp_path: Path) -> Path:
    path = tmp_path / "activations.yaml"
    path.write_text(NETWORK)
    return path


def test_verify_executes_what_the_cost_model_counts_in_every_pass(network: Path) -> None:
    graph = load_network(network)
    checks = verify(graph, batch=2).checks
    assert {c.op for c in checks} >= {layer.op for layer in graph.layers}
    assert all(c.modelled == c.executed for c in checks)
    ran = {(c.layer, c.pass_): c.executed for c in checks}
    n = 2 * 9 * 8 * 8
    assert ran[("tanh", Pass.FORWARD)] == n and ran[("tanh", Pass.BACKWARD)] == 3 * n
    assert ran[("mish", Pass.FORWARD)] == 6 * n and ran[("mish", Pass.BACKWARD)] == 7 * n
    # dx = dy * slope, and each slope's gradient: a product per element, summed per channel or over all
    assert ran[("prelu", Pass.BACKWARD)] == n + n + (n - 8)
    assert ran[("shared", Pass.BACKWARD)] == n + n + (n - 1)
    assert ran[("gmp", Pass.FORWARD)] == 2 * (9 * 8 - 1) * 8


def test_a_prelu_reading_the_network_input_computes_no_input_gradient() -> None:
    graph = graph_from(
        {
            "name": "first",
            "input": [4, 4, 3],
            "layers": [{"op": "prelu"}, {"op": "global_max_pool"}, {"op": "dense", "units": 2}, {"op": "softmax"}],
        }
    )
    checks = verify(graph, batch=2).checks
    assert all(c.modelled == c.executed for c in checks)
    n = 2 * 4 * 4 * 3
    assert {(c.layer, c.pass_): c.executed for c in checks}[("prelu", Pass.BACKWARD)] == n + (n - 3)


@pytest.mark.parametrize(
    "capacity", [pytest.param(5_000, marks=pytest.mark.slow), pytest.param(30_000, marks=pytest.mark.slow), 1e6]
)
def test_every_policy_schedules_it_and_strict_and_optimized_pass_the_validator(network: Path, capacity) -> None:
    graph = load_network(network)
    for batch in (1, 2):
        for policy in ("strict", "optimized"):
            _, violations = schedule(graph, hardware(capacity), policy, batch)
            assert violations == []
        _, violations = schedule(graph, hardware(capacity), "paper", batch)
        assert {v.rule for v in violations} <= {Rule.CAPACITY}


def test_optimized_fuses_each_activation_into_the_conv_before_it(network: Path) -> None:
    s, violations = schedule(load_network(network), hardware(1e6), "optimized")
    assert violations == []
    steps = [step.op for step in s.steps]
    for fused in ("conv+tanh", "conv+elu", "conv+selu", "conv+softplus", "conv+mish", "conv+prelu", "dense+prelu"):
        assert fused in steps
    assert "global_max_pool" in steps  # accumulates row by row, like global_avg_pool: a step of its own


# ---- ONNX ----------------------------------------------------------------------------------------------------


def _conv_first(size: int = 9, channels: int = 4, opset: int = 17) -> tuple[Net, str]:
    net = Net(["N", 3, size, size], opset=opset, seed=1)
    return net, net.conv("input", "/stem", 3, channels, 3, pad=1, bias=True)


def _activation(op: str, opset: int = 17, **attrs: object):
    def build() -> tuple[Net, str]:
        net, x = _conv_first(opset=opset)
        return net, net.node(op, [x], f"/act/{op}", **attrs)

    return build


def _prelu(shape: tuple[int, ...]):
    def build() -> tuple[Net, str]:
        net, x = _conv_first()
        return net, net.node("PRelu", [x, net.weight("act.weight", shape, 0.2, 0.25)], "/act/PRelu")

    return build


def _prelu_on_features() -> tuple[Net, str]:
    """After a dense layer: flat (N, 6), one slope per feature, shaped (6,)."""
    net, x = _conv_first()
    x = net.node("Flatten", [net.node("GlobalAveragePool", [x], "/pool/GlobalAveragePool")], "/flat", axis=1)
    x = net.gemm(x, "/fc", 4, 6)
    return net, net.node("PRelu", [x, net.weight("act.weight", (6,), 0.2, 0.25)], "/act/PRelu")


def _prelu_after_flatten() -> tuple[Net, str]:
    """One slope per flat feature of a 9x9x4 map, in ONNX's (c, h, w) order: read in hwsim's (h, w, c)."""
    net, x = _conv_first()
    x = net.node("Flatten", [x], "/flat", axis=1)
    x = net.node("PRelu", [x, net.weight("act.weight", (324,), 0.2, 0.25)], "/act/PRelu")
    return net, net.gemm(x, "/fc", 324, 5)


def _mish_in_pieces() -> tuple[Net, str]:
    """torch.nn.functional.mish as the TorchScript exporter writes it before opset 18."""
    net, x = _conv_first()
    t = net.node("Tanh", [net.node("Softplus", [x], "/act/Softplus")], "/act/Tanh")
    return net, net.node("Mul", [x, t], "/act/Mul")


def _thresholded_softplus() -> tuple[Net, str]:
    """torch.nn.functional.softplus as the dynamo exporter writes it: x where x > 20, else Softplus(x)."""
    net, x = _conv_first()
    above = net.node("Greater", [x, net.constant("/act/threshold", np.array(20.0, np.float32))], "/act/Greater")
    return net, net.node("Where", [above, x, net.node("Softplus", [x], "/act/Softplus")], "/act/Where")


def _reduce_max(opset: int, keepdims: int):
    def build() -> tuple[Net, str]:
        net, x = _conv_first(opset=opset)
        if opset >= 18:
            axes = net.constant("/axes", np.array([2, 3], np.int64))
            return net, net.node("ReduceMax", [x, axes], "/max", keepdims=keepdims)
        return net, net.node("ReduceMax", [x], "/max", axes=[-2, -1], keepdims=keepdims)

    return build


MODELS = {  # the last layer's op, and the layers: conv, the op (and the pool, the dense layer around it)
    "tanh": (_activation("Tanh"), "tanh", 2),
    "elu": (_activation("Elu", alpha=0.5), "elu", 2),
    "selu": (_activation("Selu"), "selu", 2),
    "selu-attributes": (_activation("Selu", alpha=1.5, gamma=0.8), "selu", 2),
    "softplus": (_activation("Softplus"), "softplus", 2),
    "mish-opset-18": (_activation("Mish", opset=18), "mish", 2),
    "mish-in-pieces": (_mish_in_pieces, "mish", 2),
    "softplus-thresholded": (_thresholded_softplus, "softplus", 2),
    "prelu-c11": (_prelu((4, 1, 1)), "prelu", 2),
    "prelu-1c11": (_prelu((1, 4, 1, 1)), "prelu", 2),
    "prelu-shared-1": (_prelu((1,)), "prelu", 2),
    "prelu-shared-111": (_prelu((1, 1, 1)), "prelu", 2),
    "prelu-on-features": (_prelu_on_features, "prelu", 4),
    "prelu-after-flatten": (_prelu_after_flatten, "dense", 4),
    "global-max-pool": (_activation("GlobalMaxPool"), "global_max_pool", 2),
    "reduce-max-axes-attribute": (_reduce_max(17, 1), "global_max_pool", 2),
    "reduce-max-axes-input-flat": (_reduce_max(18, 0), "global_max_pool", 2),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_reads_each_as_one_layer_that_runs_as_onnx_runtime_runs_it(name: str, tmp_path: Path) -> None:
    build, op, layers = MODELS[name]
    net, output = build()
    path = net.save(output, tmp_path / f"{name}.onnx")
    graph = api.load_network(path)
    assert graph.layers[-1].op.value == op and len(graph.layers) == layers
    prelu = next((layer for layer in graph.layers if layer.op is Op.PRELU), None)
    if prelu is not None:
        assert prelu.params == (1 if "shared" in name else prelu.output_shape[2])
    result = runtime_agreement(path, batch=2)
    assert result.agrees, result.summary()
    assert result.max_magnitude > 0.01


def test_pieces_another_layer_reads_stay_layers(tmp_path: Path) -> None:
    """Softplus, Tanh, Mul whose Tanh is read again is no mish: each piece is a layer."""
    net, x = _conv_first()
    t = net.node("Tanh", [net.node("Softplus", [x], "/act/Softplus")], "/act/Tanh")
    out = net.node("Add", [net.node("Mul", [x, t], "/act/Mul"), t], "/add")
    graph = api.load_network(net.save(out, tmp_path / "m.onnx"))
    assert [layer.op.value for layer in graph.layers] == ["conv", "softplus", "tanh", "mul", "add"]


@pytest.mark.parametrize(
    ("slope", "size", "reason"),
    [
        ((4,), 4, "a slope of shape [4] on a [1, 4, 4, 4] input"),  # broadcast along the width
        ((4, 4, 4), 4, "a slope of shape [4, 4, 4]"),
        ((1, 4, 1), 4, "a slope of shape [1, 4, 1]"),
    ],
)
def test_a_prelu_slope_that_varies_along_height_or_width_is_refused(tmp_path: Path, runner, slope, size, reason):
    net, x = _conv_first(size=size)
    out = net.node("PRelu", [x, net.weight("act.weight", slope, 0.2, 0.25)], "/act/PRelu")
    result = runner.invoke(main, ["estimate", str(net.save(out, tmp_path / "m.onnx"))])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "PRelu (1, first: /act/PRelu: " + reason in result.output


def test_a_maximum_over_other_axes_is_refused(tmp_path: Path, runner) -> None:
    net, x = _conv_first()
    out = net.node("ReduceMax", [x], "/max", axes=[1], keepdims=1)
    result = runner.invoke(main, ["estimate", str(net.save(out, tmp_path / "m.onnx"))])
    assert result.exit_code == 2 and "ReduceMax (1, first: /max: a maximum over axes [1]" in result.output


def test_the_export_runs_in_onnx_runtime_and_reads_back_with_the_same_counts(network: Path, tmp_path: Path, runner):
    graph = api.load_network(network)
    model = export.export_onnx(graph, *varied_weights(graph))
    ops = [node.op_type for node in model.graph.node]
    assert {"Tanh", "Elu", "Selu", "Softplus", "PRelu", "GlobalMaxPool"} <= set(ops) and "Mish" not in ops
    out = tmp_path / "activations.onnx"
    assert runner.invoke(main, ["export", str(network), "-o", str(out)]).exit_code == 0
    back = api.load_network(out)
    assert [layer.op for layer in back.layers] == [layer.op for layer in graph.layers]  # mish read back whole
    assert [(layer.params, layer.output_shape) for layer in back.layers] == [
        (layer.params, layer.output_shape) for layer in graph.layers
    ]
    for path in (network, out):
        result = runner.invoke(main, ["verify", str(path), "--runtime", "onnxruntime"])
        assert result.exit_code == 0 and "agrees" in result.output, result.output
