"""Random small networks and accelerators for the scheduler property tests, and one way to run a policy."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st

from hwsim.cost.inference import EXACT, graph_costs
from hwsim.model.expand import build_graph
from hwsim.model.graph import Graph
from hwsim.schedule import POLICIES, scheduled_costs
from hwsim.schedule.base import Schedule
from hwsim.schedule.validate import Violation, validate
from hwsim.spec.hardware import HardwareSpec, Precision
from hwsim.spec.network import NetworkSpec
from hwsim.spec.validate import validate as validate_spec
from hwsim.spec.yamlio import Document


def graph_from(spec: dict[str, Any]) -> Graph:
    doc = Document("<generated>", spec)
    return build_graph(validate_spec(NetworkSpec, spec, doc), doc)


def hardware(capacity: float, bandwidth: float = 1e9, matrix: float = 1e12, vector: float = 1e10) -> HardwareSpec:
    return HardwareSpec.model_validate(
        {
            "name": "generated",
            "memory": {"internal": {"capacity": capacity}, "external": {"bandwidth": bandwidth}},
            "compute": {"matrix": {"throughput": matrix}, "vector": {"throughput": vector}},
        }
    )


def run(
    graph: Graph, hw: HardwareSpec, policy: str, batch: int = 1, precision: Precision | None = None
) -> tuple[Schedule, list[Violation]]:
    """Schedule with ``policy`` and validate against the costs it scheduled."""
    costs = graph_costs(graph, hw, EXACT, batch, precision)
    steps = POLICIES[policy](graph, costs, hw)
    schedule = Schedule(policy, graph.name, hw.name, "exact", batch, (precision or hw.precision).value, tuple(steps))
    return schedule, validate(schedule, scheduled_costs(policy, costs, hw, steps), hw)


PIECES = ("conv", "gconv", "dwblock", "pool", "residual", "se", "pad", "softmax", "branch", "concat", "dense")
"""What a random network is made of: plain layers, and blocks whose maps have several readers."""
FAMILIES: dict[str, tuple[str, ...]] = {
    "chain": ("conv", "dwblock", "pool", "pad"),
    "residual": ("conv", "dwblock", "pool", "residual"),
    "branch": ("conv", "pool", "branch"),
    "concat": ("conv", "pool", "concat"),
    "dense": ("conv", "pool", "dense"),
}
"""Networks by the blocks they are made of: a chain, residual blocks (a skip added back), branches over
one map added up, branches concatenated (an inception module), dense blocks (each layer reads the
concat of every map before it)."""


def _conv(name: str, kernel: int, filters: int, inputs: list[str] | None = None, stride: int = 1) -> dict[str, Any]:
    layer: dict[str, Any] = {
        "op": "conv",
        "name": name,
        "kernel": kernel,
        "filters": filters,
        "stride": stride,
        "padding": "same",
        "bias": False,
    }
    if inputs is not None:
        layer["inputs"] = inputs
    return layer


ACTIVATIONS = [
    {"op": "relu"},
    {"op": "clip"},
    {"op": "leaky_relu", "alpha": 0.1},
    {"op": "sigmoid"},
    {"op": "hard_sigmoid"},
    {"op": "hard_swish"},
    {"op": "identity"},
    {"op": "tanh"},
    {"op": "mish"},
    {"op": "prelu"},
    {"op": "prelu", "shared": True},
]


@st.composite
def layer_specs(
    draw: st.DrawFn, index: int, channels: int, kinds: tuple[str, ...] = PIECES
) -> tuple[list[dict[str, Any]], int]:
    """One random piece of a network, of one of ``kinds``: a conv (maybe dilated, maybe with BN and an
    activation), a grouped conv (after a 1x1 conv to a width its groups divide), a depthwise block, a pool
    (maybe ceil_mode), a residual block, a squeeze-and-excitation block (a broadcast mul), a border (pad), a
    softmax over every pixel's channels, branches over one map added up or concatenated, or a dense block."""
    kind = draw(st.sampled_from(kinds))
    activation = draw(st.sampled_from(ACTIVATIONS))
    if kind == "conv":
        filters = draw(st.sampled_from([4, 8, 16]))
        kernel = draw(st.sampled_from([1, 3]))
        conv = _conv("conv", kernel, filters, stride=draw(st.sampled_from([1, 1, 2])))
        conv["dilation"] = draw(st.sampled_from([1, 1, 2])) if kernel > 1 else 1
        layers = [conv]
        if draw(st.booleans()):
            layers += [{"op": "batchnorm"}, activation]
        return layers, filters
    if kind == "gconv":  # groups of 2 to 16 filters: chunks of filters may hold several groups, or cross their edges
        groups = draw(st.sampled_from([2, 3, 6]))
        width = groups * draw(st.sampled_from([2, 4, 8]))
        filters = width * draw(st.sampled_from([1, 2]))
        return [_conv("expand", 1, width), {**_conv("gconv", 3, filters), "groups": groups}], filters
    if kind == "dwblock":
        return [
            {"op": "dwconv", "kernel": 3, "padding": "same", "bias": False},
            {"op": "batchnorm"},
            activation,
        ], channels
    if kind == "pool":
        op = draw(st.sampled_from(["maxpool", "avgpool"]))
        pool: dict[str, Any] = {"op": op, "size": 2, "padding": "same"}
        if draw(st.booleans()):  # PyTorch's ceil_mode: a last window past the padding on 3, 6, 12 rows; 1 poolable
            pool = {"op": op, "size": 3, "stride": 3, "padding": 1, "ceil_mode": True}
            if op == "avgpool":
                pool["count_include_pad"] = draw(st.booleans())
        return [pool], channels
    if kind == "se":
        skip, gate = f"skip{index}", f"gate{index}"
        return [
            {**activation, "name": skip},
            {"op": "global_avg_pool"},
            {"op": "conv", "kernel": 1, "filters": max(channels // 2, 1), "name": "reduce"},
            {"op": "relu"},
            {"op": "conv", "kernel": 1, "filters": channels, "name": "expand"},
            {"op": "hard_sigmoid", "name": gate},
            {"op": "mul", "inputs": draw(st.permutations([skip, gate])), "name": f"mul{index}"},
        ], channels
    if kind == "pad":
        pads = draw(st.sampled_from([1, [0, 1, 1, 0], [2, 1, 0, 2]]))
        return [{"op": "pad", "pads": pads, "mode": draw(st.sampled_from(["constant", "edge"]))}], channels
    if kind == "softmax":
        return [{"op": "softmax"}], channels
    if kind == "residual":
        skip = f"skip{index}"
        return [
            {**activation, "name": skip},
            _conv("conv", 3, channels),
            {"op": "batchnorm"},
            {"op": "add", "inputs": ["batchnorm", skip], "name": f"add{index}"},
        ], channels
    fork = f"fork{index}"
    layers = [{**activation, "name": fork}]
    if kind == "dense":  # each layer reads the concat of the block's input and every layer before it
        growth, read, width = draw(st.sampled_from([2, 4, 8])), fork, channels
        for k in range(draw(st.integers(2, 3))):
            layers += [
                _conv(f"grow{k}", 3, growth, [read]),
                {"op": "relu", "name": f"grow{k}_relu"},
                {"op": "concat", "inputs": [read, f"grow{k}_relu"], "name": f"cat{k}"},
            ]
            read, width = f"cat{k}", width + growth
        return layers, width
    # branches over one map: 1x1; 1x1 then 3x3; maybe a 3x3 max pool then 1x1; added up or concatenated
    widths = [draw(st.sampled_from([2, 4, 8])) for _ in range(3)]
    if kind == "branch":
        widths = [widths[0]] * 3
    ends = ["b1", "b2"]
    layers += [
        _conv("b1", 1, widths[0], [fork]),
        _conv("b2_reduce", 1, widths[1], [fork]),
        {"op": "relu", "name": "b2_reduce_relu"},
        _conv("b2", 3, widths[1], ["b2_reduce_relu"]),
    ]
    if draw(st.booleans()):
        layers += [
            {"op": "maxpool", "size": 3, "stride": 1, "padding": "same", "inputs": [fork], "name": "b3_pool"},
            _conv("b3", 1, widths[2], ["b3_pool"]),
        ]
        ends.append("b3")
    merge = "add" if kind == "branch" else "concat"
    layers.append({"op": merge, "inputs": ends, "name": merge})
    return layers, widths[0] if kind == "branch" else sum(widths[: len(ends)])


@st.composite
def networks(draw: st.DrawFn, kinds: tuple[str, ...] = PIECES, having: str | None = None) -> Graph:
    """A random small network of 1 to 5 pieces of ``kinds`` (one of them ``having``, if given), maybe
    ending in a classifier."""
    size = draw(st.sampled_from([8, 12, 16, 24]))
    channels = image_channels = draw(st.sampled_from([1, 3, 4]))
    layers: list[dict[str, Any]] = []
    count = draw(st.integers(1, 5))
    special = draw(st.integers(0, count - 1)) if having else -1
    for i in range(count):
        piece, channels = draw(layer_specs(i, channels, (having,) if i == special else kinds))  # type: ignore[arg-type]
        layers += _unique(piece, i)
    if draw(st.booleans()):
        layers += [
            {"op": "global_avg_pool"},
            {"op": "dense", "units": draw(st.sampled_from([2, 10]))},
            {"op": "softmax"},
        ]
    return graph_from({"name": "generated", "input": [size, size, image_channels], "layers": layers})


def _unique(piece: list[dict[str, Any]], i: int) -> list[dict[str, Any]]:
    """Name every layer of a piece apart from other pieces'; references inside the piece follow."""
    names = {layer.get("name", layer["op"]): f"{layer.get('name', layer['op'])}_{i}" for layer in piece}
    renamed = []
    for layer in piece:
        layer = {**layer, "name": names[layer.get("name", layer["op"])]}
        if "inputs" in layer:
            layer["inputs"] = [names.get(n, n) for n in layer["inputs"]]
        renamed.append(layer)
    return renamed


ENERGY_METRICS = frozenset(
    {
        "energy_j",
        "energy_compute_j",
        "energy_internal_j",
        "energy_external_j",
        "energy_static_j",
        "energy_per_image_j",
        "edp_js",
    }
)
"""Sweep metrics the vectorised paper sweep sums in another order than the event walk: equal to rounding."""


def assert_sweep_metric(metric: str, got: float, expected: float, context: object) -> None:
    """Times, bytes and rates equal ``estimate()`` exactly; energies to 1e-12 (the same terms, added in
    another order)."""
    if metric in ENERGY_METRICS:
        assert got == pytest.approx(expected, rel=1e-12), (metric, context)
    else:
        assert got == expected, (metric, context)
