"""The ``hwsim`` command: a thin shell over :mod:`hwsim.api` — parse arguments, call, render.

Every bad input ends in one line on stderr and exit code 2; no traceback reaches the user.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console

from hwsim import api, bundled, report
from hwsim.costs import COUNTINGS
from hwsim.errors import InputError
from hwsim.schedule import POLICIES
from hwsim.spec.hardware import Precision

INPUT_ERROR_EXIT = 2


def reports_input_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an :class:`InputError` raised anywhere below a command into one line and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(INPUT_ERROR_EXIT)

    return wrapper


def console() -> Console:
    """Wide enough for the per-layer table when output is not a terminal (pipes, tests)."""
    return Console(width=None if sys.stdout.isatty() else 220, soft_wrap=False)


network_argument = click.argument("network", default=bundled.DEFAULT_NETWORK, required=False)
hardware_option = click.option(
    "--hw", "hardware", default=bundled.DEFAULT_HARDWARE, show_default=True,
    help="Hardware profile: a YAML file or a bundled name.",
)
policy_option = click.option("--policy", type=click.Choice(list(POLICIES)), default="paper", show_default=True, help="Scheduler.")
counting_option = click.option(
    "--counting", type=click.Choice(list(COUNTINGS)), default="exact", show_default=True,
    help="exact: the arithmetic really done; paper: the appendix's conventions.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hwsim")
def main() -> None:
    """How fast will this network run on that accelerator, and why?

    \b
    hwsim estimate                                   # HairNet on the paper's accelerator
    hwsim estimate networks/alexnet.yaml --hw hardware/paper-accelerator.yaml -o alexnet.md
    hwsim reproduce                                  # the paper's appendix and its errata
    """


@main.command()
@network_argument
@hardware_option
@policy_option
@counting_option
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Images per batch.")
@click.option("--precision", type=click.Choice([p.value for p in Precision]), default=None, help="Override the profile's precision.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to a file (.csv, .md, .json).")
@click.option("--format", "fmt", type=click.Choice(sorted(report.FORMATS)), help="Report format (default: from the output's suffix).")
@reports_input_errors
def estimate(network: str, hardware: str, policy: str, counting: str, batch: int, precision: str | None, output: Path | None, fmt: str | None) -> None:
    """Estimate per-layer and total latency of NETWORK on a hardware profile.

    NETWORK is a YAML file or a bundled name (default: hairnet).

    \b
    hwsim estimate networks/hairnet.yaml --hw hardware/paper-accelerator.yaml -o report.md
    hwsim estimate networks/hairnet-paper.yaml --hw hardware/paper-appendix.yaml --counting paper
    """
    target_format = report.format_for(output, fmt) if output else fmt
    result = api.estimate(api.load_network(network), api.load_hardware(hardware), policy, counting, batch, precision)
    if output:
        report.write_atomically(output, report.FORMATS[target_format](result))
        click.echo(f"wrote {output}")
    elif target_format:
        click.echo(report.FORMATS[target_format](result), nl=False)
    else:
        report.render_table(result, console())


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Also write the row-by-row comparison as CSV.")
@reports_input_errors
def reproduce(output: Path | None) -> None:
    """The paper's appendix row by row beside hwsim's, then its errata corrected one at a time."""
    from hwsim import reproduce as reproduction

    comparison = reproduction.compare_appendix()
    reproduction.render(comparison, reproduction.errata_chain(), console())
    if output:
        report.write_atomically(output, comparison.rows.to_csv(index=False))
        click.echo(f"wrote {output}")


if __name__ == "__main__":
    main()
