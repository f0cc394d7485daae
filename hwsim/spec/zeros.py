"""The maps' zero fractions a run is given (``--map-zeros``): one number for every map, or a file per map.

The fraction of zeros in a feature map is a property of the data the network runs on, not of the chip, so it is
an input of the run, never a default (:mod:`hwsim.cost.coding` sizes a coded map by it). A file names maps by the
layer that writes them (``input`` for the network's input), either as YAML::

    conv1: 0.39        # the fraction of zeros in conv1's output
    pool1: 0.387

or as CSV with a header ``layer,zeros``. A map not named moves raw.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator
from pathlib import Path

from hwsim import files
from hwsim.errors import InputError
from hwsim.spec.yamlio import load_yaml

YAML_SUFFIXES, CSV_SUFFIX = (".yaml", ".yml"), ".csv"


def is_fraction(value: object) -> bool:
    """Whether ``value`` is a zero fraction: a number (not a bool) from 0 to 1."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def _fraction(value: object, where: str, field: str) -> float:
    if not is_fraction(value):
        raise InputError(f"a zero fraction is a number from 0 to 1, not {value!r}", where, field)
    return float(value)  # type: ignore[arg-type]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def map_zeros_from(value: str, names: Collection[str]) -> float | dict[str, float]:
    """``--map-zeros``'s value: a fraction for every map, or a YAML or CSV file of fractions per map, whose names
    must be among ``names`` (:attr:`hwsim.model.graph.Graph.map_names` of the networks it is for)."""
    number = _number(value)
    if number is not None:
        return _fraction(number, "", "--map-zeros")
    path = Path(value)
    if path.suffix in YAML_SUFFIXES:
        return _from_yaml(path, names)
    if path.suffix == CSV_SUFFIX:
        return _from_csv(path, names)
    raise InputError(
        f"--map-zeros takes a fraction from 0 to 1 or a .yaml/.yml/.csv file of them per layer, not {value!r}"
    )


def _known(name: object, names: Collection[str], where: str) -> str:
    if not isinstance(name, str) or name not in names:
        raise InputError(f"no layer {name!r} in the network (or 'input' for its input)", where, "layer")
    return name


def _named_some(zeros: dict[str, float], path: Path) -> dict[str, float]:
    """``zeros``, unless it names no map: a file given for the maps' zeros that names none is a mistake, not a
    way to say "every map raw" (leave ``--map-zeros`` out for that)."""
    if not zeros:
        raise InputError("names no map's zero fraction (a line per map: layer and fraction)", str(path))
    return zeros


def _from_yaml(path: Path, names: Collection[str]) -> dict[str, float]:
    document = load_yaml(path)
    if not isinstance(document.data, dict):
        raise InputError("expected a mapping of layer names to zero fractions", document.where(()))
    return _named_some(
        {
            _known(name, names, document.where_key((name,))): _fraction(value, document.where((name,)), str(name))
            for name, value in document.data.items()
        },
        path,
    )


def _from_csv(path: Path, names: Collection[str]) -> dict[str, float]:
    text = files.read_text(path, files.MAX_TEXT_BYTES, "CSV file").removeprefix("\ufeff")  # a spreadsheet's BOM
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        return _named_some(_csv_rows(rows, path, names), path)
    except csv.Error as err:  # an unclosed quote, a cell beyond the csv module's limit
        raise InputError(f"not CSV: {err}", f"{path}:{rows.line_num}") from None


def _csv_rows(rows: Iterator[list[str]], path: Path, names: Collection[str]) -> dict[str, float]:
    header = next(rows, None)
    if header is None or [cell.strip() for cell in header] != ["layer", "zeros"]:
        raise InputError(f"the header must be 'layer,zeros', not {','.join(header or [])!r}", f"{path}:1")
    result: dict[str, float] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line}"
        if not row:
            continue
        if len(row) != 2:
            raise InputError(f"expected 2 cells (layer, zeros), got {len(row)}", where)
        name = _known(row[0].strip(), names, where)
        if name in result:
            raise InputError(f"{name!r} given twice", where, "layer")
        number = _number(row[1])
        result[name] = _fraction(number if number is not None else row[1].strip(), where, name)
    return result
