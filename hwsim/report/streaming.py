"""A sweep's CSV file written as its points finish, so a killed sweep keeps what it did and can be resumed.

Each finished chunk of rows is appended with a single ``write`` of whole lines, so whatever stops the
process (Ctrl-C, a kill, a closed laptop) leaves complete lines only; a line cut short by a full disk
or a crash of the machine is dropped when the file is read back. Rows arrive in the order they finish;
when the sweep ends the file is rewritten in grid order, atomically, as a serial run writes it
(``DataFrame.to_csv`` of the sweep's rows). Lines are written as pandas writes them (tests/test_sweep_parallel.py
checks both), and read back exactly: a float's shortest repr names the same float.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from hwsim import files
from hwsim.errors import InputError
from hwsim.report.records import csv_line
from hwsim.studies.sweep import Axis, Resumed, Row, SweepResult, columns, resumed_points

MAX_FILE_BYTES = 2 * 10**9
"""The largest sweep file ``--resume`` reads: a million points take about 250 MB."""


class RowFile:
    """The CSV file of a sweep scheduled point by point: a header, then a line per finished point."""

    def __init__(self, path: Path, axes: Sequence[Axis]) -> None:
        self.path = path
        self.axes = list(axes)
        self.header = csv_line(columns(axes))
        self._fd: int | None = None
        self._kept_bytes: int | None = None

    def read_back(self) -> Resumed:
        """The points the file already holds (``--resume``), by grid index; nothing if there is no file.

        Refuses a file with other columns or rows that are not points of this grid: another sweep's.
        """
        if not files.exists(self.path):
            return {}
        text = files.read_text(self.path, MAX_FILE_BYTES, "sweep file")
        complete = text[: text.rfind("\n") + 1]  # a line cut short by a crash is not a point
        self._kept_bytes = len(complete.encode("utf-8"))
        if not complete.startswith(self.header):
            raise InputError("its columns are not this sweep's: remove it, or drop --resume", str(self.path))
        reader = csv.reader(io.StringIO(complete[len(self.header) :], newline=""))
        try:
            resumed = resumed_points(self.axes, reader)
        except (ValueError, csv.Error) as err:
            where = f"{self.path}:{reader.line_num + 1}"
            raise InputError(f"not a point of this sweep ({err}): remove it, or drop --resume", where) from None
        return resumed

    def append(self, rows: list[Row]) -> None:
        """Add finished rows, in one write of whole lines (the header first, on a new file)."""
        text = "".join(csv_line(row.values) for row in rows)
        if self._fd is None:
            self._fd = self._open()
            if self._kept_bytes is None:
                text = self.header + text
        data = text.encode("utf-8")
        while data:
            data = data[os.write(self._fd, data) :]

    @property
    def started(self) -> bool:
        """Whether this run has written to the file."""
        return self._fd is not None

    def _open(self) -> int:
        target = files.output_target(self.path)
        if self._kept_bytes is None:
            return os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o666)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND)
        os.truncate(fd, self._kept_bytes)  # drop a line cut short
        return fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def finish(self, result: SweepResult) -> None:
        """Rewrite the file with every row in grid order, atomically: what a serial sweep writes."""
        self.close()
        files.write_atomically(self.path, result.rows.to_csv(index=False))

    def discard(self) -> None:
        """Remove the file: the sweep failed as a whole (no point feasible), so it leaves nothing behind."""
        self.close()
        files.output_target(self.path).unlink(missing_ok=True)
