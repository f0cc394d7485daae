"""The ``hwsim`` command: a thin shell over :mod:`hwsim.api` — parse arguments, call, render.

Each family of commands lives in its own module and is imported only when it runs, so
``hwsim estimate`` does not pay for the training stack's imports. Every bad input ends in one
line on stderr and exit code 2; no traceback reaches the user.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import gc
import importlib
import io
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

from hwsim.errors import INPUT_ERROR_EXIT

COMMANDS = {
    "estimate": "hwsim.cli.estimate:estimate",
    "compare": "hwsim.cli.estimate:compare",
    "sweep": "hwsim.cli.estimate:sweep",
    "roofline": "hwsim.cli.estimate:roofline",
    "search": "hwsim.cli.search:search",
    "reproduce": "hwsim.cli.paper:reproduce",
    "claims": "hwsim.cli.paper:claims",
    "verify": "hwsim.cli.reference:verify",
    "ops": "hwsim.cli.reference:ops",
    "import": "hwsim.cli.interchange:import_model",
    "export": "hwsim.cli.interchange:export_model",
    "train": "hwsim.cli.training:train",
    "predict": "hwsim.cli.training:predict",
    "experiment": "hwsim.cli.training:experiment",
    "validate": "hwsim.cli.accelerators:validate",
    "calibrate": "hwsim.cli.accelerators:calibrate",
}
"""Command name -> ``module:attribute`` of its click command."""


class OneLineUsageError(click.UsageError):
    """click's refusal of the command line (an unknown option, a value out of range, a missing argument) in hwsim's
    form, one line on stderr and exit code 2, where click's own takes four: the usage, a hint, a blank line and
    the error."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {' '.join(self.format_message().splitlines())}", file=file, err=True)


_STDOUT_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
"""What writing standard output can fail with that no command causes. Every file hwsim writes itself goes through
:func:`hwsim.files.write_atomically`, which reports these as one line already."""

_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())
"""What click (8.2 on) raises for a bare ``hwsim``: the help, which stays as it is."""


@contextlib.contextmanager
def usage_errors_in_one_line() -> Iterator[None]:
    try:
        yield
    except click.UsageError as err:
        if isinstance(err, (OneLineUsageError, _HELP)):
            raise
        raise OneLineUsageError(err.format_message(), err.ctx) from None


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (click's documented lazy-loading pattern), and whose
    usage errors, its own and its commands', are one line (:class:`OneLineUsageError`)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Also a standard output that cannot be written (``> /dev/full``, a full disk, a quota) is one line, as
        click makes a closed pipe silent; standard output then goes to /dev/null, so the interpreter's last flush
        does not print the error again."""
        try:
            return super().main(*args, **kwargs)
        except OSError as err:
            if err.errno not in _STDOUT_FULL:
                raise
            click.echo(f"error: standard output: cannot write: {err.strerror}", err=True)
            with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):  # not a file (a test's runner)
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(INPUT_ERROR_EXIT)

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        with usage_errors_in_one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with usage_errors_in_one_line():
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        if module not in sys.modules:
            import_frozen(module)
        return getattr(sys.modules[module], attribute)


def import_frozen(module: str) -> None:
    """Import ``module`` with the garbage collector paused, then freeze what it made. An import makes objects
    that live as long as the process: the 70 collections `hwsim estimate`'s imports would trigger free
    nothing (15-20 ms of CPU time on this machine), and once frozen no later collection walks them again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        importlib.import_module(module)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hwsim")
def main() -> None:
    """How fast will this network run on that accelerator, and why?

    \b
    hwsim estimate                                   # HairNet on the paper's accelerator
    hwsim estimate networks/alexnet.yaml --hw hardware/paper-accelerator.yaml -o alexnet.md
    hwsim reproduce                                  # the paper's appendix and its errata
    hwsim compare hairnet alexnet                    # side by side
    hwsim verify hairnet                             # op counts checked by executing the network
    hwsim estimate resnet18.onnx                     # an ONNX model, read as it is
    hwsim export hairnet -o hairnet.onnx             # for Netron, ONNX Runtime and every other tool
    """
    # The process ends with its command, and its memory with it: the collection the interpreter makes at exit
    # would walk what the command made only to free what is freed anyway (a few per cent of `hwsim estimate`).
    atexit.unregister(gc.freeze)  # once, however many commands one process runs (tests)
    atexit.register(gc.freeze)
