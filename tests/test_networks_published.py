"""The bundled ImageNet networks against the parameter and MAC counts their authors and libraries publish.

hwsim counts MACs on conv, dwconv and dense only (docs/ops.md), one per multiply-accumulate, depthwise
divided by groups: the convention of the published figures below (torchvision's "GFLOPS" column,
fvcore and torchtnt count a fused multiply-add once; "mult-adds" in the MobileNet papers). Batch
norm's gamma and beta are parameters and its running statistics are not, as torchvision and Keras
count trainable parameters.
"""

from __future__ import annotations

import pytest

from hwsim import api
from hwsim.model.graph import Graph
from hwsim.ops import Op

PUBLISHED = {
    # torchvision docs, ResNet18_Weights.IMAGENET1K_V1: num_params 11689512, GFLOPS 1.81;
    # the exact MACs: pytorch/tnt tests/utils/test_module_summary.py (flops_forward of torchvision's
    # resnet18 at 1x3x224x224, where Conv2d(3, 8, 3) on 8x8 counts 7,776 = its MACs).
    "resnet18": (11_689_512, 1_814_073_344),
    # Keras/TF-slim MobileNet 1.0-224 trainable parameters 4,231,976 (osmr/imgclsmob pytorch/README.md,
    # "MobileNet x1.0"); MACs: the paper's Table 8 and tensorflow/models research/slim/nets/mobilenet_v1.md,
    # "569 Million MACs" for MobileNet_v1_1.0_224 (no exact count is published; see the test below).
    "mobilenet-v1": (4_231_976, 568_740_352),
    # torchvision docs, MobileNet_V2_Weights.IMAGENET1K_V1: num_params 3504872, GFLOPS 0.30; the paper's
    # Table 4 and tensorflow/models research/slim/nets/mobilenet/README.md: 300 M MACs for 1.0-224.
    "mobilenet-v2": (3_504_872, 300_774_272),
    # torchvision docs, VGG16_Weights.IMAGENET1K_V1: num_params 138357544, GFLOPS 15.47; its conv layers'
    # 15,346,630,656 MACs are Eyeriss's "15.3 G MACs" for VGG-16 (JSSC 2017), checked below.
    "vgg16": (138_357_544, 15_470_264_320),
}


def macs(graph: Graph, prefix: str = "") -> int:
    estimate = api.estimate(graph, api.load_hardware("paper-accelerator"), "paper")
    return sum(cost.macs for cost in estimate.costs if cost.name.startswith(prefix))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameters_and_macs_equal_the_published_counts(name: str) -> None:
    graph = api.load_network(name)
    assert (graph.params, macs(graph)) == PUBLISHED[name]


def near(count: float, published: float) -> bool:
    """Within 0.5 % of a figure the authors printed rounded (569 M, 300 M, 159 K): a missing layer is far more."""
    return abs(count - published) <= 0.005 * published


@pytest.mark.parametrize(("name", "published_macs"), [("mobilenet-v1", 569e6), ("mobilenet-v2", 300e6)])
def test_mobilenet_macs_are_the_papers_millions(name: str, published_macs: float) -> None:
    assert near(macs(api.load_network(name)), published_macs)


def test_vgg16_conv_layers_are_the_15_3_billion_macs_eyeriss_ran() -> None:
    graph = api.load_network("vgg16")
    conv = [layer for layer in graph.layers if layer.op is Op.CONV]
    assert len(conv) == 13
    costs = api.estimate(graph, api.load_hardware("eyeriss-v1")).costs
    assert near(sum(c.macs for c in costs if c.layer in conv), 15.3e9)


def test_resnet18_follows_torchvisions_shapes_and_padding() -> None:
    graph = api.load_network("resnet18")
    assert graph.layer("maxpool").output_shape == (56, 56, 64)
    # symmetric padding 1 at stride 2, as torchvision pads (TensorFlow's `same` would pad 0 top/left)
    conv = graph.layer("layer2.block1.main.conv1")
    assert conv.output_shape == (28, 28, 128) and (conv.attrs.padding.top, conv.attrs.padding.bottom) == (1, 1)
    assert graph.layer("layer4.block1.downsample").inputs == ("layer3.block2.relu",)
    adds = [layer for layer in graph.layers if layer.op is Op.ADD]
    assert len(adds) == 8 and adds[0].inputs == ("layer1.block1.main.bn2", "maxpool")
    assert graph.layer("avgpool").output_shape == (1, 1, 512)


def test_mobilenet_v2_adds_the_input_back_only_where_stride_and_channels_allow() -> None:
    graph = api.load_network("mobilenet-v2")
    adds = [layer for layer in graph.layers if layer.op is Op.ADD]
    assert len(adds) == 10  # Table 2: n - 1 per row, rows of n = 2, 3, 4, 3, 3
    assert all(graph.layer(a.inputs[0]).output_shape == graph.layer(a.inputs[1]).output_shape for a in adds)
    # the projections are linear: batch norm and no activation before the add
    assert all(graph.layer(a.inputs[0]).op is Op.BATCHNORM for a in adds)
    assert graph.layer("conv_last").input_shape == (7, 7, 320)


def test_inception_modules_match_googlenet_table_1() -> None:
    """Szegedy et al. 2015, Table 1: 3a 159K parameters and 128M ops, 3b 380K and 304M (K = 1024, biases aside)."""
    graph = api.load_network("inception")
    table_1 = {"inception3a": (159, 128, 256), "inception3b": (380, 304, 480)}  # K params, M ops, channels out
    for module, (params_k, macs_m, channels) in table_1.items():
        convs = [layer for layer in graph.layers if layer.name.startswith(module) and layer.op is Op.CONV]
        weights = sum(layer.params - layer.attrs.out_channels for layer in convs)
        assert near(weights, params_k * 1024) and near(macs(graph, module + "."), macs_m * 1e6)
        assert graph.layer(f"{module}.concat").output_shape == (28, 28, channels)
    assert len(graph.layer("inception3b.concat").inputs) == 4
