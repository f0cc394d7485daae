"""Reading ONNX: torchvision-like models against their published counts, the names and blocks they become,
and `hwsim import`'s YAML estimating exactly as the model does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx
import pytest

from hwsim import api
from hwsim.errors import InputError
from hwsim.model.expand import onnx_graph
from hwsim.model.graph import Graph
from hwsim.ops import Op
from hwsim.report import tables
from hwsim.spec.onnx_reader import layer_name, read_onnx
from tests import onnx_models


def saved(model: onnx.ModelProto, folder: Path, name: str) -> Path:
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def macs(graph: Graph, prefix: str = "") -> int:
    estimate = api.estimate(graph, api.load_hardware("paper-accelerator"), "paper")
    return sum(cost.macs for cost in estimate.costs if cost.name.startswith(prefix))


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return saved(onnx_models.resnet18(), tmp_path_factory.mktemp("resnet18"), "resnet18")


def test_resnet18_has_torchvisions_parameters_and_macs(resnet18: Path) -> None:
    """torchvision: 11,689,512 parameters; 1,814,073,344 MACs at 224x224 (fvcore: conv and dense only)."""
    graph = api.load_network(resnet18)
    assert (graph.params, macs(graph)) == (11_689_512, 1_814_073_344)
    assert sum(layer.state for layer in graph.layers) == 2 * 4800  # running mean and variance of 4,800 channels


def test_a_batch_norm_the_exporter_folded_is_its_convolutions_bias(tmp_path: Path) -> None:
    graph = api.load_network(saved(onnx_models.resnet18(folded=True), tmp_path, "folded"))
    convs = [layer for layer in graph.layers if layer.op is Op.CONV]
    assert not [layer for layer in graph.layers if layer.op is Op.BATCHNORM]
    assert all(layer.attrs.bias for layer in convs) and len(convs) == 20
    assert graph.params == 11_689_512 - 4800  # gamma and beta per channel became one bias
    assert macs(graph) == 1_814_073_344


def test_layers_keep_the_node_names_and_the_modules_become_blocks(resnet18: Path) -> None:
    graph = api.load_network(resnet18)
    assert [layer.name for layer in graph.layers[:4]] == [
        "conv1/Conv",
        "bn1/BatchNormalization",
        "relu/Relu",
        "maxpool/MaxPool",
    ]
    add = graph.layer("layer2/layer2_0.Add")
    assert add.inputs == (
        "layer2/layer2_0.bn2/BatchNormalization",
        "layer2/layer2_0.downsample/downsample_1/BatchNormalization",
    )
    assert graph.layer("layer2/layer2_0.downsample/downsample_0/Conv").inputs == ("layer1/layer1_1.relu_1/Relu",)
    assert graph.layer("layer2/layer2_0.conv1/Conv").attrs.padding.top == 1  # torchvision's symmetric padding
    # torchvision's Flatten of the 1x1 average is no layer: hwsim's 1x1xC map is flat already
    assert [layer.name for layer in graph.layers[-2:]] == ["avgpool/GlobalAveragePool", "fc/Gemm"]
    assert graph.layer("fc/Gemm").inputs == ("avgpool/GlobalAveragePool",)
    bundled_layers = api.load_network("resnet18").layers[:-1]  # the bundled file ends in a softmax
    assert [(layer.op, layer.output_shape, layer.params) for layer in graph.layers] == [
        (layer.op, layer.output_shape, layer.params) for layer in bundled_layers
    ]
    document = read_onnx(resnet18).document.data
    assert list(document["blocks"]) == ["block1", "block2"]  # the basic block, and the one that downsamples
    uses = [entry for entry in document["layers"] if "use" in entry]
    assert [(u["use"], u["name"], u["filters"]) for u in uses[:3]] == [
        ("block1", "layer1/layer1_0", 64),
        ("block1", "layer1/layer1_1", 64),
        ("block2", "layer2/layer2_0", 128),
    ]
    assert len(uses) == 8


def test_node_names_lose_the_leading_slash_and_their_dots() -> None:
    taken: set[str] = set()
    assert layer_name("/layer1/layer1.0/conv1/Conv", "Conv", 3, taken) == "layer1/layer1_0/conv1/Conv"
    assert layer_name("", "Relu", 7, taken) == "Relu_7"
    taken.add("a_b")
    assert layer_name("a.b", "Add", 0, taken) == "a_b_2"
    assert layer_name("input", "Relu", 0, set()) == "input_"
    assert layer_name("$x", "Relu", 0, set()) == "_x"


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: onnx_models.resnet18(size=64), id="resnet18"),
        pytest.param(lambda: onnx_models.resnet18(size=64, folded=True), id="resnet18-folded"),
        pytest.param(lambda: onnx_models.inception(ceil_pool=False), id="inception"),
        pytest.param(lambda: onnx_models.densenet121(size=32), id="densenet121", marks=pytest.mark.slow),  # 7 s
        pytest.param(lambda: onnx_models.mobilenet_v2(), id="mobilenet-v2"),
        pytest.param(lambda: onnx_models.se_hardswish(), id="se-hardswish"),
    ],
)
def test_the_imported_yaml_estimates_exactly_as_the_model(build, tmp_path: Path) -> None:
    model = saved(build(), tmp_path, "model")
    yaml_path = tmp_path / "model.yaml"
    yaml_path.write_text(api.onnx_to_yaml(model))
    from_onnx, from_yaml = api.load_network(model), api.load_network(yaml_path)
    assert [dataclasses.replace(layer, where="") for layer in from_onnx.layers] == [
        dataclasses.replace(layer, where="") for layer in from_yaml.layers
    ]
    hardware = api.load_hardware("edge-npu")
    onnx_run, yaml_run = api.estimate(from_onnx, hardware, "strict"), api.estimate(from_yaml, hardware, "strict")
    assert tables.to_json(onnx_run) == tables.to_json(yaml_run)  # every layer's row and the summary


def test_errors_in_an_imported_layer_name_the_onnx_node(tmp_path: Path) -> None:
    """The ONNX document's places are nodes, not lines."""
    network = read_onnx(saved(onnx_models.inception(ceil_pool=False), tmp_path, "inception"))
    assert network.document.where(("layers", 0)) == f"{tmp_path / 'inception.onnx'}: node /inception3a/branch1/Conv"


def test_hwsims_shapes_and_counts_are_checked_against_the_models(resnet18: Path) -> None:
    network = read_onnx(resnet18)
    graph = onnx_graph(network)
    name = "maxpool/MaxPool"
    assert network.layers[name].shape == graph.layer(name).output_shape == (56, 56, 64)
    wrong_shape = network.layers[name]._replace(shape=(57, 57, 64))
    with pytest.raises(InputError, match=r"node /maxpool/MaxPool: hwsim infers an output of 56x56x64 .* say 57x57x64"):
        onnx_graph(dataclasses.replace(network, layers={**network.layers, name: wrong_shape}))
    conv = "conv1/Conv"
    wrong_params = network.layers[conv]._replace(params=9409)
    with pytest.raises(
        InputError, match="hwsim counts 9,408 parameters and 0 of state, the model's initializers hold 9,409"
    ):
        onnx_graph(dataclasses.replace(network, layers={**network.layers, conv: wrong_params}))


def test_inception_modules_match_googlenet_table_1(tmp_path: Path) -> None:
    """The modules as the paper draws them: 163,328 and 388,096 weights, 128,049,152 and 304,267,264 MACs."""
    graph = api.load_network(saved(onnx_models.inception(ceil_pool=False), tmp_path, "inception"))
    for module, weights, module_macs in (("inception3a", 163_328, 128_049_152), ("inception3b", 388_096, 304_267_264)):
        convs = [layer for layer in graph.layers if layer.name.startswith(module) and layer.op is Op.CONV]
        assert sum(layer.params - layer.attrs.out_channels for layer in convs) == weights
        assert macs(graph, module) == module_macs
    assert graph.output.output_shape == (28, 28, 480)
    pools = [layer for layer in graph.layers if layer.op is Op.MAXPOOL]
    assert len(pools) == 2 and all(pool.output_shape[:2] == (28, 28) for pool in pools)  # ceil mode changes nothing


def test_googlenets_ceil_mode_pool_halves_28_to_14(tmp_path: Path) -> None:
    graph = api.load_network(saved(onnx_models.inception(), tmp_path, "inception"))
    assert graph.output.output_shape == (14, 14, 480)  # floor would give 13


def test_densenet121_has_torchvisions_parameters_and_macs(tmp_path: Path) -> None:
    """torchvision: 7,978,856 parameters and 2.83 GFLOPS (MACs) at 224x224; every dense layer reads a concat."""
    graph = api.load_network(saved(onnx_models.densenet121(), tmp_path, "densenet121"))
    assert graph.params == 7_978_856
    assert abs(macs(graph) - 2.83e9) <= 0.005 * 2.83e9
    concat = graph.layer("features/denseblock4/Concat")
    assert len(concat.inputs) == 17 and concat.output_shape == (7, 7, 1024)


def test_mobilenet_v2_has_torchvisions_parameters_and_macs(tmp_path: Path) -> None:
    """torchvision: 3,504,872 parameters; 300,774,272 MACs (the paper's 300 M); ReLU6 is Clip(0, 6)."""
    graph = api.load_network(saved(onnx_models.mobilenet_v2(), tmp_path, "mobilenet_v2"))
    assert (graph.params, macs(graph)) == (3_504_872, 300_774_272)
    clips = [layer for layer in graph.layers if layer.op.value == "clip"]
    assert len(clips) == 35
    assert len([layer for layer in graph.layers if layer.op is Op.ADD]) == 10


def test_a_squeeze_and_excitation_block_scales_channels_by_a_broadcast_multiply(tmp_path: Path) -> None:
    graph = api.load_network(saved(onnx_models.se_hardswish(), tmp_path, "se"))
    mul = next(layer for layer in graph.layers if layer.op.value == "mul")
    assert sorted(graph.layer(name).output_shape for name in mul.inputs) == [(1, 1, 72), (28, 28, 72)]
    expand, dw, fc1, fc2, project = 24 * 72, 72 * 25, 72 * 24 + 24, 24 * 72 + 72, 72 * 24
    assert graph.params == expand + dw + fc1 + fc2 + project + 2 * (72 + 72 + 24)
    assert macs(graph) == 28 * 28 * (expand + dw + project) + 72 * 24 + 24 * 72  # the multiply is no MAC


def test_scopes_with_other_ops_under_the_same_names_are_not_one_block(tmp_path: Path) -> None:
    """a/x, a/y and b/x, b/y: the same local names, but b/y drops out where a/y rectifies."""
    net = onnx_models.Net(["N", 3, 8, 8])
    x = net.conv("input", "/stem", 3, 4, 3, pad=1)
    for scope, second in (("a", "Relu"), ("b", "Dropout"), ("c", "Relu")):
        x = net.node(second, [net.node("Relu", [x], f"/{scope}/x")], f"/{scope}/y")
    graph = api.load_network(net.save(x, tmp_path / "m.onnx"))
    assert [layer.op.value for layer in graph.layers] == ["conv", "relu", "relu", "relu", "dropout", "relu", "relu"]
    document = read_onnx(tmp_path / "m.onnx").document.data
    assert [entry.get("use") for entry in document["layers"] if "use" in entry] == ["block1", "block1"]  # a and c
    assert graph.layer("b/y").op is Op.DROPOUT and graph.layer("c.y").op is Op.RELU


def test_names_yaml_would_misread_survive_the_import(tmp_path: Path) -> None:
    net = onnx_models.Net(["N", 3, 8, 8])
    x = net.conv("input", "/stem", 3, 4, 3, pad=1)
    for name in ("yes", "a: b", "#c", "[d]", "{e}", "1.5", "null", "-f", "g,h"):
        x = net.node("Relu", [x], name)
    model = net.save(x, tmp_path / "odd.onnx")
    yaml_path = tmp_path / "odd.yaml"
    yaml_path.write_text(api.onnx_to_yaml(model))
    names = [layer.name for layer in api.load_network(yaml_path).layers]
    assert names == [layer.name for layer in api.load_network(model).layers]
    assert names[1:] == ["yes", "a: b", "#c", "[d]", "{e}", "1_5", "null", "-f", "g,h"]


def test_every_command_that_takes_a_network_takes_an_onnx_model(runner, resnet18: Path, tmp_path: Path) -> None:
    from hwsim.cli import main

    def run(*args: object) -> str:
        result = runner.invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "resnet18" in run("compare", resnet18, "resnet18", "--format", "csv")
    run("sweep", resnet18, "--vary", "memory.internal.capacity=256KB..1MB:2", "-o", tmp_path / "s.csv")
    run("roofline", resnet18, "-o", tmp_path / "r.png")
    assert run("ops", resnet18).startswith("layer,op,")
    assert "layer1/layer1_0.conv1/Conv" in run("estimate", resnet18, "--format", "csv")


def test_a_models_own_shapes_are_read_and_checked(tmp_path: Path) -> None:
    """With every tensor's shape in value_info hwsim reads those (no inference); a wrong one is caught."""
    shaped = onnx_models.resnet18(size=64, value_info=True)
    assert len(shaped.graph.value_info) > 60
    graph = api.load_network(saved(shaped, tmp_path, "shaped"))
    assert graph.layers == api.load_network(saved(onnx_models.resnet18(size=64), tmp_path, "shaped")).layers
    pool = next(value for value in shaped.graph.value_info if value.name == "/maxpool/MaxPool_output_0")
    pool.type.tensor_type.shape.dim[2].dim_value = 17  # the model now says 16 x 17
    with pytest.raises(InputError, match="node /maxpool/MaxPool: hwsim infers an output of 16x16x64 .* say 17x16x64"):
        api.load_network(saved(shaped, tmp_path, "lying"))
