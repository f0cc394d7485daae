"""slice and channel_shuffle (ShuffleNet's split and shuffle): forward against loops, backward against central
differences, the YAML entries, the cost model against execution, every policy against the validator, and the
export to ONNX against ONNX Runtime."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from reference_helpers import check_gradients, make_layer, random_inputs, run
from schedule_helpers import graph_from, hardware
from schedule_helpers import run as schedule

from hwsim.errors import InputError
from hwsim.interchange.export import export_onnx
from hwsim.interchange.runtime import agreement, varied_weights
from hwsim.ops import ChannelShuffleAttrs, Op, SliceAttrs
from hwsim.schedule.tiling import CapacityError
from hwsim.studies.verify import verify


@pytest.mark.parametrize("start, end", [(0, 3), (2, 6), (5, 6)])
def test_slice_keeps_its_channels(start: int, end: int) -> None:
    layer = make_layer(Op.SLICE, ((3, 4, 6),), SliceAttrs(start, end))
    assert layer.output_shape == (3, 4, end - start)
    (x,) = random_inputs(layer, 2)
    _, y = run(layer, [x], {}, training=False)
    for n, i, j, c in np.ndindex(y.shape):
        assert y[n, i, j, c] == x[n, i, j, start + c]
    check_gradients(layer)


@pytest.mark.parametrize("channels, groups", [(6, 2), (6, 3), (8, 4), (5, 1)])
def test_channel_shuffle_interleaves_its_groups_as_pytorch_does(channels: int, groups: int) -> None:
    layer = make_layer(Op.CHANNEL_SHUFFLE, ((2, 3, channels),), ChannelShuffleAttrs(groups))
    (x,) = random_inputs(layer, 2)
    _, y = run(layer, [x], {}, training=False)
    per_group = channels // groups
    for i in range(groups):  # torch: view(N, g, C/g, H, W).transpose(1, 2).view(N, C, H, W)
        for j in range(per_group):
            np.testing.assert_array_equal(y[..., j * groups + i], x[..., i * per_group + j])
    check_gradients(layer)


def _network(layers: list[dict[str, Any]], channels: int = 8, size: int = 6) -> dict[str, Any]:
    return {"name": "shuffle", "input": [size, size, channels], "layers": layers}


def shufflenet_unit(channels: int = 8) -> list[dict[str, Any]]:
    """ShuffleNet v2's unit at stride 1: half the channels pass, the other half go through 1x1, 3x3 depthwise
    and 1x1; the halves concatenated and shuffled."""
    half = channels // 2
    return [
        {"op": "conv", "kernel": 1, "filters": channels, "name": "stem"},
        {"op": "slice", "start": 0, "end": half, "name": "passed", "inputs": ["stem"]},
        {"op": "slice", "start": half, "end": channels, "name": "branch", "inputs": ["stem"]},
        {"op": "conv", "kernel": 1, "filters": half, "name": "pw1"},
        {"op": "dwconv", "kernel": 3, "padding": 1, "name": "dw"},
        {"op": "conv", "kernel": 1, "filters": half, "name": "pw2"},
        {"op": "concat", "inputs": ["passed", "pw2"], "name": "joined"},
        {"op": "channel_shuffle", "groups": 2, "name": "shuffled"},
    ]


@pytest.mark.parametrize(
    "layer, message",
    [
        ({"op": "slice", "start": 2, "end": 9}, "slice of channels 2 to 9 from a map of 8 channels"),
        ({"op": "slice", "start": 4, "end": 4}, "end 4 must be after start 4"),
        ({"op": "channel_shuffle", "groups": 3}, "channel_shuffle of 8 channels into 3 groups"),
    ],
)
def test_bad_entries_are_one_line_errors(layer: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        graph_from(_network([layer]))


def test_the_cost_model_counts_what_the_reference_executes() -> None:
    graph = graph_from(_network([*shufflenet_unit(), {"op": "global_avg_pool"}, {"op": "softmax"}]))
    checks = verify(graph, batch=2).checks
    assert {c.op for c in checks} >= {Op.SLICE, Op.CHANNEL_SHUFFLE}
    assert all(c.modelled == c.executed for c in checks)


@given(st.sampled_from([2_000, 8_000, 1e6]), st.sampled_from([1, 2]), st.sampled_from([4, 8]))
def test_every_policy_schedules_them_within_the_validator(capacity: float, batch: int, channels: int) -> None:
    graph = graph_from(_network(shufflenet_unit(channels), channels))
    try:
        runs = {policy: schedule(graph, hardware(capacity), policy, batch) for policy in ("strict", "optimized")}
    except CapacityError:
        assume(False)
        raise
    assert runs["strict"][1] == [] and runs["optimized"][1] == []


def test_the_export_runs_in_onnx_runtime_as_in_the_reference() -> None:
    graph = graph_from(_network(shufflenet_unit()))
    params, state = varied_weights(graph)
    result = agreement(graph, params, state, export_onnx(graph, params, state), batch=2)
    assert result.agrees, result.summary()
