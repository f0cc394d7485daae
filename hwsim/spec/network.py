"""The network description: layers, reusable blocks with arguments, and repeats.

The file is validated in two steps. The outer structure (name, input, blocks, layers) is checked
here as it stands; each layer entry is checked by :mod:`hwsim.model.expand` after block arguments are
substituted, against the model its op declares (:data:`hwsim.ops.TRAITS`), so a ``$filters`` in a block
template is validated with the value it takes at each use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from hwsim.ops import PositiveInt
from hwsim.spec.names import name_problem, text_problem
from hwsim.spec.validate import validate
from hwsim.spec.yamlio import Document, load_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


MAX_SIZE = 1_000_000
"""The largest size or count a network file takes: an image side or channel count, filters, units, a kernel,
a stride, a padding. More can only be a mistake (docs/limits.md)."""
Size = Annotated[StrictInt, Field(gt=0, le=MAX_SIZE)]


class UseEntry(BaseModel):
    """``{use: dw, repeat: 3, name: stage2, filters: 128}``: the extra keys are the block's arguments."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)
    use: str
    repeat: PositiveInt = 1
    name: str | None = None
    inputs: tuple[str, ...] | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        if name is not None and (problem := name_problem(name)):
            raise ValueError(problem)
        return name

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


RESERVED_ARGS = frozenset(UseEntry.model_fields)
"""Keys of a ``use`` entry itself, so not available as block argument names."""


class BlockSpec(_Strict):
    args: tuple[str, ...] = ()
    layers: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("args")
    @classmethod
    def _distinct_free_names(cls, args: tuple[str, ...]) -> tuple[str, ...]:
        for arg in args:
            if arg in RESERVED_ARGS:
                raise ValueError(f"{arg!r} is a key of every use entry and cannot name an argument")
            if args.count(arg) > 1:
                raise ValueError(f"argument {arg!r} is listed twice")
        return args


class NetworkSpec(_Strict):
    """A network file as written. Layer entries stay raw dicts until expansion (see module doc)."""

    name: str
    description: str = ""
    input: tuple[Size, Size, Size] = Field(description="H, W, C of one image")
    blocks: dict[str, BlockSpec] = {}
    layers: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _visible_name(cls, name: str) -> str:
        if problem := text_problem(name):
            raise ValueError(problem)
        return name

    @field_validator("blocks")
    @classmethod
    def _block_names(cls, blocks: dict[str, BlockSpec]) -> dict[str, BlockSpec]:
        for name in blocks:  # a block's name prefixes the layers of an unnamed use
            if problem := name_problem(name):
                raise ValueError(f"block {problem}")
        return blocks


def load_network_document(path: str | Path) -> tuple[NetworkSpec, Document]:
    """Read and validate the outer structure of a network file; also return the document for line numbers."""
    doc = load_yaml(path)
    return validate(NetworkSpec, doc.data, doc), doc


def _flow(value: Any) -> str:
    """One YAML line: ``{op: conv, name: conv1, filters: 64}``, ``[224, 224, 3]``."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1_000_000)
    return text.removesuffix("\n...\n").strip()  # a plain scalar is dumped as a document with an end marker


def dump_network(data: dict[str, Any], comment: str = "") -> str:
    """A network document as YAML in the bundled files' style: one line per layer, blocks before layers."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [f"{key}: {_flow(data[key])}" for key in ("name", "description", "input") if key in data]
    if data.get("blocks"):
        lines.append("blocks:")
        for name, block in data["blocks"].items():
            lines.append(f"  {_flow(name)}:")
            if block.get("args"):
                lines.append(f"    args: {_flow(block['args'])}")
            lines.append("    layers:")
            lines += [f"      - {_flow(entry)}" for entry in block["layers"]]
    lines.append("layers:")
    lines += [f"  - {_flow(entry)}" for entry in data["layers"]]
    return "\n".join(lines) + "\n"
