"""Hostile inputs, each class with the smallest input that once broke hwsim (issue 11): one line, exit 2, nothing
written, and no hang, however big the numbers, odd the names, deep the blocks or strange the files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.cli import main
from hwsim.errors import InputError
from hwsim.units import parse_physical, parse_quantity

NETWORK = """\
name: tiny
input: [8, 8, 3]
blocks:
  res:
    layers:
      - {op: conv, kernel: 3, filters: 3, name: out}
  other:
    layers:
      - {op: relu, name: r}
layers:
  - {op: conv, kernel: 3, filters: 4}
  - {op: relu}
"""

HARDWARE = """\
name: hw
memory:
  internal: {capacity: 1 MB}
  external: {bandwidth: 1 GB/s}
compute:
  matrix: {throughput: 1 TFLOPS}
  vector: {throughput: 10 GFLOPS}
"""

HUGE = "1" + "0" * 400
"""An integer beyond a float's range: ``float()`` of it raises OverflowError."""


def one_line_error(result, *pieces: str) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    message = result.stderr
    assert message.count("\n") == 1 and message.startswith("error: "), repr(message)
    for piece in pieces:
        assert piece in message, message
    return message


def estimate(runner, tmp_path: Path, network: str | None = None, hardware: str | None = None, *options: str):
    net, hw = tmp_path / "net.yaml", tmp_path / "hw.yaml"
    net.write_text(network or NETWORK)
    hw.write_text(hardware or HARDWARE)
    return runner.invoke(main, ["estimate", str(net), "--hw", str(hw), *options])


# ---- numbers ---------------------------------------------------------------------------------------------------

NUMBERS = [
    ("input beyond a float", NETWORK.replace("[8, 8, 3]", f"[8, 8, {HUGE}]"), None, "net.yaml:2", "too large"),
    ("filters beyond a float", NETWORK.replace("filters: 4", f"filters: {HUGE}"), None, "net.yaml:11", "too large"),
    (
        "more digits than Python parses",
        NETWORK.replace("filters: 4", f"filters: {'9' * 5000}"),
        None,
        "net.yaml:11",
        "large",
    ),
    (
        "hardware quantity beyond a float",
        None,
        HARDWARE.replace("throughput: 10 GFLOPS", f"throughput: {HUGE}"),
        "hw.yaml:7",
        "too large",
    ),
    (
        "filters 2**40",
        NETWORK.replace("filters: 4", "filters: 1099511627776"),
        None,
        "net.yaml:11: layers[0].filters",
        "1,099,511,627,776 is larger than any size a network takes (1,000,000)",
    ),
    ("input 2**63", NETWORK.replace("[8, 8, 3]", "[8, 8, 9223372036854775808]"), None, "input[2]", "1000000"),
    (
        "a kernel size in a list",
        NETWORK.replace("kernel: 3, filters: 4", "kernel: [3, 10000000], filters: 4"),
        None,
        "layers[0].kernel[1]",
        "larger than any size",
    ),
    ("zero filters", NETWORK.replace("filters: 4", "filters: 0"), None, "layers[0].filters", "greater than 0"),
    ("negative input", NETWORK.replace("[8, 8, 3]", "[8, -8, 3]"), None, "input[1]", "greater than 0"),
    ("infinite eps", NETWORK + "  - {op: batchnorm, eps: .inf}\n", None, "layers[2].eps", "finite"),
    ("nan dropout rate", NETWORK + "  - {op: dropout, rate: .nan}\n", None, "layers[2].rate", "finite"),
    ("zero capacity", None, HARDWARE.replace("capacity: 1 MB", "capacity: 0 MB"), "hw.yaml:3", "positive"),
    ("infinite bandwidth", None, HARDWARE.replace("1 GB/s", ".inf"), "hw.yaml:4", "finite"),
    # the peak lanes or an array imply at a clock was worked out before the fields were checked (fuzz seed 38)
    (
        "infinite lanes",
        None,
        HARDWARE.replace("throughput: 10 GFLOPS", "lanes: -.inf, clock: 1 GHz"),
        "hw.yaml:7: compute.vector.lanes",
        "integer",
    ),
    (
        "an infinite array side",
        None,
        HARDWARE.replace("throughput: 1 TFLOPS", "array: [.inf, 64], dataflow: ws, clock: 1 GHz"),
        "hw.yaml:6: compute.matrix.array[0]",
        "integer",
    ),
    (
        "a map larger than any tensor",
        NETWORK.replace("filters: 4}", "filters: 4, padding: 1000000}"),
        None,
        "net.yaml:11: conv: its output map would hold 64 TB",
        "more than the 1 TB hwsim takes for one tensor",
    ),
]


@pytest.mark.parametrize(("case", "network", "hardware", "where", "what"), NUMBERS, ids=[c[0] for c in NUMBERS])
def test_numbers_beyond_any_size_are_one_line(runner, tmp_path: Path, case, network, hardware, where, what) -> None:
    one_line_error(estimate(runner, tmp_path, network, hardware), where, what)


@pytest.mark.parametrize("policy", ["strict", "optimized"])
def test_a_map_beyond_any_tensor_is_refused_before_any_policy_runs(runner, tmp_path: Path, policy: str) -> None:
    huge_padding = NETWORK.replace("filters: 4}", "filters: 4, padding: 1000000}")
    one_line_error(estimate(runner, tmp_path, huge_padding, None, "--policy", policy), "for one tensor")


@pytest.mark.parametrize("value", [10**400, -(10**400), 10**31])
def test_quantity_parsers_refuse_huge_integers_with_a_value_error(value: int) -> None:
    with pytest.raises(ValueError, match="must"):
        parse_quantity(value, "bytes")
    with pytest.raises(ValueError, match="must"):
        parse_physical(value, "energy")


# ---- names -----------------------------------------------------------------------------------------------------

USE = NETWORK + "  - {use: res, name: NAME}\n"


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("input", "not 'input'"),
        (".x", "without '.'"),
        ("x.", "without '.'"),
        ("a.b", "without '.'"),
        ('"  "', "a visible character"),
        ('"a\\tb"', "no control characters"),
        ("x" * 201, "at most 200 characters"),
    ],
)
def test_use_names_follow_the_rule_of_layer_names(runner, tmp_path: Path, name: str, complaint: str) -> None:
    one_line_error(estimate(runner, tmp_path, USE.replace("NAME", name)), "net.yaml:13: layers[2].name", complaint)
    layer = NETWORK.replace("{op: relu}", f"{{op: relu, name: {name}}}")
    one_line_error(estimate(runner, tmp_path, layer), "net.yaml:12: layers[1].name", complaint)


@pytest.mark.parametrize("name", ['"a\\nb"', '"  "', "x" * 201])
def test_network_and_profile_names_are_visible_one_line_text(runner, tmp_path: Path, name: str) -> None:
    one_line_error(estimate(runner, tmp_path, NETWORK.replace("name: tiny", f"name: {name}")), "net.yaml:1: name")
    one_line_error(estimate(runner, tmp_path, None, HARDWARE.replace("name: hw", f"name: {name}")), "hw.yaml:1: name")


@pytest.mark.parametrize(
    ("unit", "complaint"),
    [
        ("''", "a visible character"),
        ('"v\\nx"', "no control characters"),
        ("v.x", "without '.'"),
        ("v" * 201, "at most 200"),
    ],
)
def test_compute_unit_names_are_visible_text_without_dots(runner, tmp_path: Path, unit: str, complaint: str) -> None:
    """Once any key: a unit named '' or 'a\\nb' printed as it is in reports, 'a.b' unreachable by a sweep's
    dotted field (compute.a.b.throughput)."""
    hardware = HARDWARE.replace("  vector:", f"  {unit}: {{throughput: 1 GFLOPS}}\n  vector:")
    one_line_error(estimate(runner, tmp_path, None, hardware), "hw.yaml:6: compute: unit name", complaint)


def test_a_name_a_repeat_generates_cannot_be_taken_again(runner, tmp_path: Path) -> None:
    # once a KeyError: 's.block2.out'
    dotted = NETWORK + "  - {use: res, repeat: 2, name: s}\n  - {use: other, name: s.block1}\n"
    one_line_error(estimate(runner, tmp_path, dotted), "layers[3].name", "without '.'")
    # the same instance name reached without a dot: x (whose block uses one named block1), then x repeated
    nested = NETWORK.replace(
        "layers:\n  - {op: conv", "  outer:\n    layers:\n      - {use: other, name: block1}\nlayers:\n  - {op: conv"
    )
    nested += "  - {use: outer, name: x}\n  - {use: res, repeat: 2, name: x}\n"
    one_line_error(estimate(runner, tmp_path, nested), "layers[3]", "'x.block1' is already taken")


def test_block_names_follow_the_rule(runner, tmp_path: Path) -> None:
    one_line_error(estimate(runner, tmp_path, NETWORK.replace("  other:", "  a.b:")), "blocks", "without '.'")


@pytest.mark.parametrize("tag", ["!!binary aGVsbG8=", "!!set {a}", "!!python/none ''", "!custom x"])
def test_yaml_tags_beyond_plain_values_are_refused(runner, tmp_path: Path, tag: str) -> None:
    one_line_error(estimate(runner, tmp_path, NETWORK.replace("name: tiny", f"name: {tag}")), "net.yaml:1", "YAML tag")


def test_an_unquoted_date_is_text(runner, tmp_path: Path) -> None:
    result = estimate(runner, tmp_path, NETWORK.replace("name: tiny", "name: 2024-01-01"))
    assert result.exit_code == 0, result.output
    assert "2024-01-01 on hw" in result.stdout


# ---- depth -----------------------------------------------------------------------------------------------------


def chained_blocks(count: int) -> str:
    """``count`` blocks, each using the next; the last holds a relu."""
    lines = ["name: deep", "input: [8, 8, 3]", "blocks:"]
    for i in range(count):
        body = f"{{use: b{i + 1}}}" if i < count - 1 else "{op: relu}"
        lines += [f"  b{i}:", "    layers:", f"      - {body}"]
    return "\n".join([*lines, "layers:", "  - {use: b0}", ""])


def test_blocks_nested_without_end_are_one_line(runner, tmp_path: Path) -> None:
    # once a RecursionError at 500 blocks
    one_line_error(estimate(runner, tmp_path, chained_blocks(500)), "blocks.b31.layers[0].use", "more than 32 deep")
    one_line_error(estimate(runner, tmp_path, chained_blocks(33)), "more than 32 deep (b0 -> b1 -> b2 -> ...")
    assert estimate(runner, tmp_path, chained_blocks(32)).exit_code == 0


# ---- files -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/dev/zero", "a character device"), ("/dev/urandom", "a character device"), ("/dev/null", "a character device")],
)
def test_a_device_as_input_is_refused_unread(runner, path: str, kind: str) -> None:
    one_line_error(runner.invoke(main, ["estimate", path]), f"error: {path}: is {kind}, not a YAML file")
    one_line_error(runner.invoke(main, ["estimate", "--hw", path]), f"error: {path}: is {kind}")


def test_a_folder_as_input_is_refused(runner, tmp_path: Path) -> None:
    one_line_error(runner.invoke(main, ["estimate", str(tmp_path)]), "is a directory, not a YAML file")


def test_a_fifo_as_input_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "net.yaml"
    os.mkfifo(fifo)
    # a subprocess, so that a regression hangs only it (timeout) and not the test run
    done = subprocess.run(
        [sys.executable, "-m", "hwsim", "estimate", str(fifo)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stderr == f"error: {fifo}: is a FIFO (named pipe), not a YAML file\n"


def test_a_network_over_the_size_cap_is_refused_before_reading(runner, tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.truncate(10_000_001)  # sparse: nothing is written, nothing would be read
    one_line_error(runner.invoke(main, ["estimate", str(big)]), "10,000,001 bytes, more than the 10,000,000")


def test_a_profile_that_is_not_utf8_is_one_line(runner, tmp_path: Path) -> None:
    hw = tmp_path / "hw.yaml"
    hw.write_bytes(b"name: \xff\n")
    one_line_error(runner.invoke(main, ["estimate", "--hw", str(hw)]), "not UTF-8 text")


@pytest.mark.parametrize("make", ["device", "fifo", "directory"])
def test_an_output_that_is_not_a_regular_file_is_refused_and_left_alone(runner, tmp_path: Path, make: str) -> None:
    # once, as root, "wrote /dev/full" and /dev/full replaced by a regular file
    if make == "device":
        output = Path("/dev/null")
    elif make == "fifo":
        output = tmp_path / "report.md"
        os.mkfifo(output)
    else:
        output = tmp_path / "report.md"
        output.mkdir()
    before = os.stat(output).st_mode
    result = runner.invoke(main, ["estimate", "-o", str(output), "--format", "md"])
    one_line_error(
        result, {"device": "is a character device", "fifo": "is a FIFO", "directory": "is a directory"}[make]
    )
    assert os.stat(output).st_mode == before
    assert not stat.S_ISREG(os.stat(output).st_mode)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["ops", "hairnet", "--write"], "g.csv"),
        (["ops", "hairnet", "--check"], "g.csv"),
        (["import"], "m.onnx"),
        (["export", "hairnet", "-o", "out.onnx", "--checkpoint"], "c.npz"),
        (["predict", "hairnet-cifar10-small", "--checkpoint"], "c.npz"),
        (["train", "hairnet-cifar10-small", "--epochs", "1", "--checkpoint"], "c.npz"),
        (["train", "hairnet-cifar10-small", "--epochs", "1", "--resume"], "c.npz"),
        (["train", "hairnet-cifar10-small", "--epochs", "1", "--metrics"], "m.csv"),
        (
            [
                "search",
                "hairnet",
                "--vary",
                "memory.external.bandwidth=1GB/s..2GB/s",
                "--objective",
                "latency",
                "--front",
            ],
            "f.csv",
        ),
    ],
)
def test_a_directory_named_as_any_file_an_option_reads_or_writes_is_one_line(
    runner, tmp_path: Path, args: list[str], name: str
) -> None:
    """Once click's usage error, three lines: every file option leaves a directory to hwsim's own checks."""
    (tmp_path / name).mkdir()
    result = runner.invoke(main, [*(a if a != "out.onnx" else str(tmp_path / a) for a in args), str(tmp_path / name)])
    one_line_error(result, f"{name}: is a directory")
    assert not any((tmp_path / name).iterdir()) and not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize(
    ("command", "option", "name"),
    [
        ("estimate", "--trace", "t.json"),
        ("estimate", "--plot", "p.png"),
        ("compare", "-o", "c.csv"),
        ("roofline", "-o", "r.png"),
        ("validate", "-o", "v.csv"),
    ],
)
def test_a_directory_named_as_an_output_is_one_line(
    runner, tmp_path: Path, command: str, option: str, name: str
) -> None:
    """Once click's usage error, three lines (its check of the option came before hwsim's)."""
    (tmp_path / name).mkdir()
    one_line_error(runner.invoke(main, [command, option, str(tmp_path / name)]), f"{name}: is a directory")
    assert not any((tmp_path / name).iterdir())


@pytest.mark.parametrize(("command", "option"), [("estimate", "-o"), ("estimate", "--trace"), ("compare", "-o")])
def test_a_file_name_ending_in_a_separator_is_refused_not_written_without_it(
    runner, tmp_path: Path, command: str, option: str
) -> None:
    """``-o out.csv/`` once wrote ``out.csv``: the ``Path`` click made of it had dropped the slash."""
    one_line_error(runner.invoke(main, [command, option, f"{tmp_path / 'out.csv'}/"]), "out.csv/", "names a folder")
    assert not any(tmp_path.iterdir())


def test_an_output_through_a_symlink_writes_its_target_and_keeps_the_link(runner, tmp_path: Path) -> None:
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    link.symlink_to(target)
    result = runner.invoke(main, ["estimate", "-o", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().startswith("layer,")
    target.write_text("old")
    assert runner.invoke(main, ["estimate", "-o", str(link)]).exit_code == 0
    assert link.is_symlink() and target.read_text().startswith("layer,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv"]


def test_a_symlink_to_a_device_is_refused(runner, tmp_path: Path) -> None:
    link = tmp_path / "out.md"
    link.symlink_to("/dev/null")
    one_line_error(runner.invoke(main, ["estimate", "-o", str(link), "--format", "md"]), "is a character device")
    assert link.is_symlink()


@pytest.mark.parametrize("option", ["-o", "--plot", "network"])
def test_a_file_name_too_long_is_one_line(runner, tmp_path: Path, option: str) -> None:
    # once an OSError traceback
    name = str(tmp_path / ("x" * 300)) + (".png" if option == "--plot" else ".md")
    args = ["estimate", name] if option == "network" else ["estimate", option, name]
    one_line_error(runner.invoke(main, args), "file name too long")
    assert list(tmp_path.iterdir()) == []


def test_input_errors_read_as_input_errors_through_the_api(tmp_path: Path) -> None:
    from hwsim import api

    with pytest.raises(InputError, match="is a character device"):
        api.load_hardware("/dev/zero")


def test_a_golden_file_that_is_a_device_is_refused(runner) -> None:
    one_line_error(runner.invoke(main, ["ops", "hairnet", "--check", "/dev/zero"]), "is a character device")


@pytest.mark.parametrize(
    ("cells", "complaint"),
    [("x," + "1" * 200_000, "field larger than field limit"), ('x,conv,"1', "unexpected end of data")],
)
def test_a_golden_file_the_csv_module_cannot_read_is_one_line(
    runner, tmp_path: Path, cells: str, complaint: str
) -> None:
    """Once a traceback from the csv module (a cell beyond its limit)."""
    golden = tmp_path / "golden.csv"
    golden.write_text(f"layer,op,forward,forward_train,backward,optimizer\n{cells}\n")
    one_line_error(runner.invoke(main, ["ops", "hairnet", "--check", str(golden)]), "golden.csv:2: not CSV", complaint)


# ---- characters YAML refuses, loops of links, messages that quote a line break ------------------------------------


@pytest.mark.parametrize(
    ("network", "hardware", "where", "code"),
    [
        (NETWORK.replace("name: tiny", "name: ti\x00ny"), None, "net.yaml:1:", "U+0000"),
        (NETWORK + '  - {op: relu, name: "r\x1b"}\n', None, "net.yaml:13:", "U+001B"),
        (None, HARDWARE.replace("\n", "\r\n") + "\x07\r\n", "hw.yaml:8:", "U+0007"),
    ],
)
def test_a_character_yaml_refuses_is_one_line_at_its_line(
    runner, tmp_path: Path, network, hardware, where: str, code: str
) -> None:
    """Once two lines: PyYAML's reader error ends with 'in "<unicode string>", position 8' on a line of its own."""
    one_line_error(estimate(runner, tmp_path, network, hardware), where, f"{code} is a character YAML does not allow")


def test_a_file_of_more_values_than_any_network_stops_where_it_passes_the_limit(runner, tmp_path: Path) -> None:
    """Once composed whole before the limit was checked: 9 MB of one-line layers made 2.4 million nodes (13 s of
    CPU, 780 MB). Now reading stops at node 100,001, on line 33,331 (the first 13 lines hold 31 nodes, then each
    layer 3: its mapping, key and value), where a check after composing would stop later, if at all."""
    one_line_error(
        estimate(runner, tmp_path, NETWORK + "  - {op: relu}\n" * 40_000), "net.yaml:33331: more than 100,000"
    )


def test_a_loop_of_symlinks_as_a_checkpoint_is_one_line(runner, tmp_path: Path) -> None:
    """Once a RuntimeError traceback: Path.resolve raises it on a loop (Python 3.10 to 3.12)."""
    loop = tmp_path / "run.npz"
    loop.symlink_to(loop)
    result = runner.invoke(main, ["train", "hairnet-cifar10-small", "--epochs", "1", "--resume", str(loop)])
    one_line_error(result, "run.npz: cannot write", "symbolic links")
    assert loop.is_symlink() and [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_an_input_error_is_one_line_whatever_its_message_quotes() -> None:
    err = InputError("the library said:\nline two\r\nline three", "net.yaml:3", "layers[0]")
    assert str(err) == "net.yaml:3: layers[0]: the library said: line two line three"


@pytest.mark.parametrize("columns", ["1", "5"])
def test_a_terminal_too_narrow_for_any_column_still_prints(runner, columns: str) -> None:
    """Once an IndexError: the hint naming columns to pick took the first column shown, and none was."""
    result = runner.invoke(main, ["estimate", "hairnet-cifar10-small"], env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "--wide" in result.output.replace("\n", "")


@pytest.mark.parametrize("columns", ["0", "-3", "wide"])
def test_columns_that_are_no_width_count_as_unset(runner, columns: str) -> None:
    """COLUMNS=0 once printed an empty table: rich took it for a width of 0."""
    unset = runner.invoke(main, ["estimate", "hairnet-cifar10-small"])
    result = runner.invoke(main, ["estimate", "hairnet-cifar10-small"], env={"COLUMNS": columns})
    assert result.exit_code == 0 and "conv" in result.output and result.output == unset.output


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("args", [["estimate", "hairnet-cifar10-small"], ["estimate", "--format", "csv"], ["--help"]])
def test_a_standard_output_that_cannot_be_written_is_one_line(args: list[str]) -> None:
    """Once an OSError traceback (No space left on device), and the interpreter's last flush said it again."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "hwsim", *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60
        )
    assert done.returncode == 2
    assert done.stderr == "error: standard output: cannot write: No space left on device\n"
