"""Bad input through the CLI: one line naming file, line, field and what is wrong; exit 2; nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hwsim.cli import main

NETWORK_OK = """\
name: tiny
input: [8, 8, 3]
layers:
  - {op: conv, kernel: 3, filters: 4}
  - {op: relu}
"""

HARDWARE_OK = """\
name: hw
memory:
  internal: {capacity: 1 MB}
  external: {bandwidth: 1 GB/s}
compute:
  matrix: {throughput: 1 TFLOPS}
  vector: {throughput: 10 GFLOPS}
"""

# (case, network text or None, hardware text or None, expected line number, expected message pieces)
CASES = [
    ("yaml syntax", "name: tiny\ninput: [8, 8, 3\nlayers: []\n", None, 3, ["YAML syntax error"]),
    (
        "unknown op",
        NETWORK_OK.replace("op: relu", "op: lstm"),
        None,
        5,
        ["layers[1].op", "unknown op 'lstm'", "known ops: conv, dwconv"],
    ),
    (
        "unknown field",
        NETWORK_OK.replace("filters: 4", "filters: 4, colour: 2"),
        None,
        4,
        ["layers[0]: unknown field 'colour' (in layer conv)"],
    ),
    (
        "misspelt field",
        NETWORK_OK.replace("kernel: 3", "kernal: 3"),
        None,
        4,
        ["layers[0]: unknown field 'kernal' (did you mean 'kernel'?) (in layer conv)"],
    ),
    (
        "misspelt top-level key",
        NETWORK_OK.replace("layers:", "layrs:"),
        None,
        3,  # the key's line, not its list's
        ["unknown field 'layrs' (did you mean 'layers'?)"],
    ),
    ("missing field", NETWORK_OK.replace(", filters: 4", ""), None, 4, ["layers[0].filters", "missing field"]),
    ("wrong type", NETWORK_OK.replace("kernel: 3", "kernel: three"), None, 4, ["layers[0].kernel"]),
    ("missing top-level field", NETWORK_OK.replace("input: [8, 8, 3]\n", ""), None, 1, ["input", "missing field"]),
    (
        "add of different shapes",
        NETWORK_OK + "  - {op: conv, kernel: 1, filters: 8, name: wide}\n  - {op: add, inputs: [relu, wide]}\n",
        None,
        7,
        ["add of different shapes", "8x8x4", "8x8x8"],
    ),
    (
        "pool larger than the map",
        NETWORK_OK + "  - {op: maxpool, size: 9}\n",
        None,
        6,
        ["maxpool", "pool size 9 > padded input 8"],
    ),
    (
        "kernel larger than valid-padded input",
        NETWORK_OK + "  - {op: conv, kernel: 11, filters: 2, padding: valid}\n",
        None,
        6,
        ["kernel 11 > padded input 8"],
    ),
    (
        "unknown block",
        NETWORK_OK + "  - {use: resblock, filters: 4}\n",
        None,
        6,
        ["layers[2].use", "unknown block 'resblock'"],
    ),
    (
        "inputs naming a missing layer",
        NETWORK_OK + "  - {op: add, inputs: [relu, nowhere]}\n",
        None,
        6,
        ["layers[2].inputs", "no layer named 'nowhere'"],
    ),
    (
        "inputs naming a later layer",
        NETWORK_OK + "  - {op: add, inputs: [relu, later]}\n  - {op: relu, name: later}\n",
        None,
        6,
        ["comes later"],
    ),
    (
        "zero bandwidth",
        None,
        HARDWARE_OK.replace("bandwidth: 1 GB/s", "bandwidth: 0 GB/s"),
        4,
        ["memory.external.bandwidth", "must be positive"],
    ),
    (
        "negative capacity",
        None,
        HARDWARE_OK.replace("capacity: 1 MB", "capacity: -1 MB"),
        3,
        ["memory.internal.capacity", "must be positive"],
    ),
    (
        "negative throughput",
        None,
        HARDWARE_OK.replace("10 GFLOPS", "-10 GFLOPS"),
        7,
        ["compute.vector.throughput", "must be positive"],
    ),
    (
        "unknown unit",
        None,
        HARDWARE_OK.replace("1 GB/s", "1 GQ/s"),
        4,
        [
            "memory.external.bandwidth",
            "unknown unit 'GQ/s'",
            "B/s, kB/s, MB/s, GB/s, TB/s, PB/s (powers of 1000) or KiB/s, MiB/s, GiB/s, TiB/s (powers of 1024)",
        ],
    ),
    ("unknown hardware field", None, HARDWARE_OK + "clock: 1 GHz\n", 8, ["unknown field 'clock'"]),
    (
        "misspelt hardware field",
        None,
        HARDWARE_OK.replace("bandwidth:", "bandwith:"),
        4,
        ["memory.external: unknown field 'bandwith' (did you mean 'bandwidth'?)"],
    ),
    ("unknown precision", None, HARDWARE_OK + "precision: fp64\n", 8, ["precision"]),
    # what a reviewer tried, each once a traceback or a silent coercion
    (
        "op that is a list",
        NETWORK_OK.replace("op: relu", "op: [relu]"),
        None,
        5,
        ["layers[1].op", "unknown op ['relu']"],
    ),
    (
        "mapping as a key",
        NETWORK_OK.replace("{op: relu}", "{op: relu, ? [a, b] : 1}"),
        None,
        5,
        ["a mapping key must be a plain value"],
    ),
    (
        "recursive alias",
        "name: t\ninput: &a [8, 8, *a]\nlayers: []\n",
        None,
        2,
        ["alias refers to a node that contains it"],
    ),
    ("nesting without end", "name: " + "[" * 200 + "]" * 200 + "\n", None, 1, ["nested more than 64 levels deep"]),
    (
        "python tag on a mapping",
        NETWORK_OK.replace("{op: relu}", "!!python/object:os.system {op: relu}"),
        None,
        5,
        ["unsupported YAML tag '!!python/object:os.system'"],
    ),
    (
        "one-input op given none",
        NETWORK_OK.replace("{op: relu}", "{op: relu, inputs: []}"),
        None,
        5,
        ["layers[1].inputs", "relu takes exactly one input, got 0"],
    ),
    (
        "one-input op given two",
        NETWORK_OK.replace("{op: relu}", "{op: relu, inputs: [conv, conv]}"),
        None,
        5,
        ["relu takes exactly one input, got 2"],
    ),
    (
        "layer reading itself",
        NETWORK_OK + "  - {op: add, inputs: [relu, me], name: me}\n",
        None,
        6,
        ["layer 'me' cannot read its own output"],
    ),
    (
        "boolean where a count belongs",
        NETWORK_OK.replace("filters: 4", "filters: true"),
        None,
        4,
        ["layers[0].filters", "valid integer"],
    ),
    ("string where a count belongs", NETWORK_OK.replace("kernel: 3", 'kernel: "3"'), None, 4, ["layers[0].kernel"]),
    ("infinite epsilon", NETWORK_OK + "  - {op: batchnorm, eps: .inf}\n", None, 6, ["layers[2].eps", "finite"]),
    ("even LRN window", NETWORK_OK + "  - {op: lrn, size: 4}\n", None, 6, ["layers[2].size", "must be odd"]),
    (
        "reserved block argument",
        "name: b\ninput: [8, 8, 3]\nblocks:\n  cb:\n    args: [repeat]\n    layers: [{op: relu}]\n"
        "layers:\n  - {use: cb}\n",
        None,
        5,
        ["blocks.cb.args", "'repeat' is a key of every use entry"],
    ),
    (
        "a repeat without end",
        "name: b\ninput: [8, 8, 3]\nblocks:\n  cb:\n    layers: [{op: relu}]\n"
        "layers:\n  - {use: cb, repeat: 100000000}\n",
        None,
        7,
        ["layers[0].repeat", "repeat 100,000,000 expands the network to more than 10,000 layers"],
    ),
    (
        "infinite bandwidth",
        None,
        HARDWARE_OK.replace("1 GB/s", ".inf"),
        4,
        ["memory.external.bandwidth", "must be finite"],
    ),
    ("vanishing bandwidth", None, HARDWARE_OK.replace("1 GB/s", "1.0e-320"), 4, ["must be at least 1 B/s"]),
    (
        "an op listed twice",
        None,
        HARDWARE_OK.replace("{throughput: 1 TFLOPS}", "{throughput: 1 TFLOPS, ops: [conv, conv]}"),
        6,
        ["compute", "op 'conv' is listed twice under 'matrix'"],
    ),
]


@pytest.mark.parametrize(("case", "network", "hardware", "line", "pieces"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_with_location(runner, tmp_path: Path, case, network, hardware, line, pieces) -> None:
    net = tmp_path / "net.yaml"
    hw = tmp_path / "hw.yaml"
    net.write_text(network or NETWORK_OK)
    hw.write_text(hardware or HARDWARE_OK)
    out = tmp_path / "report.json"
    result = runner.invoke(main, ["estimate", str(net), "--hw", str(hw), "-o", str(out)])
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in result.output
    bad_file = net if network else hw
    assert message.startswith(f"error: {bad_file}:{line}: "), message
    for piece in pieces:
        assert piece in message, message
    assert not out.exists()
    assert set(tmp_path.iterdir()) == {net, hw}  # no temporary file left behind either


def test_missing_file(runner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["estimate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'nope.yaml'}: no such file, and no bundled network")


def test_missing_hardware_file(runner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["estimate", "--hw", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml: no such file" in result.stderr


def test_unknown_argument_in_a_block(runner, tmp_path: Path) -> None:
    net = tmp_path / "net.yaml"
    net.write_text(
        "name: b\ninput: [8, 8, 3]\nblocks:\n  cb:\n    args: [filters]\n    layers:\n"
        "      - {op: conv, kernel: 3, filters: $width}\nlayers:\n  - {use: cb, filters: 4}\n"
    )
    result = runner.invoke(main, ["estimate", str(net)])
    assert result.exit_code == 2
    assert re.match(
        rf"error: {re.escape(str(net))}:7: blocks\.cb\.layers\[0\]\.filters: unknown argument \$width", result.stderr
    ), result.stderr


def test_block_layer_errors_name_the_layer_they_became(runner, tmp_path: Path) -> None:
    net = tmp_path / "net.yaml"
    net.write_text(
        "name: b\ninput: [8, 8, 3]\nblocks:\n  cb:\n    args: [k]\n    layers:\n"
        "      - {op: conv, kernel: $k, filters: 4, padding: valid, name: c}\n"
        "layers:\n  - {use: cb, k: 3, name: s1}\n  - {use: cb, k: 7, name: s2}\n"
    )
    result = runner.invoke(main, ["estimate", str(net)])
    assert result.exit_code == 2
    assert "s2.c: kernel 7 > padded input 6" in result.stderr


def test_an_output_that_cannot_be_written_leaves_nothing(runner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["estimate", "-o", str(tmp_path / "missing-dir" / "r.json")])
    assert result.exit_code == 2
    assert "no such directory" in result.stderr
    assert not (tmp_path / "missing-dir").exists()


def test_unknown_output_suffix(runner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["estimate", "-o", str(tmp_path / "r.xlsx")])
    assert result.exit_code == 2
    assert "use a .csv, .md or .json suffix" in result.stderr
    assert not (tmp_path / "r.xlsx").exists()


def test_external_memory_too_small_for_the_schedule(runner, tmp_path: Path) -> None:
    hw = tmp_path / "hw.yaml"
    hw.write_text(HARDWARE_OK.replace("bandwidth: 1 GB/s", "bandwidth: 1 GB/s, capacity: 1 kB"))
    result = runner.invoke(main, ["estimate", "--hw", str(hw)])
    assert result.exit_code == 2
    assert "memory.external.capacity: hairnet with policy paper keeps up to" in result.stderr
    hw.write_text(HARDWARE_OK.replace("bandwidth: 1 GB/s", "bandwidth: 1 GB/s, capacity: 1 GB"))
    assert runner.invoke(main, ["estimate", "--hw", str(hw)]).exit_code == 0


def test_an_output_never_overwrites_an_input_or_another_output(runner, tmp_path: Path) -> None:
    net = tmp_path / "net.yaml"
    net.write_text(NETWORK_OK)
    result = runner.invoke(main, ["estimate", str(net), "--format", "csv", "-o", str(net)])
    assert result.exit_code == 2 and "would overwrite" in result.stderr
    assert net.read_text() == NETWORK_OK
    result = runner.invoke(main, ["estimate", "-o", str(tmp_path / "a.json"), "--trace", str(tmp_path / "a.json")])
    assert result.exit_code == 2 and "would overwrite" in result.stderr
    assert not (tmp_path / "a.json").exists()


def test_an_unwritable_output_is_one_line(runner) -> None:
    result = runner.invoke(main, ["estimate", "-o", "/proc/hwsim-report.md"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: /proc/hwsim-report.md: cannot write")


def test_a_folder_named_like_a_bundled_network_does_not_hide_it(runner, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hairnet").mkdir()
    (tmp_path / "paper-accelerator").write_text("x: [")
    assert runner.invoke(main, ["estimate", "hairnet"]).exit_code == 0
    assert runner.invoke(main, ["reproduce"]).exit_code == 0


@pytest.mark.parametrize(
    "args, listed",
    [
        (["estimate", "hairnett"], "no bundled network of that name; bundled: alexnet, hairnet, hairnet-cifar10"),
        (["estimate", "--hw", "paper-accel"], "hardware profile of that name; bundled: coral-edge-tpu, datacenter-gpu"),
        (["compare", "hairnet", "nets/missing.yaml"], "no bundled network of that name; bundled: alexnet"),
        (["verify", "hairnett"], "bundled: alexnet, hairnet"),
    ],
)
def test_a_name_neither_a_file_nor_bundled_lists_the_bundled_names(runner, args, listed) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {args[-1]}: no such file, and ") and listed in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["estimate", "--batch", "0"], "error: Invalid value for '--batch': 0 is not in the range 1<=x<=1000000."),
        (["estimate", "--bogus"], "error: No such option '--bogus'. Did you mean '--columns'?"),
        (["bogus"], "error: No such command 'bogus'."),
        (["estimate", "hairnet", "alexnet"], "error: Got unexpected extra argument (alexnet)"),
        (["export", "hairnet"], "error: Missing option '-o' / '--output'."),
        (
            ["sweep", "--vary", "memory.internal.capacity=1MB..2MB", "--workers", "0"],
            "error: Invalid value for '--workers': 0 is not in the range 1<=x<=1024.",
        ),
    ],
)
def test_a_command_line_click_refuses_is_one_line(runner, args: list[str], message: str) -> None:
    """Once four lines (click's usage, a hint, a blank line and 'Error: ...'), where every other refusal is one."""
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_hwsim_alone_still_prints_its_help(runner) -> None:
    result = runner.invoke(main, [])
    assert "Usage: main [OPTIONS] COMMAND [ARGS]..." in result.output and "Commands:" in result.output


@pytest.mark.parametrize("name", ["", "a\nb", "x" * 201])
def test_calibrate_refuses_a_name_no_profile_may_have_before_measuring(runner, tmp_path: Path, name: str) -> None:
    """Once it measured, then wrote a profile hwsim refused to read (its name empty or two lines)."""
    result = runner.invoke(main, ["calibrate", "--name", name, "-o", str(tmp_path / "host.yaml")])
    assert result.exit_code == 2 and result.stderr.startswith("error: --name: a name "), result.output
    assert result.stderr.count("\n") == 1 and list(tmp_path.iterdir()) == []
