"""conv_transpose (ConvTranspose2d): the kernel against a scatter loop, its rows against listing them, counts
executed, the schedulers and the validator on decoders, and ONNX's ConvTranspose read, written and run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reference_helpers import check_gradients, make_layer, random_inputs, random_params, run
from schedule_helpers import graph_from, hardware
from schedule_helpers import run as schedule

from hwsim.cli import main
from hwsim.cost.cut import reads_every_input, transposed_axis_reach
from hwsim.cost.cycles import matrix_view
from hwsim.cost.fold import fold_batchnorm as fold_costs
from hwsim.cost.inference import EXACT, graph_costs, layer_cost
from hwsim.errors import InputError
from hwsim.model.expand import load_network
from hwsim.model.regions import input_rows, rows_read, transposed_rows
from hwsim.ops import ConvTransposeAttrs, Op, Padding, ShapeError
from hwsim.reference import Model, fold_batchnorm
from hwsim.reference.memory import step_bytes
from hwsim.schedule.base import CapacityError
from hwsim.schedule.validate import Rule
from hwsim.spec.hardware import Precision
from hwsim.studies.runtime import runtime_agreement
from hwsim.studies.verify import execute
from tests.onnx_models import Net
from tests.test_memory_budget import peak_bytes

DECODER = """
name: decoder
input: [4, 4, 8]
layers:
  - {op: conv_transpose, filters: 6, kernel: 2, stride: 2, name: up1}
  - {op: relu}
  - {op: conv_transpose, filters: 4, kernel: 3, stride: 2, padding: 1, output_padding: 1, name: up2}
  - {op: batchnorm}
  - {op: relu, name: r2}
  - {op: conv_transpose, filters: 4, kernel: 2, stride: 3, name: gaps}
  - {op: conv_transpose, filters: 4, kernel: 3, dilation: 2, padding: 1, name: dilated}
  - {op: conv_transpose, filters: 8, kernel: 3, stride: 2, padding: 1, groups: 4, name: grouped}
  - {op: conv_transpose, filters: 8, kernel: 3, padding: [2, 0, 1, 1], groups: 8, name: depthwise}
  - {op: conv, filters: 3, kernel: 3}
  - {op: global_avg_pool}
  - {op: softmax}
"""


NO_PADDING = Padding()


def attrs(
    kernel=(3, 3), stride=(1, 1), padding=NO_PADDING, output_padding=(0, 0), dilation=(1, 1), groups=1, out=2, bias=True
) -> ConvTransposeAttrs:
    return ConvTransposeAttrs(kernel, stride, padding, output_padding, dilation, groups, out, bias)


def scattered(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, a: ConvTransposeAttrs) -> np.ndarray:
    """The definition, pixel by pixel: each input pixel adds its value times the kernel onto the output."""
    n, h, w, cin = x.shape
    kh, kw, per_out, _ = weight.shape
    per_in = cin // a.groups
    (sh, sw), (dh, dw), p = a.stride, a.dilation, a.padding
    ho = (h - 1) * sh - p.top - p.bottom + dh * (kh - 1) + a.output_padding[0] + 1
    wo = (w - 1) * sw - p.left - p.right + dw * (kw - 1) + a.output_padding[1] + 1
    y = np.zeros((n, ho, wo, a.out_channels))
    for b, i, j, c, u, v, o in np.ndindex(n, h, w, cin, kh, kw, per_out):
        r, q = i * sh - p.top + u * dh, j * sw - p.left + v * dw
        if 0 <= r < ho and 0 <= q < wo:
            y[b, r, q, (c // per_in) * per_out + o] += x[b, i, j, c] * weight[u, v, o, c]
    return y if bias is None else y + bias


@pytest.mark.parametrize(
    ("shape", "a"),
    [
        ((3, 4, 2), attrs((2, 2), (2, 2), out=3)),  # U-Net's up-convolution
        ((3, 3, 2), attrs((3, 3), (2, 2), Padding(1, 1, 1, 1), (1, 1))),  # doubles exactly
        ((2, 3, 2), attrs((2, 3), (3, 2), Padding(0, 1, 1, 0), (0, 1), groups=2, out=4, bias=False)),  # gaps
        ((3, 3, 4), attrs((3, 3), (1, 2), Padding(2, 1, 0, 0), (1, 1), (2, 2), groups=4, out=4)),  # dilated depthwise
        ((1, 1, 3), attrs((4, 4), out=2, bias=False)),  # a DCGAN generator's first layer
    ],
)
def test_forward_is_the_scatter_and_backward_matches_central_differences(shape, a) -> None:
    layer = make_layer(Op.CONV_TRANSPOSE, (shape,), a)
    x, params = random_inputs(layer, 2), random_params(layer)
    _, y = run(layer, x, params, training=False)
    expected = scattered(x[0], params["weight"], params.get("bias"), a)
    assert y.shape[1:] == layer.output_shape == expected.shape[1:]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    check_gradients(layer)


def test_the_yaml_entry_gives_pytorchs_output_size_and_refuses_unreachable_output_padding(tmp_path) -> None:
    def output(**entry: Any) -> tuple[int, int, int]:
        layer = {"op": "conv_transpose", "filters": 5, "kernel": 4, **entry}
        return graph_from({"name": "t", "input": [7, 6, 3], "layers": [layer]}).output.output_shape

    assert output() == (10, 9, 5)  # (H - 1) + 4
    assert output(stride=2, padding=1) == (14, 12, 5)  # DCGAN: doubles
    # (7 - 1)*3 - 2*2 + 2*(4 - 1) + 2 + 1 = 23; (6 - 1)*3 - 2*2 + 2*(4 - 1) + 1 + 1 = 19
    assert output(stride=3, padding=2, output_padding=[2, 1], dilation=2) == (23, 19, 5)
    assert (
        graph_from(
            {
                "name": "t",
                "input": [2, 2, 4],
                "layers": [{"op": "conv_transpose", "filters": 6, "kernel": 3, "groups": 2}],
            }
        ).params
        == 3 * 3 * 4 * 3 + 6
    )
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ninput: [3, 3, 1]\nlayers:\n"
        "  - {op: conv_transpose, filters: 2, kernel: 3, stride: 2,\n     output_padding: 2}\n"
    )
    with pytest.raises(
        InputError,
        match=r"bad.yaml:4: layers\[0\]: .*output_padding 2 must be smaller than the stride 2 or the dilation 1",
    ):
        load_network(path)
    with pytest.raises(ShapeError, match="crops the whole"):
        make_layer(Op.CONV_TRANSPOSE, ((1, 1, 1),), attrs((1, 1), padding=Padding(1, 0, 0, 0)))


def test_a_wrong_attribute_is_one_line_and_exit_2(runner, tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ninput: [3, 3, 1]\nlayers:\n"
        "  - {op: conv_transpose, filters: 2, kernel: 2, stride: 1, output_padding: 1}\n"
    )
    result = runner.invoke(main, ["estimate", str(path)])
    assert result.exit_code == 2
    assert "bad.yaml:4" in result.output and "output_padding 1" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def read_by_listing(out_rows: range, extent_taps: int, stride: int, dilation: int, top: int, height: int) -> set[int]:
    """Input rows i with r = i * stride - top + k * dilation for some tap k and some r in ``out_rows``."""
    return {
        i
        for r in out_rows
        for k in range(extent_taps)
        if (r + top - k * dilation) % stride == 0 and 0 <= (i := (r + top - k * dilation) // stride) < height
    }


@settings(deadline=None)  # examples: the profile's (10, CI 200)
@given(
    st.integers(1, 6),  # input height
    st.integers(1, 4),  # kernel
    st.integers(1, 4),  # stride
    st.integers(1, 3),  # dilation
    st.integers(0, 4),  # top
    st.integers(0, 4),  # bottom
    st.integers(0, 3),  # output padding
    st.data(),
)
def test_a_band_reads_the_rows_listing_them_finds_and_bands_never_move_back(
    height, kernel, stride, dilation, top, bottom, extra, data
) -> None:
    assume(extra < stride or extra < dilation)
    extent = (kernel - 1) * dilation + 1
    out = (height - 1) * stride - top - bottom + extent + extra
    assume(out >= 1)
    start = data.draw(st.integers(0, out - 1))
    stop = data.draw(st.integers(start + 1, out))
    first, last = transposed_rows((start, stop), extent, stride, top, height)
    listed = read_by_listing(range(start, stop), kernel, stride, dilation, top, height)
    assert 0 <= first < last <= height  # every band reads a row of the map
    assert listed <= set(range(first, last))
    # a band's span holds each of its rows' (a fused step computes a band row by row, each reading its own)
    rows = [transposed_rows((r, r + 1), extent, stride, top, height) for r in range(start, stop)]
    assert all(first <= lo and hi <= last for lo, hi in rows)
    if listed and dilation == 1:  # exact when every row of the hull is a tap (the first band: from row 0), but
        # a last row with no tap reads the row its taps would start at
        assert (first, last) == (0 if start == 0 else min(listed), max(max(listed) + 1, rows[-1][1]))
    # the next band starts no higher and ends no higher: spans never move back
    if stop < out:
        after = transposed_rows((stop, data.draw(st.integers(stop + 1, out))), extent, stride, top, height)
        assert after[0] >= first and after[1] >= last
    single = [transposed_rows((r, r + 1), extent, stride, top, height) for r in range(out)]
    assert all(b[0] >= a[0] and b[1] >= a[1] for a, b in zip(single, single[1:]))


@pytest.mark.parametrize("policy", ["strict", "optimized"])
def test_a_fused_band_ending_in_a_row_with_no_tap_has_its_input_row_loaded(policy: str) -> None:
    """Kernel 2, stride 4: output rows 2, 3, 6, 7, ... read no input row. An average pool fused behind it at
    400 B (fp16) runs in bands of one pooled row, each computing the transposed conv's new rows one by one: row 6 reads
    row 2, which the band's span (rows 4 to 6: rows 1 to 1) left unloaded (the validator's placement rule)."""
    graph = graph_from(
        {
            "name": "gaps",
            "input": [4, 5, 1],
            "layers": [
                {"op": "conv_transpose", "filters": 2, "kernel": 2, "stride": 4, "output_padding": 3},
                {"op": "avgpool", "size": 3, "stride": 1},
            ],
        }
    )
    _, violations = schedule(graph, hardware(400), policy, precision=Precision.FP16)
    assert violations == []


def test_rows_with_no_tap_read_the_row_where_their_taps_would_start() -> None:
    """Stride 3, kernel 2: output rows 2, 5, ... read no input row; they read the next one (1, 2, ...)."""
    up = graph_from(
        {"name": "t", "input": [3, 3, 2], "layers": [{"op": "conv_transpose", "filters": 2, "kernel": 2, "stride": 3}]}
    ).output
    assert up.output_shape[0] == 8
    assert [input_rows(up, (r, r + 1))[0] for r in range(8)] == [
        (0, 1),
        (0, 1),
        (1, 2),
        (1, 2),
        (1, 2),
        (2, 3),
        (2, 3),
        (2, 3),
    ]
    assert rows_read(up) == 3


def test_the_cut_bound_knows_which_inputs_and_outputs_meet() -> None:
    # stride 3, kernel 2: every input is read, but output rows 2 and 5 read nothing
    assert transposed_axis_reach(3, 8, 2, 3, 1, 0) == (True, False)
    # a 1x1 kernel cropped by 1 on each side: the edge inputs reach only cropped rows
    assert transposed_axis_reach(3, 1, 1, 1, 1, 1) == (False, True)
    generator = graph_from(
        {"name": "g", "input": [1, 1, 8], "layers": [{"op": "conv_transpose", "filters": 4, "kernel": 4}]}
    ).output
    assert reads_every_input(generator)  # a 1x1 latent: every output pixel reads all of it


def test_the_matrix_view_is_the_scatters_product() -> None:
    graph = load_network_text(DECODER)
    hw = hardware(1e6)
    for layer in graph.layers:
        if layer.op is Op.CONV_TRANSPOSE:
            view = matrix_view(layer, 3)
            assert view is not None and view.macs == layer_cost(layer, hw, EXACT, 3).macs


def load_network_text(text: str) -> Any:
    import yaml

    return graph_from(yaml.safe_load(text))


def test_verify_executes_what_the_cost_model_counts(tmp_path, runner) -> None:
    path = tmp_path / "decoder.yaml"
    path.write_text(DECODER)
    result = runner.invoke(main, ["verify", str(path), "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "all 48 counts agree" in result.output


@pytest.mark.parametrize("capacity", [pytest.param(c, marks=pytest.mark.slow) for c in (2_000, 8_000)] + [1e6])
def test_every_policy_schedules_a_decoder_and_the_validator_passes(capacity) -> None:
    graph = load_network_text(DECODER)
    for policy in ("strict", "optimized"):
        _, violations = schedule(graph, hardware(capacity), policy, batch=2)
        assert violations == []
    _, violations = schedule(graph, hardware(capacity), "paper", batch=2)
    assert {v.rule for v in violations} <= {Rule.CAPACITY}


def test_optimized_streams_a_transposed_conv_and_fuses_its_relu() -> None:
    s, violations = schedule(load_network_text(DECODER), hardware(30_000), "optimized")
    assert violations == []
    first = s.steps[0]
    assert first.op == "conv_transpose+relu" and "streamed row by row" in first.note


@st.composite
def decoders(draw: st.DrawFn) -> Any:
    """A conv, then one to three transposed convs of any stride, kernel, padding (up to crops wider than the
    kernel, on any side), dilation and grouping, each maybe followed by a ReLU or a strided conv."""
    layers: list[dict[str, Any]] = [{"op": "conv", "kernel": 3, "filters": 4, "name": "stem"}]
    for i in range(draw(st.integers(1, 3))):
        stride, dilation = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        kernel = draw(st.integers(1, 4))
        extent = (kernel - 1) * dilation + 1
        layer = {
            "op": "conv_transpose",
            "name": f"up{i}",
            "filters": 4,
            "kernel": kernel,
            "stride": stride,
            "dilation": dilation,
            "padding": draw(st.lists(st.integers(0, extent), min_size=4, max_size=4)),
            "output_padding": draw(st.integers(0, max(stride, dilation) - 1)),
            "groups": draw(st.sampled_from([1, 2, 4])),
        }
        after = draw(st.sampled_from(["relu", "conv", None]))
        layers.append(layer)
        if after == "relu":
            layers.append({"op": "relu", "name": f"relu{i}"})
        elif after == "conv":
            layers.append({"op": "conv", "kernel": 3, "filters": 4, "stride": 2, "name": f"down{i}"})
    layers.append({"op": "conv", "kernel": 1, "filters": 2, "name": "head"})
    spec = {"name": "generated", "input": [draw(st.integers(1, 6)), draw(st.integers(1, 4)), 2], "layers": layers}
    try:
        return graph_from(spec)
    except InputError:  # a crop of the whole map, or a conv's window larger than its input
        assume(False)
        raise


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: the profile's (10, CI 200)
@given(decoders(), st.sampled_from([800, 2_000, 6_000, 1e6]), st.sampled_from([1, 2, 3]))
def test_random_decoders_pass_the_validator_under_every_policy(graph, capacity, batch) -> None:
    try:
        runs = {p: schedule(graph, hardware(capacity), p, batch) for p in ("paper", "strict", "optimized")}
    except CapacityError:
        assume(False)
        raise
    assert runs["strict"][1] == [] and runs["optimized"][1] == []
    assert {v.rule for v in runs["paper"][1]} <= {Rule.CAPACITY}


# ---- ONNX -------------------------------------------------------------------------------------------------


def transposed_net(**node_attrs: Any) -> tuple[Net, str]:
    """A 3x5 map of 4 channels through a ConvTranspose to 6 channels in 2 groups, kernel 3x2, with a bias."""
    net = Net(["N", 4, 3, 5], seed=2)
    weight, bias = net.weight("up.weight", (4, 3, 3, 2), 0.4), net.weight("up.bias", (6,), 0.1)
    return net, net.node("ConvTranspose", ["input", weight, bias], "/up/ConvTranspose", group=2, **node_attrs)


ONNX_CASES = {
    "plain": ({}, (5, 6)),
    "strided-asymmetric-pads": ({"strides": [2, 3], "pads": [1, 0, 0, 1]}, (6, 13)),
    "output-padding": ({"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, (6, 9)),
    "dilated": ({"dilations": [2, 1], "pads": [1, 0, 1, 0]}, (5, 6)),
    "output-shape": ({"strides": [2, 2], "output_shape": [5, 10]}, (5, 10)),
    "same-upper": ({"strides": [1, 2], "auto_pad": "SAME_UPPER"}, (3, 10)),
}


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_onnx_convtranspose_reads_as_onnx_runtime_runs_it(case: str, tmp_path: Path) -> None:
    node_attrs, (ho, wo) = ONNX_CASES[case]
    net, output = transposed_net(**node_attrs)
    path = net.save(output, tmp_path / f"{case}.onnx")
    graph = load_network(path)
    (layer,) = graph.layers
    assert layer.op is Op.CONV_TRANSPOSE and layer.output_shape == (ho, wo, 6)
    assert layer.params == 4 * 3 * 3 * 2 + 6
    result = runtime_agreement(path, batch=2)
    assert result.agrees, result.summary()


@pytest.mark.parametrize(
    ("node_attrs", "reason"),
    [
        ({"strides": [2, 2], "output_shape": [6, 10]}, "output_shape \\[6, 10\\] implies a crop of 1 from 7"),
        ({"strides": [1, 1], "output_shape": [7, 7]}, "implies a crop of -2"),
        ({"strides": [2, 2], "output_padding": [2, 0]}, "output_padding 2 must be smaller than the stride 2"),
        ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, "auto_pad SAME_LOWER \\[6, 10\\] implies a crop of 1 from 7"),
        ({"strides": [2, 2], "auto_pad": "SAME_UPPER", "output_padding": [1, 0]}, "Runtime disagree"),
    ],
)
def test_onnx_convtranspose_refuses_what_it_cannot_express(node_attrs, reason, tmp_path: Path) -> None:
    net, output = transposed_net(**node_attrs)
    path = net.save(output, tmp_path / "refused.onnx")
    with pytest.raises(InputError, match=reason):
        load_network(path)


def test_export_round_trips_and_onnx_runtime_agrees(tmp_path: Path, runner) -> None:
    path = tmp_path / "decoder.yaml"
    path.write_text(DECODER)
    exported = tmp_path / "decoder.onnx"
    assert runner.invoke(main, ["export", str(path), "-o", str(exported)]).exit_code == 0
    before, after = load_network(path), load_network(exported)
    assert after.params == before.params
    ct = [(layer.output_shape, layer.attrs) for layer in before.layers if layer.op is Op.CONV_TRANSPOSE]
    assert ct == [(layer.output_shape, layer.attrs) for layer in after.layers if layer.op is Op.CONV_TRANSPOSE]
    hw = hardware(1e6)
    assert sum(layer_cost(x, hw, EXACT, 1).macs for x in before.layers) == sum(
        layer_cost(x, hw, EXACT, 1).macs for x in after.layers
    )
    result = runner.invoke(main, ["verify", str(exported), "--runtime", "onnxruntime"])
    assert result.exit_code == 0, result.output
    assert "agrees with the NumPy reference" in result.output


GENERATOR = """
name: generator
input: [1, 1, 64]
layers:
  - {op: conv_transpose, filters: 256, kernel: 4, bias: false}
  - {op: batchnorm}
  - {op: relu}
  - {op: conv_transpose, filters: 128, kernel: 4, stride: 2, padding: 1, bias: false}
  - {op: batchnorm}
  - {op: relu}
  - {op: conv_transpose, filters: 64, kernel: 4, stride: 2, padding: 1}
  - {op: relu}
  - {op: conv_transpose, filters: 16, kernel: 3, stride: 3, groups: 2}
  - {op: global_avg_pool}
  - {op: softmax}
"""


def test_the_memory_estimate_bounds_what_numpy_allocates_for_a_generator() -> None:
    graph = load_network_text(GENERATOR)
    measured = peak_bytes(lambda: execute(graph, 4))
    estimated = step_bytes(graph, 4, "adam")
    assert measured <= estimated <= 2 * measured, (measured, estimated)


def test_a_batch_norm_after_a_transposed_conv_folds_into_it_in_the_reference_and_the_costs() -> None:
    graph = load_network_text(
        """
name: folds
input: [3, 3, 4]
layers:
  - {op: conv_transpose, filters: 6, kernel: 3, stride: 2, groups: 2, bias: false, name: up}
  - {op: batchnorm, name: bn}
  - {op: relu}
"""
    )
    model = Model(graph, seed=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    for key in ("bn.gamma", "bn.beta"):
        model.params[key] = rng.uniform(0.5, 1.5, 6)
    model.state["bn.running_mean"], model.state["bn.running_var"] = rng.uniform(-1, 1, 6), rng.uniform(0.5, 2, 6)
    x = rng.standard_normal((2, 3, 3, 4))
    folded = fold_batchnorm(model)
    assert [layer.op for layer in folded.graph.layers] == [Op.CONV_TRANSPOSE, Op.RELU]
    np.testing.assert_allclose(folded.forward(x), model.forward(x), rtol=1e-12, atol=1e-12)
    hw = hardware(1e6)
    costs, into = fold_costs(graph_costs(graph, hw), hw)
    assert into == {"up": "bn"} and costs[0].layer.params == graph.layers[0].params + 6
