"""Batch norm folding as a cost transform: what disappears, and that every remaining layer still reads a layer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim import api
from hwsim.cost.fold import _fold, fold_batchnorm
from hwsim.cost.inference import graph_costs
from hwsim.model.expand import build_graph
from hwsim.model.graph import INPUT
from hwsim.ops import Op
from hwsim.spec.hardware import HardwareSpec
from hwsim.spec.network import NetworkSpec
from hwsim.spec.yamlio import Document

BACK_TO_BACK = {
    "name": "back-to-back",
    "input": [8, 8, 4],
    "layers": [
        {"op": "conv", "kernel": 3, "filters": 8, "bias": False, "name": "a"},
        {"op": "batchnorm", "name": "a_bn"},
        {"op": "conv", "kernel": 1, "filters": 8, "bias": False, "name": "b"},  # reads a folded batch norm
        {"op": "batchnorm", "name": "b_bn"},
        {"op": "relu", "name": "out"},
    ],
}


def test_a_conv_that_folds_a_batch_norm_and_reads_a_folded_one_is_renamed_too() -> None:
    graph = build_graph(NetworkSpec.model_validate(BACK_TO_BACK), Document("<test>", BACK_TO_BACK))
    hardware = api.load_hardware("paper-accelerator")
    costs, folded = fold_batchnorm(graph_costs(graph, hardware), hardware)
    assert folded == {"a": "a_bn", "b": "b_bn"}
    by_name = {c.name: c for c in costs}
    assert list(by_name) == ["a", "b", "out"]
    assert by_name["b"].layer.inputs == ("a",) and by_name["out"].layer.inputs == ("b",)
    assert all(name in by_name or name == INPUT for c in costs for name in c.layer.inputs)


@pytest.mark.slow
def test_mobilenet_v2_schedules_with_its_batch_norms_folded() -> None:
    """Every inverted residual ends in conv, batch norm; the next block's 1x1 conv reads that batch norm."""
    estimate = api.estimate(api.load_network("mobilenet-v2"), api.load_hardware("paper-accelerator"), "optimized")
    assert estimate.schedule.total_s > 0 and estimate.summary()["efficiency"] <= 1.0


@given(
    st.sampled_from(["hairnet", "mobilenet-v1", "resnet18"]),
    st.sampled_from(["paper-accelerator", "edge-npu", "eyeriss-v1"]),
    st.sampled_from([(), ("a_bn",), ("stem.bn",)]),
)
def test_a_fold_given_again_is_the_fold_made_afresh_and_the_callers_to_change(
    network: str, profile: str, keep: tuple[str, ...]
) -> None:
    hardware = api.load_hardware(profile)
    graph = api.load_network(network)
    costs = graph_costs(graph, hardware)
    computed = [c.name for c in costs if c.layer.op.value == "batchnorm"][:1]
    for kept in (keep, tuple(computed)):
        first = fold_batchnorm(costs, hardware, kept)
        first[1].clear()  # a caller may change its dict
        again = fold_batchnorm(graph_costs(graph, hardware), hardware, kept)  # equal costs, not the same objects
        assert again == _fold(costs, hardware, kept) and again[1]


def test_a_fold_on_hardware_that_runs_ops_elsewhere_is_made_again() -> None:
    """Which unit runs each op is what a fold reads of the hardware: a profile that moves convs is folded anew."""
    graph = build_graph(NetworkSpec.model_validate(BACK_TO_BACK), Document("<test>", BACK_TO_BACK))
    hardware = api.load_hardware("paper-accelerator")
    costs = graph_costs(graph, hardware)
    units = {c.name: c.unit for c in fold_batchnorm(costs, hardware)[0]}
    data = hardware.model_dump()
    other = next(name for name in data["compute"] if name != hardware.unit_for(Op.CONV))
    data["compute"][other]["ops"] = ["conv"]
    moved = HardwareSpec.model_validate(data)
    moved_units = {c.name: c.unit for c in fold_batchnorm(costs, moved)[0]}
    assert moved.unit_for(Op.CONV) != hardware.unit_for(Op.CONV)
    assert moved_units["a"] == moved.unit_for(Op.CONV) != units["a"]
