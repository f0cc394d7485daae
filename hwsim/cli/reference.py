"""Commands that execute networks in the NumPy reference: verify op counts, keep them under regression."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hwsim import api, report
from hwsim.cli.common import batch_option, console, counting_option, network_argument, reports_input_errors
from hwsim.errors import InputError


@click.command()
@network_argument
@counting_option
@batch_option
@reports_input_errors
def verify(network: str, counting: str, batch: int) -> None:
    """Execute NETWORK in the NumPy reference and compare its ops with the cost model, layer by layer.

    Runs an inference forward, a training forward and backward under cross-entropy, and one Adam
    step, counting every operation performed. Exits 1 if any modelled count differs.

    \b
    hwsim verify networks/hairnet.yaml
    hwsim verify networks/hairnet-paper.yaml --counting paper   # where the paper's counts go wrong
    """
    from hwsim import verify as verification

    result = verification.verify(api.load_network(network), api.counting_named(counting), batch)
    verification.render_verification(result, console())
    sys.exit(1 if result.differences else 0)


@click.command()
@network_argument
@counting_option
@batch_option
@click.option("--write", "write_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the counts as a golden CSV file.")
@click.option("--check", "check_path", type=click.Path(dir_okay=False, path_type=Path), help="Compare with a golden CSV file; exit 1 on any difference.")
@reports_input_errors
def ops(network: str, counting: str, batch: int, write_path: Path | None, check_path: Path | None) -> None:
    """Modelled ops of NETWORK per layer: inference forward, training forward, backward, Adam step.

    \b
    hwsim ops networks/hairnet.yaml
    hwsim ops networks/hairnet.yaml --write tests/golden/hairnet.ops.csv
    hwsim ops networks/hairnet.yaml --check tests/golden/hairnet.ops.csv
    """
    from hwsim import verify as verification

    if write_path and check_path:
        raise InputError("--write and --check exclude each other")
    rows = verification.op_table(api.load_network(network), api.counting_named(counting), batch)
    if write_path:
        report.write_atomically(write_path, verification.format_op_table(rows))
        click.echo(f"wrote {write_path}")
    elif check_path:
        differences = verification.golden_differences(verification.read_golden(check_path), rows)
        for line in differences:
            click.echo(line)
        click.echo(f"{len(differences)} differences from {check_path}" if differences else f"matches {check_path}")
        sys.exit(1 if differences else 0)
    else:
        click.echo(verification.format_op_table(rows), nl=False)
