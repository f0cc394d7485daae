"""The table of op traits: complete, consistent with what the schedulers assume, and documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from hwsim.ops import TRAITS, Chunks, LayerEntry, Op, OpTraits, Rows, Unit, problems
from hwsim.ops.conv import ConvLayer
from hwsim.reference.kernels import KERNELS
from hwsim.spec.hardware import HardwareSpec

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_op_has_traits_and_a_reference_kernel() -> None:
    assert set(TRAITS) == set(Op)
    assert set(KERNELS) == set(Op)
    assert problems(tuple(TRAITS.values())) == []


def test_a_table_that_misses_an_op_or_declares_one_twice_is_refused() -> None:
    traits = tuple(t for op, t in TRAITS.items() if op is not Op.LRN)
    assert problems(traits) == ["op 'lrn' has no traits"]
    assert problems((*TRAITS.values(), TRAITS[Op.RELU])) == ["op 'relu' is declared 2 times"]


def test_a_layer_model_that_cannot_build_attrs_or_writes_another_op_is_refused() -> None:
    class Unbuilt(LayerEntry):
        pass

    broken = {
        Op.RELU: dataclasses.replace(TRAITS[Op.RELU], layer=Unbuilt),
        Op.DWCONV: dataclasses.replace(TRAITS[Op.DWCONV], layer=ConvLayer),
    }
    found = problems(tuple(broken.get(op, t) for op, t in TRAITS.items()))
    assert found == [
        "op 'dwconv': ConvLayer accepts op ('conv',)",
        "op 'relu': Unbuilt does not build its attrs",
    ]


def test_a_trait_left_out_is_a_missing_argument() -> None:
    declared = {f.name: getattr(TRAITS[Op.RELU], f.name) for f in dataclasses.fields(OpTraits)}
    del declared["rows"]
    with pytest.raises(TypeError, match="rows"):
        OpTraits(**declared)


@pytest.mark.parametrize("op", list(Op), ids=lambda op: op.value)
def test_traits_agree_with_what_the_schedulers_assume(op: Op) -> None:
    """A segment streams row by row only through row-local (or accumulating) ops; a fused op streams, and
    one that reads one map runs on its producer's chunks of channels (a merge may fuse per band only)."""
    t = TRAITS[op]
    if t.streams:
        assert t.rows is not Rows.WHOLE
    if t.fuses:
        assert t.streams and (t.chunks is Chunks.ANY or t.many_inputs)
        assert t.rows is not Rows.ACCUMULATE
    assert (t.layer.model_fields["inputs"].metadata != []) == t.many_inputs  # a merge needs two inputs


def test_the_default_unit_of_an_op_is_its_trait() -> None:
    matrix = sorted(op.value for op, t in TRAITS.items() if t.unit is Unit.MATRIX)
    assert matrix == ["conv", "conv_transpose", "dense", "dwconv"]
    with pytest.raises(ValueError, match="no compute unit for op 'conv': add a unit named 'matrix'"):
        HardwareSpec.model_validate(
            {
                "name": "vector only",
                "memory": {"internal": {"capacity": 1e6}, "external": {"bandwidth": 1e9}},
                "compute": {"vector": {"throughput": 1e9}},
            }
        )


def _documented_ops(table: str) -> set[str]:
    """The ops named in the first column of a Markdown table: ``| add, concat, flatten |``, ``| upsample (f) |``."""
    rows = re.findall(r"^\| ([a-z_, ]+?)(?: \(.*?\))? \|", table, re.MULTILINE)
    return {name.strip() for row in rows for name in row.split(",")}


def test_every_op_has_a_row_in_the_cost_tables_of_the_docs() -> None:
    inference = (DOCS / "ops.md").read_text()
    training = (DOCS / "reference.md").read_text().split("| op | forward_train")[1].split("\n\n")[0]
    assert {op.value for op in Op} <= _documented_ops(inference)
    assert {op.value for op in Op} <= _documented_ops(training)
