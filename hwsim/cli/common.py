"""What the commands share: the input-error boundary, the console, options and output helpers."""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hwsim import bundled, files
from hwsim.cost.inference import COUNTINGS
from hwsim.errors import INPUT_ERROR_EXIT, InputError
from hwsim.report import tables
from hwsim.report.plain import PIPE_WIDTH, PlainConsole, pipe_width, plain_output
from hwsim.report.terminal import FITTED, View
from hwsim.schedule import POLICIES
from hwsim.spec.hardware import Precision

if TYPE_CHECKING:
    from hwsim.model.graph import Graph
    from hwsim.report.terminal import Screen
    from hwsim.spec.hardware import HardwareSpec


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


def console() -> Screen:
    """The terminal's width (or COLUMNS); :data:`PIPE_WIDTH` when output goes to a pipe or a file, where a
    :class:`PlainConsole` prints what rich would without rich's start-up and rendering time."""
    width = pipe_width()
    if width is not None and plain_output():
        return PlainConsole(width)
    from rich.console import Console

    if width is None:  # COLUMNS set, but not to a width: as if unset (rich would take COLUMNS=0 for 0 columns)
        width = shutil.get_terminal_size((PIPE_WIDTH, 24)).columns if sys.stdout.isatty() else PIPE_WIDTH
    elif sys.stdout.isatty() and "COLUMNS" not in os.environ:
        width = None  # the terminal's
    return Console(width=width, soft_wrap=False)


def stacked(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click decorators as one, applied in the order written."""

    def apply(command: Any) -> Any:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


network_argument = click.argument("network", default=bundled.DEFAULT_NETWORK, required=False)
hardware_option = click.option(
    "--hw",
    "hardware",
    default=bundled.DEFAULT_HARDWARE,
    show_default=True,
    help="Hardware profile: a YAML file or a bundled name.",
)
POLICIES_IN_A_LINE = """
\b
paper: the appendix's rules, serial
strict: what a step holds fits at once, serial
optimized: fused, streamed and overlapped
"""
"""One line per policy, short enough for an 80-column terminal (docs/schedulers.md says more)."""
POLICY_HELP = "How layers are scheduled (docs/schedulers.md).\n" + POLICIES_IN_A_LINE

policy_option = click.option(
    "--policy", type=click.Choice(list(POLICIES)), default="paper", show_default=True, help=POLICY_HELP
)
counting_option = click.option(
    "--counting",
    type=click.Choice(list(COUNTINGS)),
    default="exact",
    show_default=True,
    help="exact: the arithmetic really done; paper: the appendix's conventions.",
)
batch_option = click.option(
    "--batch", type=click.IntRange(min=1, max=1_000_000), default=1, show_default=True, help="Images per batch."
)
precision_option = click.option(
    "--precision",
    type=click.Choice([p.value for p in Precision]),
    default=None,
    help="Override the profile's precision.",
)
map_zeros_option = click.option(
    "--map-zeros",
    "map_zeros",
    metavar="FRACTION|FILE",
    help="The maps' fraction of zeros (a property of the data): one for all maps, or a .yaml/.csv file per layer. "
    "A profile whose link codes maps (map_coding) moves them coded; without it, raw.",
)
steady_state_option = click.option(
    "--steady-state/--no-steady-state",
    "steady_state",
    default=None,
    help="Repeated inference: weights that fit stay on chip across images (default: the profile's steady_state).",
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(tables.FORMATS)),
    help="Report format (default: from the output's suffix).",
)


class FilePath(click.Path):
    """A file argument's or option's type (:func:`file_option`). A name ending in a separator names a folder,
    never a file: refused here, since the ``Path`` it becomes has lost the separator (``-o out.csv/`` would
    write ``out.csv``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = os.fsdecode(value) if isinstance(value, (str, bytes)) else ""
        if len(text) > 1 and text.endswith((os.sep, *(os.altsep or ""))):
            self.fail(f"{text!r} ends with {text[-1]!r}: that names a folder; give a file's name", param, ctx)
        return super().convert(value, param, ctx)


FILE = FilePath(path_type=Path)


def file_option(*decls: str, **kwargs: Any) -> Callable[[Any], Any]:
    """A file option, read or written. A directory given is left to hwsim's own checks (the readers, and
    :func:`hwsim.files.output_target`), which refuse it in one line as every bad input is, not to click's, whose
    usage error takes three."""
    return click.option(*decls, type=FILE, metavar="FILE", **kwargs)


plot_option = file_option("--plot", help="Also draw a plot (.png or .svg).")

max_memory_option = click.option(
    "--max-memory",
    metavar="SIZE",
    help="Memory the NumPy reference may take, e.g. 8GB (default: $HWSIM_MAX_MEMORY, else 4 GB); "
    "a run estimated to need more is refused before it starts.",
)

pool_options = stacked(
    click.option(
        "--workers",
        type=click.IntRange(min=1, max=1024),
        help="Worker processes for strict and optimized (default: every core; 1 runs in this process).",
    ),
    click.option(
        "--dask",
        metavar="ADDRESS",
        help="Run on a Dask cluster: its scheduler (tcp://host:8786), or 'local' to start one here "
        "(pip install 'hwsim[cluster]'; docs/compare.md).",
    ),
)
"""--workers and --dask: where the points of a sweep or the trials of a search are scheduled."""


def _input_shape(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    from hwsim.spec.onnx_reader import parse_input_shape

    try:
        return parse_input_shape(value)
    except InputError as err:
        raise click.BadParameter(err.message) from None


input_shape_option = click.option(
    "--input-shape",
    callback=_input_shape,
    metavar="DIMS",
    help="An ONNX model's input dims in its own order, e.g. 1x3x224x224: needed where the model leaves them open.",
)

run_options = stacked(
    network_argument,
    hardware_option,
    policy_option,
    counting_option,
    batch_option,
    precision_option,
    input_shape_option,
)
"""NETWORK --hw --policy --counting --batch --precision --input-shape: what one estimate needs."""


def _column_keys(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    return tuple(key.strip() for key in value.split(",") if key.strip()) if value else ()


table_options = stacked(
    click.option("--wide", is_flag=True, help="Print every column of the table, however wide it gets."),
    click.option(
        "--columns",
        callback=_column_keys,
        metavar="A,B,...",
        help="Print these columns, named as in the CSV (layer,total_s,note); a wrong name lists them all.",
    ),
)
"""--wide and --columns: without them a terminal table shows the columns that fit, most important first."""


def output_option(help: str, **kwargs: Any) -> Callable[[Any], Any]:
    """An output file option (:func:`file_option`)."""
    return file_option("-o", "--output", help=help, **kwargs)


def vary_option(help: str) -> Callable[[Any], Any]:
    """--vary FIELD=LO..HI: the hardware fields a sweep or a search explores (hwsim/studies/sweep.py parses them)."""
    return click.option(
        "--vary", "varies", multiple=True, required=True, metavar="FIELD=LO..HI[:lin|log][:N]", help=help
    )


def require_suffix(output: Path | None, suffixes: tuple[str, ...], what: str) -> None:
    """Refuse an output file of the wrong kind before any work is done."""
    if output and output.suffix.lower() not in suffixes:
        raise InputError(f"{what}; use a {suffixes[0]} suffix, not {output.name!r}", str(output))


def check_distinct_paths(inputs: list[Path], outputs: list[Path]) -> None:
    """Refuse an output that would overwrite an input file or another output of the same command."""
    seen: dict[Path, Path] = {files.resolved(path): path for path in inputs if files.exists(path)}
    for output in outputs:
        resolved = files.resolved(output)
        if resolved in seen:
            raise InputError(f"would overwrite {seen[resolved]}, which this command also uses", str(output))
        seen[resolved] = output


def check_outputs(inputs: list[Path], outputs: list[Path | None]) -> None:
    """Every output distinct from the inputs and from each other, and writable: checked before any work."""
    given = [path for path in outputs if path is not None]
    for path in given:
        files.check_writable(path)
    check_distinct_paths(inputs, given)


def load_inputs(
    network: str, hardware: str, outputs: list[Path | None], input_shape: tuple[int, ...] | None
) -> tuple[Graph, HardwareSpec]:
    """The network's graph (an ONNX model's with ``input_shape``) and the profile, files or bundled names, once
    the outputs are checked against them."""
    from hwsim import api

    network_path, hardware_path = bundled.resolve("networks", network), bundled.resolve("hardware", hardware)
    check_outputs([network_path, hardware_path], outputs)
    return api.load_network(network_path, input_shape), api.load_hardware(hardware_path)


def output_format(output: Path | None, fmt: str | None) -> str | None:
    """The format to write or print in (``--format``, else the output's suffix); checked before any work."""
    return tables.format_for(output, fmt) if output else fmt


def emit(
    subject: Any,
    output: Path | None,
    target_format: str | None,
    formats: dict[str, Callable[[Any], str]],
    render: Callable[[Any, Screen, View], None],
    view: View = FITTED,
) -> None:
    """Write ``subject`` to ``output``, print it in ``target_format``, or render it as a table."""
    if output:
        assert target_format is not None, "an output's format comes from its suffix or --format"
        files.write_atomically(output, formats[target_format](subject))
        click.echo(f"wrote {output}")
    elif target_format:
        click.echo(formats[target_format](subject), nl=False)
    else:
        render(subject, console(), view)


def check_plot_path(plot: Path | None) -> None:
    """Reject an image suffix we cannot write before any work is done."""
    if plot:
        from hwsim.report import plots

        plots.image_format(plot)


def save_plot(draw: Callable[[Any], Any], subject: Any, plot: Path) -> None:
    from hwsim.report import plots

    plots.save(draw(subject), plot)
    click.echo(f"wrote {plot}")
