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
    return schedule, validate(schedule, scheduled_costs(policy, costs, hw), hw)


ACTIVATIONS = [
    {"op": "relu"},
    {"op": "clip"},
    {"op": "leaky_relu", "alpha": 0.1},
    {"op": "sigmoid"},
    {"op": "hard_sigmoid"},
    {"op": "hard_swish"},
    {"op": "identity"},
]


@st.composite
def layer_specs(draw: st.DrawFn, index: int, channels: int) -> tuple[list[dict[str, Any]], int]:
    """One random piece of a network: a conv (maybe dilated, maybe with BN and an activation), a pool
    (maybe ceil_mode), a residual block, a squeeze-and-excitation block (a broadcast mul), a border
    (pad) or a softmax over every pixel's channels."""
    kind = draw(st.sampled_from(["conv", "dwblock", "pool", "residual", "se", "pad", "softmax"]))
    activation = draw(st.sampled_from(ACTIVATIONS))
    if kind == "conv":
        filters = draw(st.sampled_from([4, 8, 16]))
        kernel = draw(st.sampled_from([1, 3]))
        layers = [
            {
                "op": "conv",
                "kernel": kernel,
                "filters": filters,
                "stride": draw(st.sampled_from([1, 1, 2])),
                "padding": "same",
                "dilation": draw(st.sampled_from([1, 1, 2])) if kernel > 1 else 1,
                "bias": False,
            }
        ]
        if draw(st.booleans()):
            layers += [{"op": "batchnorm"}, activation]
        return layers, filters
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
    skip = f"skip{index}"
    return [
        {**activation, "name": skip},
        {"op": "conv", "kernel": 3, "filters": channels, "padding": "same", "bias": False},
        {"op": "batchnorm"},
        {"op": "add", "inputs": ["batchnorm", skip], "name": f"add{index}"},
    ], channels


@st.composite
def networks(draw: st.DrawFn) -> Graph:
    size = draw(st.sampled_from([8, 12, 16, 24]))
    channels = image_channels = draw(st.sampled_from([1, 3, 4]))
    layers: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 5))):
        piece, channels = draw(layer_specs(i, channels))
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
