"""Who reads a map: the graph answers once, and every scheduler, fold and gradient count asks it."""

from __future__ import annotations

import pytest
from schedule_helpers import graph_from

from hwsim.model.graph import INPUT
from hwsim.studies.verify import verify

DOUBLED = {
    "name": "doubled",
    "input": [4, 4, 2],
    "layers": [
        {"op": "conv", "kernel": 3, "filters": 3, "name": "c"},
        {"op": "relu", "name": "r"},
        {"op": "add", "inputs": ["r", "r"], "name": "twice"},
        {"op": "add", "inputs": ["twice", "c"], "name": "skip"},
        {"op": "global_avg_pool", "inputs": ["c"], "name": "unused"},
        {"op": "global_avg_pool", "inputs": ["skip"], "name": "gap"},
        {"op": "softmax"},
    ],
}


def test_consumers_are_the_reading_layers_in_order_each_once() -> None:
    graph = graph_from(DOUBLED)
    names = {t: [layer.name for layer in graph.consumers(t)] for t in (INPUT, "c", "r", "twice", "unused")}
    assert names == {INPUT: ["c"], "c": ["r", "skip", "unused"], "r": ["twice"], "twice": ["skip"], "unused": []}


def test_a_map_read_twice_by_one_layer_sums_two_gradients_as_the_reference_executes() -> None:
    result = verify(graph_from(DOUBLED), batch=2)
    assert result.differences == ()
    relu_backward = next(c for c in result.checks if c.layer == "r" and c.pass_.value == "backward")
    # its own 2 ops per element, and 1 to add the second gradient
    assert relu_backward.executed == (2 + 1) * 4 * 4 * 3 * 2


def test_a_network_up_to_a_layer_keeps_that_layer_and_what_it_reads_in_order() -> None:
    graph = graph_from(DOUBLED)
    assert [layer.name for layer in graph.up_to("skip").layers] == ["c", "r", "twice", "skip"]
    assert [layer.name for layer in graph.up_to("unused").layers] == ["c", "unused"]
    # a layer nothing after it reads is not needed for the output either
    assert [layer.name for layer in graph.up_to(graph.output.name).layers] == [
        layer.name for layer in graph.layers if layer.name != "unused"
    ]
    with pytest.raises(KeyError):
        graph.up_to("nowhere")
