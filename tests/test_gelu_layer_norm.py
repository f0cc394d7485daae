"""gelu (erf and tanh) and layer_norm over channels, ConvNeXt's two ops: their forward against the formulas worked
element by element, their backward against central differences, erf against Python's, the YAML entries, counts
checked by execution in every pass, and the three policies under the validator."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_helpers import check_gradients, make_layer, random_inputs, random_params, run
from schedule_helpers import graph_from, hardware
from schedule_helpers import run as schedule

from hwsim.cli import main
from hwsim.cost.training import pass_ops
from hwsim.model.execution import Pass
from hwsim.model.expand import load_network
from hwsim.model.regions import input_regions
from hwsim.ops import TRAITS, Channels, GeluAttrs, LayerNormAttrs, Op, Rows
from hwsim.reference import attributed, counting
from hwsim.reference.memory import step_bytes
from hwsim.reference.primitives import _erf, erf
from hwsim.schedule.validate import Rule
from hwsim.studies.verify import verify

NETWORK = """
name: convnext-like
input: [10, 9, 3]
layers:
  - {op: conv, kernel: 2, stride: 2, filters: 8, name: stem}
  - {op: layer_norm, eps: 1.0e-6, name: stem_norm}
  - {op: dwconv, kernel: 7, padding: 3, name: dw}
  - {op: layer_norm, eps: 1.0e-6, name: norm}
  - {op: conv, kernel: 1, filters: 32, name: expand}
  - {op: gelu, name: act}
  - {op: conv, kernel: 1, filters: 8, name: project}
  - {op: scale, scale: [0.5, 1.5, 1, 2, 0.25, 1, 1, 3], name: layer_scale}
  - {op: add, inputs: [stem_norm, layer_scale], name: residual}
  - {op: gelu, approximate: tanh, name: tanh_act}
  - {op: global_avg_pool, name: gap}
  - {op: layer_norm, name: head_norm}
  - {op: dense, units: 5, name: fc}
  - {op: softmax, name: out}
"""


@pytest.fixture
def network(tmp_path):
    path = tmp_path / "convnext-like.yaml"
    path.write_text(NETWORK)
    return path


def test_erf_is_pythons_to_the_last_bits() -> None:
    x = np.concatenate([np.linspace(-8, 8, 40_001), np.logspace(-300, 1.5, 600), -np.logspace(-300, 1.5, 600)])
    want = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(_erf(x), want, rtol=1e-15, atol=3e-16)
    assert _erf(np.array([-40.0, 40.0, np.inf, -np.inf])).tolist() == [-1.0, 1.0, 1.0, -1.0]
    assert _erf(np.float32([0.25])).dtype == np.float32


@given(st.floats(-30, 30, allow_nan=False))
def test_erf_matches_python_anywhere(value: float) -> None:
    assert _erf(np.array([value]))[0] == pytest.approx(math.erf(value), rel=1e-15, abs=3e-16)


def test_erf_counts_one_op_an_element_and_its_blocks_change_nothing() -> None:
    x = np.random.default_rng(0).standard_normal((3, 5, 7, 11)).astype(np.float32)
    with counting() as ledger, attributed("x", Pass.FORWARD):
        y = erf(x, block=100)
    assert ledger.total() == x.size
    np.testing.assert_array_equal(y, _erf(x))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_is_the_formula_and_its_gradient(approximate: str) -> None:
    layer = make_layer(Op.GELU, ((3, 2, 4),), GeluAttrs(approximate))
    x = random_inputs(layer, 2)
    x[0] *= 3
    _, y = run(layer, x, {}, training=True)
    for index in np.ndindex(x[0].shape):
        v = x[0][index]
        if approximate == "none":
            expected = 0.5 * v * (1 + math.erf(v / math.sqrt(2)))
        else:
            expected = 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
        assert y[index] == pytest.approx(expected, rel=1e-13, abs=1e-15)
    check_gradients(layer)


def naive_layer_norm(x, gamma, beta, eps):
    y = np.zeros_like(x)
    for n, i, j in np.ndindex(x.shape[:3]):
        values = list(x[n, i, j])
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        y[n, i, j] = [g * (v - mean) / math.sqrt(var + eps) + b for v, g, b in zip(values, gamma, beta)]
    return y


@pytest.mark.parametrize(("shape", "training"), [((3, 2, 5), True), ((3, 2, 5), False), ((1, 1, 6), True)])
def test_layer_norm_normalises_each_pixel_over_its_channels(shape, training) -> None:
    layer = make_layer(Op.LAYER_NORM, (shape,), LayerNormAttrs(1e-3))
    x = random_inputs(layer, 2)
    params = random_params(layer)
    _, y = run(layer, x, params, training=training)
    np.testing.assert_allclose(y, naive_layer_norm(x[0], params["gamma"], params["beta"], 1e-3), rtol=1e-10, atol=1e-12)
    assert layer.params == 2 * shape[2] and layer.state == 0
    check_gradients(layer, training=training)


def test_the_yaml_entries_default_as_pytorch_does() -> None:
    out = graph_from({"name": "t", "input": [4, 4, 3], "layers": [{"op": "gelu"}, {"op": "layer_norm"}]}).layers
    assert out[0].attrs == GeluAttrs("none") and out[1].attrs == LayerNormAttrs(1e-5)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("{op: gelu, approximate: erf}", "layers[0].approximate"),
        ("{op: gelu, alpha: 1}", "layers[0]: unknown field 'alpha'"),
        ("{op: layer_norm, eps: 0}", "layers[0].eps"),
        ("{op: layer_norm, eps: .nan}", "layers[0].eps"),
    ],
)
def test_a_wrong_attribute_is_one_line_naming_file_line_and_field(tmp_path, runner, entry: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\ninput: [4, 4, 3]\nlayers:\n  - {entry}\n")
    result = runner.invoke(main, ["estimate", str(path), "--hw", "edge-npu"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"bad.yaml:4: {field}" in lines[0], result.output


def test_layer_norm_reads_every_channel_of_its_rows_and_gelu_only_its_own() -> None:
    assert (TRAITS[Op.LAYER_NORM].rows, TRAITS[Op.LAYER_NORM].channels) == (Rows.SAME, Channels.ALL)
    graph = graph_from(
        {"name": "t", "input": [6, 5, 8], "layers": [{"op": "layer_norm", "name": "ln"}, {"op": "gelu", "name": "g"}]}
    )
    ln, gelu = graph.layers
    assert input_regions(ln, (2, 4), (3, 5)) == (((2, 4), (0, 8)),)
    assert input_regions(gelu, (2, 4), (3, 5)) == (((2, 4), (3, 5)),)


def test_verify_executes_what_the_cost_model_counts_in_every_pass(network, runner) -> None:
    result = runner.invoke(main, ["verify", str(network), "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "counts agree" in result.output
    graph = load_network(network)
    checks = verify(graph, batch=3).checks
    assert all(c.modelled == c.executed for c in checks)
    ran = {(c.layer, c.pass_): c.executed for c in checks}
    pixels = 3 * 5 * 5  # 3 images of the 5x5 map the stem makes (padding same)
    n = pixels * 8
    assert ran[("norm", Pass.FORWARD)] == 7 * n + 2 * pixels
    assert ran[("norm", Pass.BACKWARD)] == n + 2 * (pixels - 1) * 8 + 8 * n
    assert ran[("act", Pass.FORWARD)] == 5 * 4 * n and ran[("act", Pass.BACKWARD)] == 7 * 4 * n
    assert ran[("tanh_act", Pass.FORWARD)] == 8 * n and ran[("tanh_act", Pass.BACKWARD)] == 8 * n
    rows = {row.layer.name: row for row in pass_ops(graph, batch=3)}
    assert rows["head_norm"].backward == ran[("head_norm", Pass.BACKWARD)]


@pytest.mark.parametrize("capacity", [20_000, 60_000, 1e6])
def test_every_policy_schedules_it_and_strict_and_optimized_pass_the_validator(network, capacity) -> None:
    graph = load_network(network)
    for batch in (1, 2):
        for policy in ("strict", "optimized"):
            _, violations = schedule(graph, hardware(capacity), policy, batch)
            assert violations == []
        _, violations = schedule(graph, hardware(capacity), "paper", batch)
        assert {v.rule for v in violations} <= {Rule.CAPACITY}


def test_optimized_fuses_gelu_into_its_producer() -> None:
    graph = graph_from(
        {
            "name": "chain",
            "input": [16, 16, 4],
            "layers": [
                {"op": "conv", "kernel": 3, "filters": 8, "name": "c"},
                {"op": "layer_norm", "name": "ln"},
                {"op": "conv", "kernel": 1, "filters": 16, "name": "pw"},
                {"op": "gelu", "name": "g"},
            ],
        }
    )
    s, violations = schedule(graph, hardware(20_000), "optimized")
    assert violations == []
    step = next(step for step in s.steps if "pw" in step.layers)
    assert "g" in step.layers


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_the_memory_estimate_bounds_what_their_kernels_allocate(approximate: str) -> None:
    """What gelu and layer_norm keep for their backward (the CDF; x², tanh; x̂) and make while they run."""
    graph = graph_from(
        {
            "name": "big",
            "input": [48, 48, 16],
            "layers": [
                {"op": "conv", "kernel": 1, "filters": 16},
                {"op": "layer_norm"},
                {"op": "gelu", "approximate": approximate},
                {"op": "layer_norm"},
                {"op": "global_avg_pool"},
                {"op": "softmax"},
            ],
        }
    )
    tracemalloc.start()
    try:
        verify(graph, batch=3)
        measured = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert measured <= step_bytes(graph, 3, "adam") <= 2 * measured
