"""Commands that hold hwsim to measurements: validate, and calibrate (this machine as a profile)."""

from __future__ import annotations

from pathlib import Path

import click

from hwsim import files
from hwsim.cli.common import check_outputs, console, emit, format_option, output_option, reports_input_errors
from hwsim.errors import InputError


@click.command()
@click.option(
    "--host", is_flag=True, help="Also measure this machine and compare the NumPy reference's latency (seconds)."
)
@output_option("Write every row to a file (.csv, .md, .json).")
@format_option
@reports_input_errors
def validate(host: bool, output: Path | None, fmt: str | None) -> None:
    """hwsim's predictions beside published measurements and SCALE-Sim's cycles, with errors and sources.

    Eyeriss v1 (AlexNet and VGG-16 conv layers: frames/s, DRAM accesses per MAC, chip power), the Coral
    Edge TPU (latency of MobileNet v1 and v2 and of a stack of convolutions) and SCALE-Sim v3's compute cycles
    for every layer of its committed runs. Held-out figures are summarised apart from any a profile value was
    fitted on, and both apart from Eyeriss's processing time on given mappings (kind 'given mapping', a
    diagnostic).

    \b
    hwsim validate                          # the table and the summary by group
    hwsim validate -o validation.csv        # every row, SCALE-Sim's layers included (.csv, .md, .json)
    hwsim validate --host                   # and this machine: calibrate, then time the NumPy reference
    """
    from hwsim.report import validation as report
    from hwsim.studies import validation

    target = _format(output, fmt, report.FORMATS)
    check_outputs([], [output])
    result = validation.validate_all(validation.host_rows() if host else ())
    emit(result, output, target, report.FORMATS, report.render)


@click.command()
@output_option("Write the profile to a file (.yaml).")
@click.option("--name", default="host", show_default=True, help="The profile's name.")
@reports_input_errors
def calibrate(output: Path | None, name: str) -> None:
    """Measure this machine (GEMM per precision, element-wise throughput, memory bandwidth, caches, the NumPy
    reference's cost per layer) into a hardware profile.

    \b
    hwsim calibrate -o host.yaml
    hwsim estimate hairnet --hw host.yaml --policy strict
    """
    from hwsim.spec.names import text_problem
    from hwsim.studies.calibrate import host_profile, measure

    if problem := text_problem(name):  # a profile hwsim itself would refuse to read
        raise InputError(problem, field="--name")
    if output and output.suffix.lower() not in (".yaml", ".yml"):
        raise InputError(f"a profile is YAML; use a .yaml suffix, not {output.name!r}", str(output))
    check_outputs([], [output])
    profile = host_profile(measure(), name)
    if output:
        files.write_atomically(output, profile)
        click.echo(f"wrote {output}")
    else:
        console().print(profile, highlight=False, markup=False, end="")


def _format(output: Path | None, fmt: str | None, formats: dict) -> str | None:
    """``--format``, else the output's suffix; refused before any work."""
    if not output:
        return fmt
    chosen = fmt or {"markdown": "md"}.get(output.suffix.lstrip(".").lower(), output.suffix.lstrip(".").lower())
    if chosen not in formats:
        raise InputError(
            f"cannot tell the format from {output.name!r}; use a .csv, .md or .json suffix or --format", str(output)
        )
    return chosen
