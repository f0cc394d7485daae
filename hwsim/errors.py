"""The one exception type that reaches the user: bad input, reported as a single line."""

from __future__ import annotations

INPUT_ERROR_EXIT = 2
"""The exit code of every refusal the CLI prints as one line."""


class InputError(Exception):
    """Bad user input (a file, a field, a shape). The CLI prints ``str(err)`` and exits with 2.

    ``where`` is ``file:line`` (or just a file); ``field`` the dotted path inside it.
    """

    def __init__(self, message: str, where: str = "", field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.field = field

    def __str__(self) -> str:
        """One line, whatever a message quoted (a library's text, a line break in a name): the promise to the user
        is one line on stderr."""
        return " ".join(": ".join(part for part in (self.where, self.field, self.message) if part).splitlines())
