"""Read YAML safely and remember the line of every value, so errors can say ``file:line``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hwsim.errors import InputError

Loc = tuple[str | int, ...]
"""A path into the document: mapping keys and list indices, as pydantic reports them."""


@dataclass(frozen=True)
class Document:
    """A parsed YAML file and the 1-based line of every node in it."""

    path: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    key_lines: dict[Loc, int] = field(default_factory=dict)
    """The line of each mapping key, where it differs from its value's (a list under its key)."""

    def line(self, loc: Loc) -> int:
        """Line of the deepest node on ``loc`` that exists (a missing field points at its parent)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1

    def where(self, loc: Loc) -> str:
        return f"{self.path}:{self.line(loc)}"

    def where_key(self, loc: Loc) -> str:
        """``file:line`` of the key that ends ``loc`` (an unknown field is reported where it is written)."""
        return f"{self.path}:{self.key_lines[loc]}" if loc in self.key_lines else self.where(loc)


MAX_DEPTH = 64
MAX_VALUES = 100_000
"""Bounds on a document: a network file is a few hundred values; aliases can multiply them without end."""

_MAP_TAG, _SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _Builder:
    """Turns composed YAML nodes into plain dicts, lists and scalars, recording each node's line."""

    def __init__(self, loader: yaml.BaseLoader) -> None:
        self.loader = loader
        self.lines: dict[Loc, int] = {}
        self.key_lines: dict[Loc, int] = {}
        self.values = 0
        self.active: set[int] = set()

    def fail(self, message: str, node: yaml.Node) -> InputError:
        return InputError(message, f"<file>:{node.start_mark.line + 1}")

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines[loc] = node.start_mark.line + 1
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.fail(f"more than {MAX_VALUES:,} values (aliases expanding without end?)", node)
        if len(loc) > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep", node)
        if id(node) in self.active:
            raise self.fail("an alias refers to a node that contains it", node)
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node, deep=True)
        expected = _MAP_TAG if isinstance(node, yaml.MappingNode) else _SEQ_TAG
        if node.tag != expected:
            raise self.fail(f"unsupported YAML tag {node.tag!r}", node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail("a mapping key must be a plain value, not a list or mapping", key_node)
                key = self.loader.construct_object(key_node, deep=True)
                if key in result:
                    raise self.fail(f"duplicate key {key!r}", key_node)
                self.key_lines[loc + (key,)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*loc, key))
            return result
        finally:
            self.active.discard(id(node))


def load_yaml(path: str | Path) -> Document:
    """Parse ``path`` with PyYAML's safe loader; any failure is an :class:`InputError` with a line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a YAML file", str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read: {err}", str(path)) from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        root = loader.get_single_node()
        builder = _Builder(loader)
        data = {} if root is None else builder.build(root, ())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        raise InputError(f"YAML syntax error: {err.problem or err}", f"{path}:{line}") from None
    except yaml.YAMLError as err:
        raise InputError(f"YAML error: {err}", str(path)) from None
    except RecursionError:
        raise InputError(f"nested more than {MAX_DEPTH} levels deep", str(path)) from None
    except InputError as err:  # raised by the builder: fill in the file name
        raise InputError(err.message, err.where.replace("<file>", str(path))) from None
    finally:
        loader.dispose()
    return Document(str(path), data, builder.lines, builder.key_lines)
