"""Commands that execute networks in the NumPy reference: verify op counts, keep them under regression."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hwsim import api, files
from hwsim.cli.common import (
    check_outputs,
    console,
    counting_option,
    file_option,
    input_shape_option,
    max_memory_option,
    network_argument,
    reports_input_errors,
    require_suffix,
    table_options,
)
from hwsim.errors import InputError
from hwsim.report.terminal import View

MAX_VERIFY_BATCH = 64
"""verify executes every image: HairNet at 224x224 takes about 160 MB per image (forward, backward, Adam),
10 GB at 64."""
MAX_OPS_BATCH = 4096
"""ops only models counts, so its cap is generous; it keeps every count far below 2**63."""


def reference_batch_option(maximum: int, why: str) -> Callable[[Any], Any]:
    """--batch capped at ``maximum``: the reference (or its counts) would otherwise exhaust memory."""
    return click.option(
        "--batch",
        type=click.IntRange(1, maximum),
        default=1,
        show_default=True,
        help=f"Images per batch, at most {maximum:,} ({why}).",
    )


@click.command()
@network_argument
@counting_option
@reference_batch_option(MAX_VERIFY_BATCH, "every image is executed, in memory at once")
@max_memory_option
@table_options
@click.option(
    "--runtime",
    type=click.Choice(["onnxruntime"]),
    help="Also run NETWORK in this runtime and compare its output with the reference's (needs the onnx extra).",
)
@input_shape_option
@reports_input_errors
def verify(
    network: str,
    counting: str,
    batch: int,
    max_memory: str | None,
    wide: bool,
    columns: tuple[str, ...],
    runtime: str | None,
    input_shape: tuple[int, ...] | None,
) -> None:
    """Execute NETWORK in the NumPy reference and compare its ops with the cost model, layer by layer.

    Runs an inference forward, a training forward and backward under cross-entropy, and one Adam
    step, counting every operation performed. With --runtime onnxruntime, also runs NETWORK in ONNX
    Runtime (an ONNX model with its own weights, a YAML network exported with random ones) and compares
    the outputs (relative error at most 1e-4). Exits 1 if any modelled count or the outputs differ.

    \b
    hwsim verify networks/hairnet.yaml
    hwsim verify networks/hairnet-paper.yaml --counting paper   # where the paper's counts go wrong
    hwsim verify resnet18.onnx --runtime onnxruntime           # the import's conventions, checked
    """
    from hwsim.report.studies import render_verification
    from hwsim.studies import verify as verification

    if runtime:
        from hwsim.interchange.runtime import require_onnxruntime

        require_onnxruntime()
    graph = api.load_network(network, input_shape)
    failed = False
    if runtime and not verification.trains(graph):
        click.echo(
            f"{graph.name}: op counts not verified: training them needs a network that ends in softmax"
            " (one vector per image)"
        )
    else:
        result = verification.verify(graph, api.counting_named(counting), batch, max_memory=max_memory)
        render_verification(result, console(), View(wide, columns))
        failed = bool(result.differences)
    if runtime:
        from hwsim.studies.runtime import runtime_agreement

        agreement = runtime_agreement(network, input_shape, batch, max_memory=max_memory)
        click.echo(agreement.summary())
        failed = failed or not agreement.agrees
    sys.exit(1 if failed else 0)


@click.command()
@network_argument
@counting_option
@reference_batch_option(MAX_OPS_BATCH, "modelled, not executed")
@file_option(
    "--write",
    "write_path",
    help="Write the counts as a golden CSV file.",
)
@file_option(
    "--check",
    "check_path",
    help="Compare with a golden CSV file; exit 1 on any difference.",
)
@table_options
@input_shape_option
@reports_input_errors
def ops(
    network: str,
    counting: str,
    batch: int,
    write_path: Path | None,
    check_path: Path | None,
    input_shape: tuple[int, ...] | None,
    wide: bool,
    columns: tuple[str, ...],
) -> None:
    """Modelled ops of NETWORK per layer: inference forward, training forward, backward, Adam step.

    A table in a terminal; CSV, the golden files' format, when the output goes to a pipe or a file
    (unless --wide or --columns asks for the table).

    \b
    hwsim ops networks/hairnet.yaml
    hwsim ops networks/hairnet.yaml --write tests/golden/hairnet.ops.csv
    hwsim ops networks/hairnet.yaml --check tests/golden/hairnet.ops.csv
    """
    from hwsim.studies import verify as verification

    if write_path and check_path:
        raise InputError("--write and --check exclude each other")
    require_suffix(write_path, (".csv",), "golden op counts are written as CSV")
    check_outputs([Path(network)], [write_path])
    graph = api.load_network(network, input_shape)
    rows = verification.op_table(graph, api.counting_named(counting), batch)
    if write_path:
        files.write_atomically(write_path, verification.format_op_table(rows))
        click.echo(f"wrote {write_path}")
    elif check_path:
        differences = verification.golden_differences(verification.read_golden(check_path), rows)
        for line in differences:
            click.echo(line)
        click.echo(f"{len(differences)} differences from {check_path}" if differences else f"matches {check_path}")
        sys.exit(1 if differences else 0)
    elif sys.stdout.isatty() or wide or columns:
        from hwsim.report.studies import render_op_table

        render_op_table(rows, graph.name, console(), View(wide, columns))
    else:
        click.echo(verification.format_op_table(rows), nl=False)
