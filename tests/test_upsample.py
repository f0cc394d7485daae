"""upsample, the op added through the trait table alone (nearest), then bilinear: kernel, counts, scheduling."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reference_helpers import check_gradients, make_layer, random_inputs, run
from schedule_helpers import graph_from, hardware, layer_specs
from schedule_helpers import run as schedule

from hwsim.cli import main
from hwsim.cost.training import pass_ops
from hwsim.errors import InputError
from hwsim.model.execution import Pass
from hwsim.model.expand import load_network
from hwsim.model.regions import input_regions
from hwsim.ops import Op, UpsampleAttrs
from hwsim.schedule.base import CapacityError
from hwsim.schedule.validate import Rule
from hwsim.studies.verify import verify

NETWORK = """
name: upsampled
input: [6, 4, 2]
layers:
  - {op: conv, kernel: 3, filters: 3, stride: 2, name: down}
  - {op: relu}
  - {op: upsample, name: up}
  - {op: upsample, factor: 3, inputs: [down], name: up3}
  - {op: avgpool, size: [4, 3], stride: 1, name: pool}
  - {op: concat, inputs: [up, pool]}
  - {op: conv, kernel: 3, filters: 4}
  - {op: global_avg_pool}
  - {op: softmax}
"""


def naive_upsample(x: np.ndarray, factor: tuple[int, int]) -> np.ndarray:
    n, h, w, c = x.shape
    fh, fw = factor
    y = np.zeros((n, h * fh, w * fw, c))
    for b, i, j, k in np.ndindex(y.shape):
        y[b, i, j, k] = x[b, i // fh, j // fw, k]
    return y


@pytest.mark.parametrize(
    ("shape", "factor"), [((3, 2, 2), (2, 2)), ((1, 4, 3), (3, 3)), ((2, 2, 1), (1, 1)), ((2, 3, 2), (1, 2))]
)
def test_forward_repeats_each_pixel_and_backward_matches_central_differences(shape, factor) -> None:
    layer = make_layer(Op.UPSAMPLE, (shape,), UpsampleAttrs(factor))
    assert layer.output_shape == (shape[0] * factor[0], shape[1] * factor[1], shape[2])
    x = random_inputs(layer, 2)
    _, y = run(layer, x, {}, training=False)
    np.testing.assert_array_equal(y, naive_upsample(x[0], factor))
    check_gradients(layer)


def naive_bilinear(x: np.ndarray, factor: tuple[int, int], align_corners: bool) -> np.ndarray:
    """PyTorch's upsample_bilinear2d, pixel by pixel: the source coordinate (half-pixel centres, clamped at 0,
    or corners aligned), the two neighbours (the second clamped at the edge) and their weights."""
    n, h, w, c = x.shape
    ho, wo = h * factor[0], w * factor[1]

    def source(o: int, size: int, out: int) -> tuple[int, int, float]:
        if align_corners:
            real = o * (size - 1) / (out - 1) if out > 1 else 0.0
        else:
            real = max(size / out * (o + 0.5) - 0.5, 0.0)
        first = int(real)
        return first, min(first + 1, size - 1), real - first

    y = np.zeros((n, ho, wo, c))
    for i, j in np.ndindex(ho, wo):
        r0, r1, tr = source(i, h, ho)
        c0, c1, tc = source(j, w, wo)
        top = (1 - tc) * x[:, r0, c0] + tc * x[:, r0, c1]
        bottom = (1 - tc) * x[:, r1, c0] + tc * x[:, r1, c1]
        y[:, i, j] = (1 - tr) * top + tr * bottom
    return y


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize(
    ("shape", "factor"), [((3, 2, 2), (2, 2)), ((1, 4, 3), (3, 3)), ((2, 3, 1), (1, 2)), ((3, 1, 2), (2, 1))]
)
def test_bilinear_matches_pytorchs_formula_and_central_differences(shape, factor, align_corners) -> None:
    layer = make_layer(Op.UPSAMPLE, (shape,), UpsampleAttrs(factor, "bilinear", align_corners))
    x = random_inputs(layer, 2)
    _, y = run(layer, x, {}, training=False)
    np.testing.assert_allclose(y, naive_bilinear(x[0], factor, align_corners), rtol=1e-12, atol=1e-14)
    check_gradients(layer)


@pytest.mark.parametrize(
    ("align_corners", "expected"),
    [
        (False, [[1.0, 1.25, 1.75, 2.0], [1.5, 1.75, 2.25, 2.5], [2.5, 2.75, 3.25, 3.5], [3.0, 3.25, 3.75, 4.0]]),
        (True, [[3, 4, 5, 6], [5, 6, 7, 8], [7, 8, 9, 10], [9, 10, 11, 12]]),
    ],
)
def test_bilinear_gives_pytorchs_documented_example(align_corners, expected) -> None:
    """torch.nn.Upsample's documentation upsamples [[1, 2], [3, 4]] by 2 (with align_corners, thirds: here times 3)."""
    layer = make_layer(Op.UPSAMPLE, ((2, 2, 1),), UpsampleAttrs((2, 2), "bilinear", align_corners))
    _, y = run(layer, [np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)], {}, training=False)
    np.testing.assert_allclose(y[0, :, :, 0] * (3 if align_corners else 1), expected, rtol=1e-12)


def test_the_yaml_entry_defaults_to_factor_two_and_refuses_zero(tmp_path) -> None:
    graph = graph_from({"name": "t", "input": [3, 4, 2], "layers": [{"op": "upsample"}]})
    assert graph.output.output_shape == (6, 8, 2) and graph.params == 0
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ninput: [3, 3, 1]\nlayers:\n  - {op: upsample, factor: 0}\n")
    with pytest.raises(InputError, match=r"bad.yaml:4: layers\[0\].factor"):
        load_network(path)


def test_an_output_band_reads_the_rows_it_was_copied_from() -> None:
    up = graph_from({"name": "t", "input": [4, 4, 3], "layers": [{"op": "upsample", "factor": 3}]}).output
    assert input_regions(up, (0, 3), (0, 3)) == (((0, 1), (0, 3)),)
    assert input_regions(up, (2, 7), (1, 2)) == (((0, 3), (1, 2)),)
    assert input_regions(up, (11, 12), (0, 3)) == (((3, 4), (0, 3)),)


def test_verify_executes_what_the_cost_model_counts(tmp_path, runner) -> None:
    path = tmp_path / "upsampled.yaml"
    path.write_text(NETWORK)
    result = runner.invoke(main, ["verify", str(path), "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "counts agree" in result.output
    graph = load_network(path)
    checks = verify(graph, batch=3).checks
    up3 = {c.pass_: c.executed for c in checks if c.layer == "up3"}
    # 3x3 copies of each of the 3x2x3 inputs of 3 images summed back: 8 adds per input element
    assert up3[Pass.FORWARD] == 0 and up3[Pass.BACKWARD] == 8 * 3 * 2 * 3 * 3
    assert {row.layer.name: row.backward for row in pass_ops(graph, batch=3)}["up3"] == up3[Pass.BACKWARD]


@pytest.mark.parametrize("capacity", [600, 2_000, 1e6])
def test_every_policy_schedules_it_and_strict_and_optimized_pass_the_validator(tmp_path, capacity) -> None:
    path = tmp_path / "upsampled.yaml"
    path.write_text(NETWORK)
    graph = load_network(path)
    hw = hardware(capacity)
    for policy in ("strict", "optimized"):
        _, violations = schedule(graph, hw, policy)
        assert violations == []
    _, violations = schedule(graph, hw, "paper")
    assert {v.rule for v in violations} <= {Rule.CAPACITY}


def test_optimized_fuses_it_into_its_producer_and_streams_it() -> None:
    graph = graph_from(
        {
            "name": "chain",
            "input": [16, 16, 4],
            "layers": [
                {"op": "conv", "kernel": 3, "filters": 8},
                {"op": "relu"},
                {"op": "upsample"},
                {"op": "conv", "kernel": 3, "filters": 4},
            ],
        }
    )
    s, violations = schedule(graph, hardware(20_000), "optimized")
    assert violations == []
    fused = next(step for step in s.steps if "upsample" in step.op)
    assert fused.op == "conv+relu+upsample"
    assert "streamed row by row" in fused.note


@st.composite
def upsampled_networks(draw: st.DrawFn) -> Any:
    """Random pieces (convs, pools, residual blocks) with an upsample among them."""
    channels = image_channels = draw(st.sampled_from([1, 3]))
    layers: list[dict[str, Any]] = []
    count = draw(st.integers(1, 3))
    at = draw(st.integers(0, count))
    for i in range(count + 1):
        if i == at:
            layers.append({"op": "upsample", "factor": draw(st.sampled_from([1, 2, 3])), "name": f"up{i}"})
            continue
        piece, channels = draw(layer_specs(i, channels))
        names = {layer.get("name", layer["op"]): f"{layer.get('name', layer['op'])}_{i}" for layer in piece}
        for layer in piece:
            renamed = {**layer, "name": names[layer.get("name", layer["op"])]}
            if "inputs" in layer:
                renamed["inputs"] = [names.get(n, n) for n in layer["inputs"]]
            layers.append(renamed)
    return graph_from(
        {"name": "generated", "input": [draw(st.sampled_from([4, 6, 8])), 6, image_channels], "layers": layers}
    )


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: the profile's (10, CI 200)
@given(upsampled_networks(), st.sampled_from([1_000, 4_000, 16_000, 1e6]), st.sampled_from([1, 2]))
def test_random_networks_with_an_upsample_pass_the_validator(graph, capacity, batch) -> None:
    try:
        runs = {p: schedule(graph, hardware(capacity), p, batch) for p in ("paper", "strict", "optimized")}
    except CapacityError:
        assume(False)
        raise
    assert runs["strict"][1] == [] and runs["optimized"][1] == []
    assert {v.rule for v in runs["paper"][1]} <= {Rule.CAPACITY}
