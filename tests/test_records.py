"""Reports written without pandas are the text pandas writes: random records, random floats, every bundled report."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim import api
from hwsim.report import records, tables

FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e17, max_value=1e17),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.sampled_from([0.5, 1.5, 2.5, 0.1 + 0.2, 1e16 - 1, 1e16, 1e-15, 9.99999999999999e-16, 0.0, -0.0]),
)
TEXT = st.text(alphabet=st.sampled_from(list('ab ,"\n\r;x…')), max_size=8)
COLUMN = st.sampled_from(["int", "float", "mixed", "text", "int or none", "float or none", "text or none"])


def values(kind: str) -> st.SearchStrategy[object]:
    return {
        "int": st.integers(-(2**62), 2**62),
        "float": FLOATS,
        "mixed": st.one_of(st.integers(-(10**6), 10**6), FLOATS),
        "text": TEXT,
        "int or none": st.one_of(st.integers(-(10**6), 10**6), st.none()),
        "float or none": st.one_of(FLOATS, st.none()),
        "text or none": st.one_of(TEXT, st.none()),
    }[kind]


@st.composite
def tables_of_records(draw: st.DrawFn, kinds: st.SearchStrategy[str] = COLUMN) -> tuple[list[dict], list[str]]:
    columns = draw(st.lists(kinds, min_size=1, max_size=5))
    names = [f"c{i}" for i in range(len(columns))]
    rows = draw(
        st.lists(st.tuples(*(values(kind) for kind in columns)), min_size=1, max_size=5),
    )
    return [dict(zip(names, row)) for row in rows], names


@given(tables_of_records())
def test_csv_is_pandas_csv(table: tuple[list[dict], list[str]]) -> None:
    rows, columns = table
    assert records.to_csv(rows, columns) == pd.DataFrame(rows, columns=columns).to_csv(index=False)


@given(tables_of_records())
def test_json_records_are_pandas_json(table: tuple[list[dict], list[str]]) -> None:
    rows, columns = table
    frame = pd.DataFrame(rows, columns=columns)
    expected = json.loads(frame.to_json(orient="records", double_precision=15))
    assert json.dumps(records.to_json_records(rows, columns)) == json.dumps(expected)


@given(tables_of_records(st.sampled_from(["int", "float", "mixed", "text", "float or none"])))
def test_markdown_is_pandas_markdown(table: tuple[list[dict], list[str]]) -> None:
    """Text columns without missing values: pandas 3 reads a missing text as NaN, pandas 2 as None."""
    rows, columns = table
    expected = pd.DataFrame(rows, columns=columns).to_markdown(index=False, floatfmt=".6g")
    assert records.to_markdown(rows, columns, ".6g") == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_is_rounded_as_pandas_rounds_it(value: float) -> None:
    expected = pd.DataFrame({"x": [value]}).to_json(orient="records", double_precision=15)
    assert f'[{{"x":{records.json_double(value)}}}]' == expected


def test_whole_numbers_beside_floats_are_floats_and_a_missing_number_is_nan() -> None:
    assert records.column_kind([1, 2]) == "int"
    assert records.column_kind([1, 2.5]) == "float"
    assert records.column_kind([1, None]) == "float"
    assert records.column_kind(["a", None]) == "object"
    assert records.typed_rows([{"a": 1}, {"a": 2.5}], ["a"]) == [[1.0], [2.5]]
    assert math.isnan(records.typed_rows([{"a": None}, {"a": 2}], ["a"])[0][0])


CASES = [
    ("hairnet", "paper-accelerator", "paper", {}),
    ("hairnet", "paper-accelerator", "strict", {"batch": 4, "precision": "bf16"}),
    pytest.param(  # 2.3 s: a batch of 16 under optimized
        "hairnet", "paper-accelerator", "optimized", {"batch": 16, "precision": "int8"}, marks=pytest.mark.slow
    ),
    ("alexnet", "edge-npu", "optimized", {}),
    ("resnet18", "datacenter-gpu", "strict", {}),
    ("hairnet-paper", "paper-appendix", "paper", {"counting": "paper"}),
    ("mobilenet-v1", "tpu-v1", "optimized", {"precision": "int8"}),  # a systolic array: cycles and utilisation
]


@pytest.mark.parametrize(("network", "hardware", "policy", "options"), CASES)
def test_every_format_of_a_report_is_what_pandas_wrote(network: str, hardware: str, policy: str, options: dict):
    result = api.estimate(api.load_network(network), api.load_hardware(hardware), policy, **options)
    rows, keys = tables.estimate_rows(result)
    frame = pd.DataFrame(rows, columns=keys)
    assert tables.to_csv(result) == frame.to_csv(index=False)
    layers = json.loads(tables.to_json(result))["layers"]
    assert layers == json.loads(frame.to_json(orient="records", double_precision=15))
    assert frame.to_markdown(index=False, floatfmt=".6g") in tables.to_markdown(result)


PLAIN_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from(list("0123456789.,+-eE _aTrueFalsnif")), max_size=7),
    st.sampled_from(["True", "False", "1,000", "1,0000", "1.", " 3 ", "inf", "-inf", "nan", "Infinity", "1e999"]),
    st.sampled_from(["1_000", ".5", "-.5e3", ",", "", " ", "+1,234.5", "0x10", "١٢"]),
)
PLAIN_CELL = st.one_of(st.none(), st.booleans(), st.integers(-(2**62), 2**62), FLOATS, PLAIN_TEXT)


@given(
    st.integers(1, 4).flatmap(lambda n: st.lists(st.lists(PLAIN_CELL, min_size=n, max_size=n), min_size=1, max_size=5))
)
def test_a_pipe_table_of_numbers_and_ascii_text_is_tabulates(rows: list[list[object]]) -> None:
    from tabulate import tabulate

    headers = [f"column {i}" if i % 2 else "c" for i in range(len(rows[0]))]
    if all(map(records._plain_cell, (v for row in rows for v in row))):
        assert records.pipe_table(rows, headers, ".6g") == tabulate(rows, headers, tablefmt="pipe", floatfmt=".6g")


def test_text_a_pipe_table_cannot_write_is_left_to_tabulate() -> None:
    assert not records._plain_cell("two\nlines") and not records._plain_cell("wide …") and records._plain_cell("a b")
    rows = [{"layer": "two\nlines", "s": 1.5}, {"layer": "x", "s": 2.0}]
    assert records.to_markdown(rows, ["layer", "s"], ".6g") == pd.DataFrame(rows).to_markdown(
        index=False, floatfmt=".6g"
    )
