"""`hwsim export`: valid ONNX that ONNX Runtime runs to the NumPy reference's numbers, for every bundled network.

ONNX Runtime is the second oracle: each bundled network is exported with weights that leave no bias, scale
or running statistic at a neutral value, run there and in the reference on one input, and the outputs
compared (fp32, relative error at most 1e-4). Networks that end in softmax are compared on their logits
(a saturated softmax would hide a difference). Small inputs where the network allows them (shapes change, conventions
do not), the networks as bundled under the slow mark.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest

from hwsim import api, bundled
from hwsim.cli import main
from hwsim.errors import InputError
from hwsim.interchange import export
from hwsim.interchange.runtime import TOLERANCE, agreement, varied_weights
from hwsim.model.expand import build_graph
from hwsim.model.graph import Graph
from hwsim.spec.network import load_network_document

NETWORKS = bundled.bundled_names("networks")
SMALL_SIDES = (32, 48, 64, 96, 128)
FAST_PARAMETERS = 5_000_000
"""Exporting and running a network costs time in its weights whatever the input: above this, it is slow."""


def by_size(names: list[str]) -> list:
    """The networks as test parameters, the ones with many weights under the slow mark."""
    return [
        pytest.param(name, marks=pytest.mark.slow) if api.load_network(name).params > FAST_PARAMETERS else name
        for name in names
    ]


def smallest(name: str) -> Graph:
    """The bundled network at the smallest square input it accepts among SMALL_SIDES (else as bundled)."""
    spec, doc = load_network_document(bundled.path("networks", name))
    for side in SMALL_SIDES:
        if side >= spec.input[0]:
            break
        try:
            return build_graph(spec.model_copy(update={"input": (side, side, spec.input[2])}), doc)
        except InputError:
            continue
    return build_graph(spec, doc)


def exported_agreement(graph: Graph, seed: int = 0):
    params, state = varied_weights(graph, seed)
    model = export.export_onnx(graph, params, state)
    onnx.checker.check_model(model, full_check=True)
    return agreement(graph, params, state, model, batch=2, seed=seed)


def test_every_bundled_network_is_checked() -> None:
    assert len(NETWORKS) >= 12 and {"alexnet", "resnet18", "inception", "mobilenet-v2"} <= set(NETWORKS)


@pytest.mark.parametrize("name", by_size(NETWORKS))
def test_onnx_runtime_computes_what_the_reference_does(name: str) -> None:
    graph = smallest(name)
    result = exported_agreement(graph)
    assert result.agrees, result.summary()
    assert result.compared == "the logits (before the final softmax)"  # every bundled network ends in softmax
    assert result.max_magnitude > 0.1  # logits of varied weights: a real signal, not a vanishing one


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_onnx_runtime_computes_what_the_reference_does_at_full_size(name: str) -> None:
    result = exported_agreement(api.load_network(name))
    assert result.agrees, result.summary()


def test_the_check_fails_when_a_convention_is_wrong(monkeypatch, tmp_path: Path) -> None:
    """Flattening NCHW as it is, without the Transpose to hwsim's (h, w, c) order, is caught."""
    network = tmp_path / "flat.yaml"
    network.write_text(
        "name: flat\ninput: [6, 6, 3]\nlayers:\n"
        "  - {op: conv, kernel: 3, stride: 2, filters: 8, name: c}\n"
        "  - {op: flatten, name: f}\n"
        "  - {op: dense, units: 5, name: d}\n"
    )
    graph = api.load_network(network)
    assert graph.layer("f").input_shape == (3, 3, 8) and exported_agreement(graph).agrees

    def flatten_in_onnx_order(w, layer, inputs):
        return w.node("Flatten", inputs, layer.name, 2, axis=1)

    monkeypatch.setitem(export.WRITERS, "flatten", flatten_in_onnx_order)
    result = exported_agreement(graph)
    assert not result.agrees and result.relative_error > 100 * TOLERANCE


def test_same_padding_keeps_tensorflows_extra_pixel_at_the_bottom_right(tmp_path: Path) -> None:
    network = tmp_path / "same.yaml"
    network.write_text(
        "name: same\ninput: [8, 8, 3]\nlayers:\n"
        "  - {op: conv, kernel: 3, stride: 2, filters: 4, name: c}\n"
        "  - {op: maxpool, size: 3, stride: 2, padding: same, name: p}\n"
    )
    graph = api.load_network(network)
    params, state = varied_weights(graph)
    nodes = {node.name: node for node in export.export_onnx(graph, params, state).graph.node}
    pads = {a.name: list(a.ints) for a in nodes["c"].attribute}["pads"]
    assert pads == [0, 0, 1, 1]  # top, left, bottom, right
    assert exported_agreement(graph).agrees


def test_lrn_keeps_its_attributes_as_onnx_reads_them(tmp_path: Path) -> None:
    """Both divide alpha by size: alpha, beta, size and k (ONNX's bias) carry over unchanged."""
    network = tmp_path / "lrn.yaml"
    network.write_text(
        "name: lrn\ninput: [5, 5, 3]\nlayers:\n"
        "  - {op: conv, kernel: 3, filters: 7, name: c}\n"
        "  - {op: lrn, size: 3, alpha: 0.5, beta: 0.6, k: 1.5, name: n}\n"
    )
    graph = api.load_network(network)
    params, state = varied_weights(graph)
    lrn = next(node for node in export.export_onnx(graph, params, state).graph.node if node.op_type == "LRN")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in lrn.attribute}
    assert (attrs["size"], attrs["alpha"], attrs["beta"], attrs["bias"]) == (3, 0.5, np.float32(0.6), 1.5)
    result = exported_agreement(graph)
    assert result.agrees and result.max_magnitude > 0.1


def test_export_writes_a_valid_model_with_the_seeds_weights(runner, tmp_path: Path) -> None:
    out = tmp_path / "net.onnx"
    result = runner.invoke(main, ["export", "hairnet-cifar10-small", "-o", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (hairnet-cifar10-small:" in result.stdout
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    assert {p.key: p.value for p in model.metadata_props}["hwsim.weights"] == "random, seed 3"
    from hwsim.reference import Model

    graph = api.load_network("hairnet-cifar10-small")
    stem = next(t for t in model.graph.initializer if t.name == "stem.weight")
    expected = Model(graph, seed=3).params["stem.weight"].transpose(3, 2, 0, 1)
    assert np.array_equal(onnx.numpy_helper.to_array(stem), expected)


def test_an_exported_network_imports_back_to_the_same_counts(tmp_path: Path) -> None:
    """Layer names change (hwsim's '.' becomes '_'), nothing else: every layer's op, shape and count."""
    graph = api.load_network("hairnet-dense")
    params, state = varied_weights(graph)
    path = tmp_path / "hairnet-dense.onnx"
    onnx.save(export.export_onnx(graph, params, state), str(path))
    back = api.load_network(path)
    strip = [dataclasses.replace(layer, name="", inputs=(), where="") for layer in graph.layers]
    assert [dataclasses.replace(layer, name="", inputs=(), where="") for layer in back.layers] == strip
    assert back.layer("stage1_block1_dw").inputs == ("pool1",)
    hardware = api.load_hardware("paper-accelerator")
    assert api.estimate(back, hardware, "optimized").summary() == api.estimate(graph, hardware, "optimized").summary()


TWO_HEADS = """
name: heads
input: [16, 16, 3]
layers:
  - {op: conv, kernel: 3, filters: 8, name: trunk}
  - {op: conv, kernel: 1, filters: 4, name: small_head}
  - {op: maxpool, size: 2, inputs: [trunk], name: pool}
  - {op: conv, kernel: 1, filters: 6, name: large_head}
"""


def test_every_head_is_an_output_and_imports_back(tmp_path: Path) -> None:
    """A layer no other reads (a detector's first head) is an output of the model, not a dead node ONNX drops."""
    network = tmp_path / "heads.yaml"
    network.write_text(TWO_HEADS)
    graph = api.load_network(network)
    model = export.export_onnx(graph, *varied_weights(graph))
    onnx.checker.check_model(model, full_check=True)
    assert [value.name for value in model.graph.output] == ["small_head", "large_head"]
    path = tmp_path / "heads.onnx"
    onnx.save(model, str(path))
    back = api.load_network(path)
    assert [layer.name for layer in back.layers] == ["trunk", "small_head", "pool", "large_head"]
    hardware = api.load_hardware("edge-npu")
    assert api.estimate(back, hardware, "optimized").summary() == api.estimate(graph, hardware, "optimized").summary()


def test_export_refuses_a_wrong_suffix_before_any_work(runner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["export", "hairnet", "-o", str(tmp_path / "net.yaml")])
    assert result.exit_code == 2 and "an ONNX model; use a .onnx suffix" in result.stderr
    assert not (tmp_path / "net.yaml").exists()


def test_export_takes_a_checkpoints_weights(runner, tmp_path: Path) -> None:
    from tests.training_helpers import write_tiny_network

    network = write_tiny_network(tmp_path)
    run = ["train", str(network), "--images", "40", "--batch-size", "16", "--epochs", "1"]
    assert runner.invoke(main, [*run, "--checkpoint", str(tmp_path / "run.npz")]).exit_code == 0
    out = tmp_path / "tiny.onnx"
    result = runner.invoke(main, ["export", str(network), "-o", str(out), "--checkpoint", str(tmp_path / "run.npz")])
    assert result.exit_code == 0, result.output
    model = onnx.load(str(out))
    metadata = {p.key: p.value for p in model.metadata_props}
    assert (
        metadata["hwsim.weights"] == "checkpoint run.npz, epoch 1" and len(metadata["hwsim.input_mean"].split(",")) == 3
    )
    from hwsim.training.checkpoint import load_checkpoint

    trained = load_checkpoint(tmp_path / "run.npz", api.load_network(network)).model
    gamma = next(t for t in model.graph.initializer if t.name == "stem_bn.gamma")
    assert np.array_equal(onnx.numpy_helper.to_array(gamma), trained.params["stem_bn.gamma"])
    assert not np.allclose(trained.params["stem_bn.gamma"], 1.0)  # trained, not the initial ones


MODERN = """\
name: modern
input: [9, 9, 3]
layers:
  - {op: pad, pads: [1, 0, 2, 1], mode: reflect, name: pad}
  - {op: conv, kernel: 3, filters: 8, dilation: 2, padding: 2, name: dilated}
  - {op: clip, name: relu6}
  - {op: dwconv, kernel: 3, stride: 2, name: dw}
  - {op: hard_swish, name: hswish}
  - {op: global_avg_pool, name: squeeze}
  - {op: conv, kernel: 1, filters: 8, name: excite}
  - {op: hard_sigmoid, name: gate}
  - {op: mul, inputs: [hswish, gate], name: scale}
  - {op: leaky_relu, alpha: 0.2, name: leaky}
  - {op: upsample, factor: [2, 3], mode: bilinear, name: up}
  - {op: maxpool, size: 3, stride: 2, ceil_mode: true, name: ceil}
  - {op: avgpool, size: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false, name: avg}
  - {op: sigmoid, name: sigmoid}
  - {op: identity, name: same}
  - {op: add, inputs: [same, avg], name: add}
  - {op: pad, pads: 1, value: 0.5, name: border}
  - {op: upsample, factor: 2, name: nearest}
  - {op: pad, pads: [0, 1, 1, 0], mode: edge, name: edge}
"""


def test_the_new_ops_export_to_what_onnx_runtime_computes(tmp_path: Path) -> None:
    network = tmp_path / "modern.yaml"
    network.write_text(MODERN)
    graph = api.load_network(network)
    result = exported_agreement(graph)
    assert result.agrees, result.summary()
    ops = {node.op_type for node in export.export_onnx(graph, *varied_weights(graph)).graph.node}
    assert {"Pad", "Clip", "HardSwish", "HardSigmoid", "Mul", "LeakyRelu", "Resize", "Sigmoid", "Identity"} <= ops
