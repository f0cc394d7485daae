"""What real exporters write, built with onnx.helper as they write it (no torch): each pattern found in the
exports of torchvision's models (``benchmarks/onnx_zoo.py``) reads into hwsim, counts as the model says, and
runs in the NumPy reference as ONNX Runtime runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hwsim import api
from hwsim.cli import main
from hwsim.errors import InputError
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


def shuffle_unit(exporter: str) -> tuple[Net, str]:
    """ShuffleNet v2's unit at stride 1 as each exporter writes it: ``x.chunk(2, dim=1)``, a branch on the second
    half, the halves concatenated, then ``channel_shuffle`` (view to 5-D, transpose the group axes, view back).

    TorchScript computes chunk's bounds from the map's shape (Shape, Gather, Add, Div, Mul: ONNX's shape
    inference cannot follow Div) and slices; opset 11 Splits with sizes as an attribute; the dynamo exporter
    Splits into ``num_outputs`` (opset 18), writes Reshape's ``allowzero`` and every tensor's shape."""
    net, x = conv_first(size=6, channels=8)
    net.opset = {"torchscript": 17, "split-attribute": 11, "dynamo": 18}[exporter]
    m = "/stage2/stage2.1"
    if exporter == "torchscript":
        axis = net.constant(f"{m}/Constant_output_0", np.array([1], np.int64))
        start = net.constant(f"{m}/Constant_1_output_0", np.array([0], np.int64))
        channels = net.node("Gather", [net.node("Shape", [x], f"{m}/Shape"), axis], f"{m}/Gather", axis=0)
        rounded = net.node(
            "Add", [channels, net.constant(f"{m}/Constant_2_output_0", np.array(1, np.int64))], f"{m}/Add"
        )
        half = net.node("Div", [rounded, net.constant(f"{m}/Constant_3_output_0", np.array(2, np.int64))], f"{m}/Div")
        end = net.node("Mul", [half, net.constant(f"{m}/Constant_4_output_0", np.array(1, np.int64))], f"{m}/Mul")
        end2 = net.node("Mul", [half, net.constant(f"{m}/Constant_5_output_0", np.array(2, np.int64))], f"{m}/Mul_1")
        passed = net.node("Slice", [x, start, end, axis], f"{m}/Slice")
        branch = net.node("Slice", [x, end, end2, axis], f"{m}/Slice_1")
    elif exporter == "split-attribute":
        passed, branch = net.node("Split", [x], f"{m}/Split", outputs=2, axis=1, split=[4, 4])[:2], ""
        passed, branch = f"{m}/Split_output_0", f"{m}/Split_output_1"
    else:
        net.node("Split", [x], f"{m}/Split", outputs=2, axis=1, num_outputs=2)
        passed, branch = f"{m}/Split_output_0", f"{m}/Split_output_1"
    branch = net.node("Relu", [net.conv(branch, f"{m}/branch2/branch2.0", 4, 4, 1, bias=True)], f"{m}/Relu")
    branch = net.conv(branch, f"{m}/branch2/branch2.3", 4, 4, 3, pad=1, groups=4, bias=True)
    x = net.node("Concat", [passed, branch], f"{m}/Concat", axis=1)
    allow = {"allowzero": 1} if exporter == "dynamo" else {}
    grouped = net.constant(f"{m}/Constant_6_output_0", np.array([1, 2, 4, 6, 6], np.int64))
    x = net.node("Reshape", [x, grouped], f"{m}/Reshape", **allow)
    x = net.node("Transpose", [x], f"{m}/Transpose", perm=[0, 2, 1, 3, 4])
    back = net.constant(f"{m}/Constant_7_output_0", np.array([1, 8, 6, 6], np.int64))
    return net, net.node("Reshape", [x, back], f"{m}/Reshape_1", **allow)


def cast_to_float() -> tuple[Net, str]:
    """A Cast to float32 of float32 maps changes nothing (exporters write them where they do not track types)."""
    net, x = conv_first()
    return net, net.node("Relu", [net.node("Cast", [x], "/Cast", to=1)], "/relu/Relu")


def computed_same_pads() -> tuple[Net, str]:
    """timm's ``Conv2dSame`` (tf_efficientnet_b0): TensorFlow's 'same' padding computed at run time from the
    map's shape, ``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` per side (Shape, Gather, Cast, Div,
    Ceil, Sub, Mul, Add, Clip), split into before and after (Div, Cast, Sub), then F.pad's order turned into
    ONNX's as TorchScript writes it (Concat with ConstantOfShape zeros, Reshape to pairs, a reversing Slice,
    Transpose, Reshape) before a Pad and an unpadded stride-2 Conv."""
    net, x = conv_first(size=8)
    m = "/conv_dw"

    def const(name: str, value: object, dtype: type = np.int64) -> str:
        return net.constant(f"{m}/{name}", np.array(value, dtype))

    shape = net.node("Shape", [x], f"{m}/Shape")
    sides = []
    for axis in (2, 3):  # height, then width
        n = net.node("Gather", [shape, const(f"axis{axis}", axis)], f"{m}/Gather_{axis}", axis=0)
        n = net.node("Cast", [n], f"{m}/Cast_{axis}", to=TensorProto.FLOAT)
        out = net.node(
            "Ceil", [net.node("Div", [n, const(f"s{axis}", 2.0, np.float32)], f"{m}/Div_{axis}")], f"{m}/Ceil_{axis}"
        )
        total = net.node(
            "Mul",
            [
                net.node("Sub", [out, const(f"one{axis}", 1.0, np.float32)], f"{m}/Sub_{axis}"),
                const(f"stride{axis}", 2.0, np.float32),
            ],
            f"{m}/Mul_{axis}",
        )
        total = net.node("Add", [total, const(f"extent{axis}", 3.0, np.float32)], f"{m}/Add_{axis}")
        total = net.node("Sub", [total, n], f"{m}/Sub2_{axis}")
        total = net.node("Clip", [total, const(f"zero{axis}", 0.0, np.float32), ""], f"{m}/Clip_{axis}")
        before = net.node(
            "Cast",
            [
                net.node(
                    "Floor",
                    [net.node("Div", [total, const(f"two{axis}", 2.0, np.float32)], f"{m}/Half_{axis}")],
                    f"{m}/Floor_{axis}",
                )
            ],
            f"{m}/CastB_{axis}",
            to=TensorProto.FLOAT,
        )
        after = net.node("Sub", [total, before], f"{m}/After_{axis}")
        sides.append((before, after))
    (top, bottom), (left, right) = sides
    unsqueezed = [
        net.node("Unsqueeze", [side, const(f"u{i}", [0])], f"{m}/Unsqueeze_{i}")
        for i, side in enumerate((left, right, top, bottom))  # F.pad lists the last axis first
    ]
    torch_order = net.node(
        "Cast", [net.node("Concat", unsqueezed, f"{m}/Concat", axis=0)], f"{m}/CastI", to=TensorProto.INT64
    )
    zeros = net.node(
        "ConstantOfShape",
        [const("four", [4])],
        f"{m}/ConstantOfShape",
        value=onnx.numpy_helper.from_array(np.array([0], np.int64)),
    )
    pairs = net.node(
        "Reshape",
        [net.node("Concat", [torch_order, zeros], f"{m}/Concat_1", axis=0), const("pairs", [-1, 2])],
        f"{m}/Reshape",
    )
    reversed_ = net.node(
        "Slice",
        [pairs, const("start", [-1]), const("end", [-(2**63)]), const("axes", [0]), const("step", [-1])],
        f"{m}/Slice",
    )
    onnx_order = net.node(
        "Reshape",
        [net.node("Transpose", [reversed_], f"{m}/Transpose", perm=[1, 0]), const("flat", [-1])],
        f"{m}/Reshape_1",
    )
    x = net.node("Pad", [x, onnx_order, const("value", 0.0, np.float32)], f"{m}/Pad", mode="constant")
    return net, net.conv(x, m, 4, 4, 3, stride=2, groups=4, bias=True)


def channels_last(end: str) -> Callable[[], tuple[Net, str]]:
    """tf2onnx and keras2onnx export a Keras model's NHWC input followed by a Transpose to NCHW; the map goes
    back to NHWC before the output (``end`` "map") or before a flatten and a dense layer ("flatten")."""

    def build() -> tuple[Net, str]:
        net = Net(["N", 7, 5, 3], opset=13, seed=4)  # H, W and C all differ: a wrong order cannot pass
        x = net.node("Transpose", ["input"], "/input_nchw", perm=[0, 3, 1, 2])
        x = net.node("Relu", [net.bn(net.conv(x, "/conv", 3, 4, 3, pad=1, bias=True), "/bn", 4)], "/relu")
        x = net.node("Transpose", [x], "/output_nhwc", perm=[0, 2, 3, 1])
        if end == "map":
            return net, x
        x = net.node("Reshape", [x, net.constant("/shape", np.array([-1, 7 * 5 * 4], np.int64))], "/flatten")
        return net, net.gemm(x, "/dense", 7 * 5 * 4, 6)

    return build


def mean_of_three_maps() -> tuple[Net, str]:
    """Mean of several maps (an ensemble's average, a merge of branches), one of them broadcast (1x1xC)."""
    net, x = conv_first()
    gap = net.node("GlobalAveragePool", [x], "/gap")
    return net, net.node("Mean", [x, net.node("Sigmoid", [x], "/sigmoid"), gap], "/merge/Mean")


PATTERNS: dict[str, Callable[[], tuple[Net, str]]] = {
    "shared-zero-biases": shared_zero_biases,
    "concat-of-one": concat_of_one,
    "cast-to-float": cast_to_float,
    "shuffle-unit-torchscript": lambda: shuffle_unit("torchscript"),
    "shuffle-unit-split-attribute": lambda: shuffle_unit("split-attribute"),
    "shuffle-unit-dynamo": lambda: shuffle_unit("dynamo"),
    "computed-same-pads": computed_same_pads,
    "channels-last-map": channels_last("map"),
    "channels-last-flatten": channels_last("flatten"),
    "mean-of-three-maps": mean_of_three_maps,
}


def saved(name: str, folder: Path) -> Path:
    net, output = PATTERNS[name]()
    path = folder / f"{name}.onnx"
    onnx.save(net.model(output, value_info="dynamo" in name), str(path))
    return path


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_an_exporters_pattern_runs_as_onnx_runtime_runs_it(name: str, tmp_path: Path) -> None:
    batch = 1 if "shuffle" in name else 2  # the exporters write the batch of 1 into a shuffle's Reshapes
    result = runtime_agreement(saved(name, tmp_path), batch=batch)
    assert result.agrees, result.summary()
    assert result.max_magnitude > 0.01


@pytest.mark.parametrize("every_shape", [False, True])
def test_pads_computed_from_the_maps_shape_are_evaluated(every_shape: bool, tmp_path: Path) -> None:
    """8 rows at stride 2 under a 3x3 window: TensorFlow's rule pads 0 before and 1 after. Evaluated whether the
    model leaves its shapes to inference or gives every map's (then only the pads' arithmetic is evaluated)."""
    net, output = computed_same_pads()
    model = net.model(output, value_info=every_shape)
    if every_shape:  # what ONNX's inference cannot give, written as an exporter that knows them writes it
        model.graph.value_info.append(helper.make_tensor_value_info("/conv_dw/Pad_output_0", 1, ["N", 4, 9, 9]))
        model.graph.output[0].CopyFrom(helper.make_tensor_value_info(output, 1, ["N", 4, 4, 4]))
    path = tmp_path / "pads.onnx"
    onnx.save(model, str(path))
    graph = api.load_network(path)
    pad, conv = graph.layers[-2:]
    sides = (pad.attrs.top, pad.attrs.bottom, pad.attrs.left, pad.attrs.right)
    assert (pad.op.value, sides, pad.output_shape) == ("pad", (0, 1, 0, 1), (9, 9, 4))
    assert conv.output_shape == (4, 4, 4)


@pytest.mark.parametrize("end", ["map", "flatten"])
def test_a_channels_last_input_reads_as_the_nchw_network_after_its_transpose(end: str, tmp_path: Path) -> None:
    path = saved(f"channels-last-{end}", tmp_path)
    graph = api.load_network(path)
    assert graph.input_shape == (7, 5, 3)
    expected = ["conv", "batchnorm", "relu"] + (["flatten", "dense"] if end == "flatten" else [])
    assert [layer.op.value for layer in graph.layers] == expected
    assert "its NHWC input read as NCHW" in api.onnx_to_yaml(path)


def test_a_transpose_that_is_not_a_layout_change_is_still_refused(tmp_path: Path) -> None:
    """Only NHWC -> NCHW after the input and NCHW -> NHWC before a flatten or the output are read (as no layer)."""
    net, x = conv_first()
    output = net.node("Relu", [net.node("Transpose", [x], "/swap_hw", perm=[0, 1, 3, 2])], "/relu")
    with pytest.raises(InputError, match=r"1 unsupported node type: Transpose \(1, first: /swap_hw: perm \[0, 1, 3"):
        api.load_network(net.save(output, tmp_path / "swap.onnx"))
    net = Net(["N", 7, 5, 3], opset=13)  # an NHWC input read by a Transpose and by another node
    x = net.node("Transpose", ["input"], "/input_nchw", perm=[0, 3, 1, 2])
    output = net.node("Add", [net.node("Relu", ["input"], "/relu"), x], "/add")
    with pytest.raises(InputError, match="Transpose"):
        api.load_network(net.save(output, tmp_path / "both.onnx"))


def test_a_mean_of_three_maps_is_their_sum_scaled_with_onnxs_operations(tmp_path: Path) -> None:
    """ONNX's Mean of k maps is k - 1 adds and a divide an element: hwsim's add and scale by 1 / k count the same."""
    net, output = mean_of_three_maps()
    graph = api.load_network(net.save(output, tmp_path / "mean.onnx"))
    total, mean = graph.layers[-2:]
    assert (total.name, total.op.value, len(total.inputs)) == ("merge/Mean_sum", "add", 3)
    expected = ("merge/Mean", "scale", (total.name,), (0.33333334,))  # 1 / 3 as the shortest decimal of its float32
    assert (mean.name, mean.op.value, mean.inputs, mean.attrs.scale) == expected
    estimate = api.estimate(graph, api.load_hardware("paper-accelerator"), "paper")
    ops = {cost.layer.name: cost.ops for cost in estimate.costs}
    assert ops[total.name] + ops[mean.name] == 3 * 9 * 9 * 4


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


@pytest.mark.parametrize("exporter", ["torchscript", "split-attribute", "dynamo"])
def test_a_shufflenet_unit_is_two_slices_and_a_channel_shuffle(exporter: str, tmp_path: Path) -> None:
    graph = api.load_network(saved(f"shuffle-unit-{exporter}", tmp_path))
    ops = [
        (layer.op.value, getattr(layer.attrs, "start", None), getattr(layer.attrs, "end", None))
        for layer in graph.layers
    ]
    assert ops == [
        ("conv", None, None),
        ("slice", 0, 4),
        ("slice", 4, 8),
        ("conv", None, None),
        ("relu", None, None),
        ("dwconv", None, None),
        ("concat", None, None),
        ("channel_shuffle", None, None),
    ]
    assert graph.output.attrs.groups == 2 and graph.output.output_shape == (6, 6, 8)


@pytest.mark.parametrize(
    "op, inputs, attrs, reason",
    [
        ("Slice", [[0], [3], [2]], {}, r"Slice \(1, first: /crop: starts \[0\], ends \[3\], axes \[2\]"),
        (
            "Slice",
            [[0], [8], [1], [2]],
            {},
            r"Slice \(1, first: /crop: starts \[0\], ends \[8\], axes \[1\], steps \[2\]",
        ),
        ("Split", [], {"axis": 2, "num_outputs": 3}, r"Split \(1, first: /crop: along axis 2"),
    ],
)
def test_a_crop_or_a_strided_slice_is_refused_with_its_reason(op, inputs, attrs, reason, tmp_path: Path) -> None:
    net, x = conv_first(size=6, channels=8)
    net.opset = 18
    operands = [net.constant(f"/c{i}", np.array(values, np.int64)) for i, values in enumerate(inputs)]
    output = net.node(op, [x, *operands], "/crop", outputs=3 if op == "Split" else 1, **attrs)
    with pytest.raises(InputError, match=reason):
        api.load_network(net.save(output, tmp_path / "crop.onnx"))


def test_a_cast_to_the_maps_type_is_no_layer_and_to_another_is_refused(tmp_path: Path) -> None:
    net, output = cast_to_float()
    graph = api.load_network(net.save(output, tmp_path / "cast.onnx"))
    assert [layer.op.value for layer in graph.layers] == ["conv", "relu"]
    net, x = conv_first()
    output = net.node("Cast", [net.node("Cast", [x], "/half/Cast", to=10)], "/back/Cast", to=1)
    with pytest.raises(InputError, match=r"Cast \(1, first: /half/Cast: a cast to FLOAT16 \(the maps are FLOAT\)\)"):
        api.load_network(net.save(output, tmp_path / "half.onnx"))


def test_a_split_of_a_tensor_that_is_not_a_map_is_refused(tmp_path: Path) -> None:
    """Swin's dynamo export splits 1-D and 5-D tensors: one line naming the ops, not a crash."""
    net, x = conv_first()
    x = net.node("Reshape", [x, net.constant("/flat", np.array([-1], np.int64))], "/Reshape")
    output = net.node("Split", [x], "/Split", outputs=2, axis=0, num_outputs=2)
    net.opset = 18
    with pytest.raises(InputError, match=r"Reshape \(1, first: /Reshape: .*Split \(1, first: /Split: on 1-D tensors"):
        api.load_network(net.save(output, tmp_path / "split.onnx"))


def test_a_float16_model_is_estimated_but_not_checked_against_onnx_runtime(runner, tmp_path: Path) -> None:
    """``model.half()`` exported: the structure reads as in float32; the fp32 numerics check refuses it in one line."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT16, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 3, 4, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["y"], name="/relu/Relu")], "half", [x], [y])
    path = tmp_path / "half.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert runner.invoke(main, ["estimate", str(path)]).exit_code == 0
    result = runner.invoke(main, ["verify", str(path), "--runtime", "onnxruntime"])
    assert result.exit_code == 2
    assert "the model computes in FLOAT16; the ONNX Runtime check compares float32 models" in result.output
    assert "Traceback" not in result.output


def test_a_real_torchscript_export_of_shufflenet_reads_counts_and_runs(tmp_path: Path) -> None:
    """A narrow ShuffleNet v2 written by torch.onnx.export itself (tests/exports/README.md has how, and torch's
    counts: 8,834 parameters of which the exporter folds 344, 82,872 MACs)."""
    path = Path(__file__).parent / "exports" / "shufflenet-tiny-torchscript11.onnx"
    graph = api.load_network(path)
    ops = [layer.op.value for layer in graph.layers]
    assert (ops.count("slice"), ops.count("channel_shuffle")) == (2, 4)  # one stride-1 unit, four units
    assert graph.params == 8_834 - 344
    estimate = api.estimate(graph, api.load_hardware("paper-accelerator"), "paper")
    assert sum(cost.macs for cost in estimate.costs) == 82_872
    result = runtime_agreement(path)
    assert result.agrees, result.summary()


def test_a_real_export_with_computed_same_padding_reads_counts_and_runs() -> None:
    """timm's Conv2dSame exported by torch.onnx.export (tests/exports/README.md: torch counts 650 parameters, of
    which the exporter folds 32, and 68,256 MACs): every Pad's amounts are evaluated."""
    path = Path(__file__).parent / "exports" / "tf-same-tiny-torchscript17.onnx"
    graph = api.load_network(path)
    pads = [(p.attrs.top, p.attrs.bottom, p.attrs.left, p.attrs.right) for p in graph.layers if p.op.value == "pad"]
    assert pads == [(1, 1, 1, 1), (0, 1, 0, 1)]  # 31 rows at stride 2, then 16; the 1x1 conv's Pad is 0: no layer
    assert graph.params == 650 - 32
    estimate = api.estimate(graph, api.load_hardware("paper-accelerator"), "paper")
    assert sum(cost.macs for cost in estimate.costs) == 68_256
    result = runtime_agreement(path)
    assert result.agrees, result.summary()


def test_a_real_tf2onnx_export_of_a_keras_model_reads_counts_and_runs() -> None:
    """A Keras CNN exported by tf2onnx (tests/exports/README.md): NHWC input, the batch norm written as a Mul and
    an Add of per-channel constants (scale layers, their constants attributes: Keras counts 1,298 trainable
    parameters, 32 of them the batch norm's), ReLU6 as Clip, GAP then Squeeze, MatMul and Add."""
    path = Path(__file__).parent / "exports" / "keras-gap-tf2onnx13.onnx"
    graph = api.load_network(path)
    assert graph.input_shape == (32, 32, 3)
    assert [layer.op.value for layer in graph.layers] == [
        *("conv", "scale", "scale", "clip", "dwconv", "relu", "maxpool", "conv", "global_avg_pool", "dense"),
        "softmax",
    ]
    assert graph.params == 1_298 - 32
    estimate = api.estimate(graph, api.load_hardware("paper-accelerator"), "paper")
    # 16x16x16 outputs of 3x3x3, 16x16x16 of 3x3 depthwise, 8x8x24 of 16, 10 of 24
    assert sum(cost.macs for cost in estimate.costs) == 16 * 16 * 16 * 27 + 16 * 16 * 16 * 9 + 8 * 8 * 24 * 16 + 240
    result = runtime_agreement(path)
    assert result.agrees, result.summary()
