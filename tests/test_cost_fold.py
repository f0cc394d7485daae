"""Batch norm folding as a cost transform: what disappears, and that every remaining layer still reads a layer."""

from __future__ import annotations

from hwsim import api
from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import graph_costs
from hwsim.model.expand import build_graph
from hwsim.model.graph import INPUT
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


def test_mobilenet_v2_schedules_with_its_batch_norms_folded() -> None:
    """Every inverted residual ends in conv, batch norm; the next block's 1x1 conv reads that batch norm."""
    estimate = api.estimate(api.load_network("mobilenet-v2"), api.load_hardware("paper-accelerator"), "optimized")
    assert estimate.schedule.total_s > 0 and estimate.summary()["efficiency"] <= 1.0
