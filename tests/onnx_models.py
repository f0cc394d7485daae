"""Torchvision-like ONNX models built with onnx.helper, named as PyTorch's exporter names nodes (no downloads).

Node names follow ``torch.onnx.export``: ``/<module path>/<OpType>``, each module's component its full dotted
name (``/layer1/layer1.0/conv1/Conv``), an op used twice in a module numbered (``relu_1``). Initializers are
named after the module path (``layer1.layer1.0.conv1.weight``). ``Net`` builds any of them; the functions below
build the architectures the tests check against published counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Net:
    """A graph under construction. Weights are drawn from ``seed`` (or zeros with ``zeros``: fast, for counting)."""

    def __init__(self, input_shape: Sequence[int | str], opset: int = 17, seed: int = 0, zeros: bool = False) -> None:
        self.input_shape = list(input_shape)
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.zeros = zeros
        self.outputs: dict[str, int] = {}

    def weight(self, name: str, shape: Sequence[int], scale: float = 1.0, offset: float = 0.0) -> str:
        if self.zeros:
            values = np.zeros(shape, np.float32)
        else:
            values = (offset + scale * self.rng.standard_normal(shape)).astype(np.float32)
        self.initializers.append(numpy_helper.from_array(values, name))
        return name

    def constant(self, name: str, values: np.ndarray) -> str:
        """A Constant node, as PyTorch writes Clip's bounds and Reshape's shapes."""
        self.nodes.append(helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(values)))
        return name

    def node(self, op: str, inputs: Sequence[str], name: str, outputs: int = 1, **attrs: object) -> str:
        out = [f"{name}_output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), out, name=name, **attrs))
        return out[0]

    def conv(
        self,
        x: str,
        module: str,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        pad: int | Sequence[int] = 0,
        groups: int = 1,
        bias: bool = False,
        dilation: int = 1,
    ) -> str:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        param = module.strip("/").replace("/", ".")
        fan_in = cin // groups * kh * kw
        inputs = [x, self.weight(f"{param}.weight", (cout, cin // groups, kh, kw), np.sqrt(2 / fan_in))]
        if bias:
            inputs.append(self.weight(f"{param}.bias", (cout,), 0.1))
        pads = [pad] * 4 if isinstance(pad, int) else list(pad)
        return self.node(
            "Conv",
            inputs,
            f"{module}/Conv",
            kernel_shape=[kh, kw],
            strides=[stride, stride],
            pads=pads,
            group=groups,
            dilations=[dilation, dilation],
        )

    def bn(self, x: str, module: str, channels: int, eps: float = 1e-5) -> str:
        param = module.strip("/").replace("/", ".")
        inputs = [
            x,
            self.weight(f"{param}.weight", (channels,), 0.1, 1.0),
            self.weight(f"{param}.bias", (channels,), 0.1),
            self.weight(f"{param}.running_mean", (channels,), 0.1),
            self.weight(f"{param}.running_var", (channels,), 0.1, 1.0),
        ]
        if not self.zeros:  # a variance must be positive
            var = self.initializers[-1]
            values = np.abs(numpy_helper.to_array(var)) + 0.5
            self.initializers[-1] = numpy_helper.from_array(values.astype(np.float32), var.name)
        return self.node("BatchNormalization", inputs, f"{module}/BatchNormalization", epsilon=eps, momentum=0.9)

    def relu6(self, x: str, module: str) -> str:
        low = self.constant(f"{module}/Constant_output_0", np.array(0.0, np.float32))
        high = self.constant(f"{module}/Constant_1_output_0", np.array(6.0, np.float32))
        return self.node("Clip", [x, low, high], f"{module}/Clip")

    def gemm(self, x: str, module: str, cin: int, cout: int) -> str:
        param = module.strip("/").replace("/", ".")
        w = self.weight(f"{param}.weight", (cout, cin), np.sqrt(1 / cin))
        b = self.weight(f"{param}.bias", (cout,), 0.1)
        return self.node("Gemm", [x, w, b], f"{module}/Gemm", transB=1)

    def model(
        self, output: str, name: str = "main_graph", domains: Sequence[str] = (), value_info: bool = False
    ) -> onnx.ModelProto:
        """The model, its output's shape filled in by ONNX shape inference (as exporters write it), and with
        ``value_info`` every tensor's (as the dynamo exporter and onnxsim write them).
        ``domains``: custom op domains the nodes use, imported at version 1."""
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, self.input_shape)
        y = helper.make_tensor_value_info(output, TensorProto.FLOAT, None)
        graph = helper.make_graph(self.nodes, name, [x], [y], self.initializers)
        opsets = [helper.make_opsetid("", self.opset), *(helper.make_opsetid(d, 1) for d in domains)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="tests")
        model.ir_version = 8
        # inferred without the weights' data (their dims as inputs), which would be copied twice over
        light = helper.make_model(
            helper.make_graph(
                self.nodes,
                name,
                [x, *(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in self.initializers)],
                [y],
            ),
            opset_imports=opsets,
        )
        light.ir_version = 8
        inferred = onnx.shape_inference.infer_shapes(light)
        model.graph.output[0].CopyFrom(inferred.graph.output[0])
        if value_info:
            model.graph.value_info.extend(inferred.graph.value_info)
        return model

    def save(self, output: str, path: Path) -> Path:
        onnx.save(self.model(output), str(path))
        return path


# ---- ResNet-18 (torchvision.models.resnet18) --------------------------------------------------------------


def resnet18(zeros: bool = True, size: int = 224, folded: bool = False, value_info: bool = False) -> onnx.ModelProto:
    """torchvision's ResNet-18 with batch norm kept (11,689,512 parameters, 1,814,073,344 MACs at 224x224), or
    ``folded`` into the convolutions as torch.onnx.export folds it in eval mode: each conv gains a bias.
    ``value_info``: every tensor's shape written in the model."""
    net = Net(["batch_size", 3, size, size], zeros=zeros)

    def conv_bn(x: str, module: str, bn: str, cin: int, cout: int, kernel: int, stride: int = 1, pad: int = 0) -> str:
        y = net.conv(x, module, cin, cout, kernel, stride, pad, bias=folded)
        return y if folded else net.bn(y, bn, cout)

    x = conv_bn("input", "/conv1", "/bn1", 3, 64, 7, stride=2, pad=3)
    x = net.node("Relu", [x], "/relu/Relu")
    x = net.node("MaxPool", [x], "/maxpool/MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for index in range(2):
            stride = 2 if stage > 1 and index == 0 else 1
            m = f"/layer{stage}/layer{stage}.{index}"
            y = conv_bn(x, f"{m}/conv1", f"{m}/bn1", cin, cout, 3, stride=stride, pad=1)
            y = net.node("Relu", [y], f"{m}/relu/Relu")
            y = conv_bn(y, f"{m}/conv2", f"{m}/bn2", cout, cout, 3, pad=1)
            skip = x
            if stride != 1 or cin != cout:
                down = f"{m}/downsample/downsample"
                skip = conv_bn(x, f"{down}.0", f"{down}.1", cin, cout, 1, stride=stride)
            x = net.node("Relu", [net.node("Add", [y, skip], f"{m}/Add")], f"{m}/relu_1/Relu")
            cin = cout
    x = net.node("GlobalAveragePool", [x], "/avgpool/GlobalAveragePool")
    x = net.node("Flatten", [x], "/Flatten", axis=1)
    return net.model(net.gemm(x, "/fc", 512, 1000), value_info=value_info)


# ---- MobileNet v2 (torchvision.models.mobilenet_v2) -------------------------------------------------------


def mobilenet_v2(zeros: bool = True, size: int = 224) -> onnx.ModelProto:
    """torchvision's MobileNet v2 with ReLU6 as Clip(0, 6) (3,504,872 parameters, 300,774,272 MACs at 224x224)."""
    net = Net(["batch_size", 3, size, size], zeros=zeros)

    def conv_bn_act(x: str, module: str, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> str:
        y = net.conv(x, f"{module}/{module.split('/')[-1]}.0", cin, cout, kernel, stride, kernel // 2, groups)
        y = net.bn(y, f"{module}/{module.split('/')[-1]}.1", cout)
        return net.relu6(y, f"{module}/{module.split('/')[-1]}.2")

    x = conv_bn_act("input", "/features/features.0", 3, 32, 3, stride=2)
    cin, index = 32, 1
    for t, c, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        for repeat in range(n):
            stride = s if repeat == 0 else 1
            m = f"/features/features.{index}/conv"
            hidden = cin * t
            y, part = x, 0
            if t != 1:
                y = conv_bn_act(y, f"{m}/conv.{part}", cin, hidden, 1)
                part += 1
            y = conv_bn_act(y, f"{m}/conv.{part}", hidden, hidden, 3, stride, groups=hidden)
            y = net.conv(y, f"{m}/conv.{part + 1}", hidden, c, 1)
            y = net.bn(y, f"{m}/conv.{part + 2}", c)
            x = net.node("Add", [x, y], f"/features/features.{index}/Add") if stride == 1 and cin == c else y
            cin, index = c, index + 1
    x = conv_bn_act(x, "/features/features.18", 320, 1280, 1)
    x = net.node("GlobalAveragePool", [x], "/GlobalAveragePool")
    x = net.node("Flatten", [x], "/Flatten", axis=1)
    ratio = net.constant("/classifier/classifier.0/Constant_output_0", np.array(0.2, np.float32))
    x = net.node("Dropout", [x, ratio], "/classifier/classifier.0/Dropout")
    return net.model(net.gemm(x, "/classifier/classifier.1", 1280, 1000))


# ---- a squeeze-and-excitation block with hard-swish (MobileNet v3's bneck) -----------------------------


def se_hardswish(zeros: bool = False, size: int = 28) -> onnx.ModelProto:
    """One MobileNet v3 bottleneck: expand 1x1 + hard-swish, 5x5 depthwise + hard-swish, squeeze-and-excitation
    (average, 1x1 down + ReLU, 1x1 up + hard-sigmoid, multiply), project 1x1; the input added back."""
    net = Net(["batch_size", 24, size, size], zeros=zeros)
    m = "/features/features.4/block"
    x = net.bn(net.conv("input", f"{m}/block.0/block.0.0", 24, 72, 1), f"{m}/block.0/block.0.1", 72)
    x = net.node("HardSwish", [x], f"{m}/block.0/block.0.2/HardSwish")
    x = net.conv(x, f"{m}/block.1/block.1.0", 72, 72, 5, pad=2, groups=72)
    x = net.node("HardSwish", [net.bn(x, f"{m}/block.1/block.1.1", 72)], f"{m}/block.1/block.1.2/HardSwish")
    s = net.node("GlobalAveragePool", [x], f"{m}/block.2/avgpool/GlobalAveragePool")
    s = net.node("Relu", [net.conv(s, f"{m}/block.2/fc1", 72, 24, 1, bias=True)], f"{m}/block.2/activation/Relu")
    s = net.conv(s, f"{m}/block.2/fc2", 24, 72, 1, bias=True)
    s = net.node("HardSigmoid", [s], f"{m}/block.2/scale_activation/HardSigmoid", alpha=1 / 6, beta=0.5)
    x = net.node("Mul", [s, x], f"{m}/block.2/Mul")
    x = net.bn(net.conv(x, f"{m}/block.3/block.3.0", 72, 24, 1), f"{m}/block.3/block.3.1", 24)
    return net.model(net.node("Add", [x, "input"], "/features/features.4/Add"))


# ---- GoogLeNet's inception modules 3a and 3b, then its ceil-mode pool ------------------------------------


def inception(zeros: bool = True, size: int = 28, ceil_pool: bool = True) -> onnx.ModelProto:
    """Inception 3a and 3b as the paper draws them (convolutions with bias and ReLU, no batch norm) on
    28x28x192, their 3x3 pools in ceil mode as torchvision's GoogLeNet writes every pool; then
    torchvision's maxpool3 (3x3, stride 2, ceil mode: 28 -> 14, where floor would give 13)."""
    net = Net(["batch_size", 192, size, size], zeros=zeros)
    x, cin = "input", 192
    for module, (c1, r3, c3, r5, c5, proj) in (
        ("inception3a", (64, 96, 128, 16, 32, 32)),
        ("inception3b", (128, 128, 192, 32, 96, 64)),
    ):
        m = f"/{module}"

        def conv_relu(y: str, branch: str, ci: int, co: int, kernel: int, m: str = m) -> str:
            out = net.conv(y, f"{m}/{branch}", ci, co, kernel, pad=kernel // 2, bias=True)
            return net.node("Relu", [out], f"{m}/{branch}/Relu")

        b1 = conv_relu(x, "branch1", cin, c1, 1)
        b2 = conv_relu(conv_relu(x, "branch2/branch2.0", cin, r3, 1), "branch2/branch2.1", r3, c3, 3)
        b3 = conv_relu(conv_relu(x, "branch3/branch3.0", cin, r5, 1), "branch3/branch3.1", r5, c5, 5)
        pool = net.node(
            "MaxPool",
            [x],
            f"{m}/branch4/branch4.0/MaxPool",
            kernel_shape=[3, 3],
            strides=[1, 1],
            pads=[1, 1, 1, 1],
            ceil_mode=1,
        )
        b4 = conv_relu(pool, "branch4/branch4.1", cin, proj, 1)
        x = net.node("Concat", [b1, b2, b3, b4], f"{m}/Concat", axis=1)
        cin = c1 + c3 + c5 + proj
    if ceil_pool:
        x = net.node("MaxPool", [x], "/maxpool3/MaxPool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    return net.model(x)


# ---- DenseNet-121 (torchvision.models.densenet121) --------------------------------------------------------


def densenet121(zeros: bool = True, size: int = 224) -> onnx.ModelProto:
    """torchvision's DenseNet-121: dense blocks of 6, 12, 24, 16 layers (growth 32, bottleneck 4x), each layer
    reading the concatenation of every map before it in its block (7,978,856 parameters)."""
    net = Net(["batch_size", 3, size, size], zeros=zeros)
    x = net.conv("input", "/features/conv0", 3, 64, 7, stride=2, pad=3)
    x = net.node("Relu", [net.bn(x, "/features/norm0", 64)], "/features/relu0/Relu")
    x = net.node("MaxPool", [x], "/features/pool0/MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    channels = 64
    for block, layers in enumerate((6, 12, 24, 16), start=1):
        features = [x]
        for layer in range(1, layers + 1):
            m = f"/features/denseblock{block}/denselayer{layer}"
            cin = channels + (layer - 1) * 32
            y = net.node("Concat", features, f"{m}/Concat", axis=1) if len(features) > 1 else features[0]
            y = net.node("Relu", [net.bn(y, f"{m}/norm1", cin)], f"{m}/relu1/Relu")
            y = net.conv(y, f"{m}/conv1", cin, 128, 1)
            y = net.node("Relu", [net.bn(y, f"{m}/norm2", 128)], f"{m}/relu2/Relu")
            features.append(net.conv(y, f"{m}/conv2", 128, 32, 3, pad=1))
        x = net.node("Concat", features, f"/features/denseblock{block}/Concat", axis=1)
        channels += layers * 32
        if block < 4:
            m = f"/features/transition{block}"
            x = net.node("Relu", [net.bn(x, f"{m}/norm", channels)], f"{m}/relu/Relu")
            x = net.conv(x, f"{m}/conv", channels, channels // 2, 1)
            x = net.node("AveragePool", [x], f"{m}/pool/AveragePool", kernel_shape=[2, 2], strides=[2, 2])
            channels //= 2
    x = net.node("Relu", [net.bn(x, "/features/norm5", channels)], "/Relu")
    x = net.node("GlobalAveragePool", [x], "/GlobalAveragePool")
    x = net.node("Flatten", [x], "/Flatten", axis=1)
    return net.model(net.gemm(x, "/classifier", channels, 1000))
