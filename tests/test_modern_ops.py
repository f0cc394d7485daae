"""The ops of MobileNet v2/v3, EfficientNet and torchvision's backbones, in networks: clip (ReLU6),
leaky_relu, sigmoid, hard_sigmoid, hard_swish, broadcast mul and add (squeeze-and-excitation), pad,
identity, bilinear upsample, dilated convs and ceil_mode pools. Their YAML entries, receptive fields,
counts checked by execution in every pass, and all three policies under the validator."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from schedule_helpers import ACTIVATIONS, graph_from, hardware
from schedule_helpers import run as schedule

from hwsim.cli import main
from hwsim.cost.training import pass_ops
from hwsim.errors import InputError
from hwsim.model.execution import Pass
from hwsim.model.expand import load_network
from hwsim.model.regions import input_regions, input_rows
from hwsim.ops import ConvAttrs, HardSigmoidAttrs, PadAttrs, PoolAttrs, UpsampleAttrs
from hwsim.reference.memory import step_bytes
from hwsim.schedule.base import CapacityError
from hwsim.schedule.validate import Rule
from hwsim.studies.verify import verify

NETWORK = """
name: modern
input: [9, 8, 3]
layers:
  - {op: conv, kernel: 3, filters: 8, dilation: 2, name: stem}
  - {op: clip, name: relu6}
  - {op: dwconv, kernel: 3, dilation: [2, 1], name: dw}
  - {op: hard_swish, name: hswish}
  - {op: global_avg_pool, name: squeeze}
  - {op: conv, kernel: 1, filters: 4, name: reduce}
  - {op: leaky_relu, alpha: 0.1, name: leaky}
  - {op: conv, kernel: 1, filters: 8, name: expand}
  - {op: hard_sigmoid, name: gate}
  - {op: mul, inputs: [hswish, gate], name: excite}
  - {op: add, inputs: [squeeze, excite], name: shift}
  - {op: pad, pads: [1, 2, 0, 1], mode: reflect, name: mirror}
  - {op: pad, pads: 1, mode: edge, name: edge}
  - {op: pad, pads: [0, 1, 1, 0], value: 0.5, name: border}
  - {op: maxpool, size: 3, stride: 2, ceil_mode: true, name: maxceil}
  - {op: avgpool, size: 3, stride: 2, padding: 1, ceil_mode: true, name: avgceil}
  - {op: avgpool, size: 2, stride: 1, padding: [1, 0, 0, 1], count_include_pad: false, name: avgvalid}
  - {op: upsample, mode: bilinear, factor: [2, 3], name: bilinear}
  - {op: upsample, mode: bilinear, align_corners: true, name: corners}
  - {op: upsample, factor: [1, 2], name: nearest}
  - {op: sigmoid, name: sigmoid}
  - {op: identity, name: same}
  - {op: softmax, name: per_pixel}
  - {op: conv, kernel: 1, filters: 1, name: weight}
  - {op: mul, inputs: [per_pixel, weight], name: weighted}
  - {op: global_avg_pool, name: gap}
  - {op: softmax, name: out}
"""


@pytest.fixture
def network(tmp_path):
    path = tmp_path / "modern.yaml"
    path.write_text(NETWORK)
    return path


def _one(layer: dict[str, Any], input_shape: list[int] | None = None):
    return graph_from({"name": "t", "input": input_shape or [8, 8, 4], "layers": [layer]}).output


def test_the_yaml_entries_default_as_pytorch_does() -> None:
    assert _one({"op": "clip"}).attrs.__dict__ == {"min": 0.0, "max": 6.0}
    assert _one({"op": "leaky_relu"}).attrs.__dict__ == {"alpha": 0.01}
    assert _one({"op": "hard_sigmoid"}).attrs == HardSigmoidAttrs(1 / 6, 0.5)
    assert _one({"op": "upsample"}).attrs == UpsampleAttrs((2, 2), "nearest", False)
    assert _one({"op": "pad", "pads": 2}).attrs == PadAttrs(2, 2, 2, 2, "constant", 0.0)
    pool = _one({"op": "avgpool", "size": 2}).attrs
    assert isinstance(pool, PoolAttrs) and (pool.ceil_mode, pool.count_include_pad, pool.overhang) == (
        False,
        True,
        (0, 0),
    )
    conv = _one({"op": "conv", "kernel": 3, "filters": 2}).attrs
    assert isinstance(conv, ConvAttrs) and conv.dilation == (1, 1)


def test_dilation_spreads_the_kernel_and_same_padding_covers_its_span() -> None:
    conv = _one({"op": "conv", "kernel": 3, "filters": 2, "dilation": [2, 3]})
    assert isinstance(conv.attrs, ConvAttrs) and conv.attrs.extent == (5, 7)
    assert conv.output_shape == (8, 8, 2) and conv.params == 3 * 3 * 4 * 2 + 2  # the taps, not the span
    valid = _one({"op": "dwconv", "kernel": 3, "dilation": 2, "padding": "valid"})
    assert valid.output_shape == (4, 4, 4)


def test_ceil_mode_adds_the_partial_window_pytorch_does() -> None:
    """torchvision's GoogLeNet: 112 -> 56 with a 3x3 stride-2 max pool in ceil_mode (55 without)."""
    floor = _one({"op": "maxpool", "size": 3, "stride": 2}, [112, 112, 1])
    ceil = _one({"op": "maxpool", "size": 3, "stride": 2, "ceil_mode": True}, [112, 112, 1])
    assert floor.output_shape[:2] == (55, 55) and ceil.output_shape[:2] == (56, 56)
    assert isinstance(ceil.attrs, PoolAttrs) and ceil.attrs.overhang == (1, 1)
    # a last window that would start in the trailing padding is dropped: 5 + 1 + 1 padded, size 2, stride 2
    dropped = _one({"op": "maxpool", "size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, [5, 5, 1])
    assert dropped.output_shape[:2] == (3, 3)


@pytest.mark.parametrize(
    ("layers", "field", "message"),
    [
        ([{"op": "clip", "min": 1, "max": 0}], "layers[0]", "clip needs min <= max"),
        ([{"op": "upsample", "align_corners": True}], "layers[0]", "align_corners applies to mode bilinear only"),
        ([{"op": "upsample", "mode": "cubic"}], "layers[0].mode", ""),
        ([{"op": "maxpool", "size": 2, "count_include_pad": False}], "layers[0]", "applies to avgpool only"),
        ([{"op": "avgpool", "size": 2, "padding": 2, "ceil_mode": True}], "layers[0]", "padding below the pool size"),
        ([{"op": "pad", "pads": -1}], "layers[0].pads", ""),
        ([{"op": "pad", "pads": 4, "mode": "reflect"}], "layers[0]", "reflect padding of 4, 4, 4, 4"),
        ([{"op": "relu", "name": "a"}, {"op": "mul", "inputs": ["a", "a", "a"]}], "layers[1].inputs", ""),
        ([{"op": "conv", "kernel": 1, "filters": 2, "name": "a"}, {"op": "mul", "inputs": ["a", "input"]}], "", "mul"),
    ],
)
def test_bad_entries_are_one_line_errors(tmp_path, layers, field, message) -> None:
    text = "name: bad\ninput: [4, 4, 3]\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers)
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace("'", "").replace("True", "true").replace("False", "false"))
    with pytest.raises(InputError) as caught:
        load_network(path)
    assert field in str(caught.value) and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_broadcast_input_is_read_whole_by_every_band() -> None:
    graph = graph_from(
        {
            "name": "se",
            "input": [6, 5, 4],
            "layers": [
                {"op": "global_avg_pool", "name": "squeeze"},
                {"op": "conv", "kernel": 1, "filters": 1, "inputs": ["input"], "name": "spatial"},
                {"op": "mul", "inputs": ["input", "squeeze"], "name": "by_channel"},
                {"op": "add", "inputs": ["spatial", "by_channel"], "name": "by_pixel"},
            ],
        }
    )
    by_channel, by_pixel = graph.layer("by_channel"), graph.layer("by_pixel")
    assert by_channel.output_shape == by_pixel.output_shape == (6, 5, 4)
    assert input_regions(by_channel, (2, 4), (1, 3)) == (((2, 4), (1, 3)), ((0, 1), (1, 3)))
    assert input_regions(by_pixel, (2, 4), (1, 3)) == (((2, 4), (0, 1)), ((2, 4), (1, 3)))
    assert input_regions(by_pixel, (2, 2), (1, 3)) == (((2, 2), (0, 1)), ((2, 2), (1, 3)))


@pytest.mark.parametrize(
    ("layer", "band", "rows"),
    [
        ({"op": "conv", "kernel": 3, "filters": 1, "dilation": 2}, (3, 5), (1, 7)),  # halo of 2 either side
        ({"op": "upsample", "mode": "bilinear"}, (0, 1), (0, 2)),  # source -0.25, clamped to 0
        ({"op": "upsample", "mode": "bilinear"}, (3, 6), (1, 4)),  # sources 1.25 to 2.75
        ({"op": "upsample", "mode": "bilinear"}, (15, 16), (7, 8)),  # the last row's neighbour clamps at the edge
        ({"op": "upsample", "mode": "bilinear", "align_corners": True}, (5, 6), (2, 4)),  # 5 * 7 / 15 = 2.33
    ],
)
def test_receptive_fields_of_dilated_and_bilinear_layers(layer, band, rows) -> None:
    assert input_rows(_one(layer), band) == (rows,)


@given(
    st.integers(1, 6),
    st.tuples(*(st.integers(0, 5) for _ in range(2))),
    st.sampled_from(["constant", "reflect", "edge"]),
    st.integers(1, 4),
)
def test_a_pad_band_reads_every_row_it_copies_and_bands_never_move_back(height, sides, mode, band_rows) -> None:
    top, bottom = sides
    assume(mode != "reflect" or max(top, bottom) < height)
    attrs = PadAttrs(top, bottom, 0, 0, mode)
    total = height + top + bottom
    spans = [attrs.source_rows((r, min(r + band_rows, total)), height) for r in range(0, total, band_rows)]
    for r, (lo, hi) in zip(range(0, total, band_rows), spans):
        assert 0 <= lo < hi <= height  # never nothing: the schedulers load and free some row of every input
        for row in range(r, min(r + band_rows, total)):
            i = row - top
            copied = i if 0 <= i < height else None if mode == "constant" else min(max(i, 0), height - 1)
            if mode == "reflect" and not 0 <= i < height:
                copied = -i if i < 0 else 2 * (height - 1) - i
            assert copied is None or lo <= copied < hi
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(spans, spans[1:]))


def test_verify_executes_what_the_cost_model_counts_in_every_pass(network, runner) -> None:
    result = runner.invoke(main, ["verify", str(network), "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "counts agree" in result.output
    graph = load_network(network)
    checks = verify(graph, batch=3).checks
    assert {c.op for c in checks} >= {layer.op for layer in graph.layers}
    ran = {(c.layer, c.pass_): c.executed for c in checks}
    assert all(c.modelled == c.executed for c in checks)
    # excite: 3 images of 9x8x8 times a 1x1x8 gate; its backward multiplies for both inputs and sums the gate's
    # gradient over the 72 pixels of each image and channel
    n = 3 * 9 * 8 * 8
    assert ran[("excite", Pass.FORWARD)] == n
    assert ran[("excite", Pass.BACKWARD)] == 2 * n + (n - 3 * 8)
    assert ran[("relu6", Pass.FORWARD)] == 2 * n and ran[("hswish", Pass.FORWARD)] == 5 * n
    assert ran[("same", Pass.FORWARD)] == ran[("same", Pass.BACKWARD)] == 0
    assert {row.layer.name: row.backward for row in pass_ops(graph, batch=3)}["mirror"] == ran[
        ("mirror", Pass.BACKWARD)
    ]


def test_the_memory_estimate_bounds_what_their_kernels_allocate() -> None:
    """The ops whose kernels keep or make more than an output's worth: hard_swish's three saved maps,
    bilinear upsampling's gathered taps (an estimate of out + 2·in fell 18% short here)."""
    graph = graph_from(
        {
            "name": "big",
            "input": [48, 48, 16],
            "layers": [
                {"op": "conv", "kernel": 1, "filters": 16},
                {"op": "hard_swish"},
                {"op": "upsample", "mode": "bilinear", "factor": [3, 2]},
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


@pytest.mark.parametrize("capacity", [30_000, 60_000, 1e6])
def test_every_policy_schedules_it_and_strict_and_optimized_pass_the_validator(network, capacity) -> None:
    graph = load_network(network)
    for batch in (1, 2):
        for policy in ("strict", "optimized"):
            _, violations = schedule(graph, hardware(capacity), policy, batch)
            assert violations == []
        _, violations = schedule(graph, hardware(capacity), "paper", batch)
        assert {v.rule for v in violations} <= {Rule.CAPACITY}


def test_optimized_fuses_activations_and_pads_into_their_producer_and_streams_them() -> None:
    graph = graph_from(
        {
            "name": "chain",
            "input": [16, 16, 4],
            "layers": [
                {"op": "conv", "kernel": 3, "filters": 8, "dilation": 2},
                {"op": "hard_swish"},
                {"op": "pad", "pads": 1, "mode": "reflect"},
                {"op": "conv", "kernel": 3, "filters": 4, "padding": "valid"},
                {"op": "clip"},
            ],
        }
    )
    s, violations = schedule(graph, hardware(20_000), "optimized")
    assert violations == []
    steps = [step.op for step in s.steps]
    assert "conv+hard_swish+pad" in steps and "conv+clip" in steps
    assert all("streamed row by row" in step.note for step in s.steps)


def test_a_pool_whose_windows_overlap_fused_into_a_conv_with_weights_in_chunks_fits() -> None:
    """Found by the random networks below with a ceil-mode 3x3 pool: each chunk frees its share of the conv's
    rows except the halo the next band reads, so the last chunk runs beside the halos of all the others (3 x
    24 B here), which a peak priced apart from the records (868 B) left out: 916 B resident in 900 B. A
    segment's price is now the peak of the records it writes (issue 12)."""
    graph = graph_from(
        {
            "name": "halo",
            "input": [6, 6, 4],
            "layers": [
                {"op": "conv", "kernel": 3, "filters": 4},
                {"op": "maxpool", "size": 3, "stride": 2, "padding": "same"},
                {"op": "conv", "kernel": 3, "filters": 4},
            ],
        }
    )
    _, violations = schedule(graph, hardware(900), "optimized")
    assert violations == []


@st.composite
def modern_networks(draw: st.DrawFn, classifier: bool = False) -> Any:
    """A chain of convs (maybe dilated) with random activations, a squeeze-and-excitation block, a reflect
    or edge pad and a bilinear upsample, on maps large enough for any of them; then, for a classifier, a
    softmax over pooled classes."""
    channels = draw(st.sampled_from([2, 4]))
    layers: list[dict[str, Any]] = [
        {"op": "conv", "kernel": 3, "filters": channels, "dilation": draw(st.sampled_from([1, 2])), "name": "c0"},
        {**draw(st.sampled_from(ACTIVATIONS)), "name": "a0"},
    ]
    pieces = draw(st.permutations(["se", "pad", "upsample", "pool"]))[: draw(st.integers(1, 4))]
    for i, piece in enumerate(pieces):
        before = layers[-1]["name"]
        if piece == "se":
            layers += [
                {"op": "global_avg_pool", "name": f"squeeze{i}"},
                {"op": "conv", "kernel": 1, "filters": channels, "name": f"fc{i}"},
                {"op": draw(st.sampled_from(["sigmoid", "hard_sigmoid"])), "name": f"gate{i}"},
                {"op": draw(st.sampled_from(["mul", "add"])), "inputs": [before, f"gate{i}"], "name": f"se{i}"},
            ]
        elif piece == "pad":
            pads = draw(st.sampled_from([1, [2, 0, 1, 1], [0, 2, 2, 0]]))
            layers.append(
                {"op": "pad", "pads": pads, "mode": draw(st.sampled_from(["reflect", "edge"])), "name": f"p{i}"}
            )
        elif piece == "upsample":
            layers.append(
                {
                    "op": "upsample",
                    "mode": "bilinear",
                    "factor": draw(st.sampled_from([2, [1, 2], [3, 2]])),
                    "align_corners": draw(st.booleans()),
                    "name": f"u{i}",
                }
            )
        else:  # windows that overlap (3 over 2) or not (2 over 2)
            size = draw(st.sampled_from([2, 3]))
            layers.append({"op": "maxpool", "size": size, "stride": 2, "ceil_mode": True, "name": f"m{i}"})
        layers.append({"op": "conv", "kernel": 3, "filters": channels, "name": f"c{i + 1}"})
    if classifier:
        layers += [{"op": "global_avg_pool"}, {"op": "dense", "units": 3}, {"op": "softmax"}]
    size = draw(st.sampled_from([6, 8]))  # a ceil-mode pool leaves at least 3 rows: room for a reflect border of 2
    return graph_from({"name": "generated", "input": [size, size, draw(st.sampled_from([1, 3]))], "layers": layers})


@given(modern_networks(), st.sampled_from([1_000, 4_000, 16_000, 1e6]), st.sampled_from([1, 2]))
def test_random_networks_of_these_ops_pass_the_validator(graph, capacity, batch) -> None:
    try:
        runs = {p: schedule(graph, hardware(capacity), p, batch) for p in ("paper", "strict", "optimized")}
    except CapacityError:
        assume(False)
        raise
    assert runs["strict"][1] == [] and runs["optimized"][1] == []
    assert {v.rule for v in runs["paper"][1]} <= {Rule.CAPACITY}


@given(modern_networks(classifier=True))
def test_random_networks_of_these_ops_count_what_they_execute(graph) -> None:
    assert verify(graph, batch=2).differences == ()
