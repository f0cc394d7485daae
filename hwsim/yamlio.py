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

    def line(self, loc: Loc) -> int:
        """Line of the deepest node on ``loc`` that exists (a missing field points at its parent)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1

    def where(self, loc: Loc) -> str:
        return f"{self.path}:{self.line(loc)}"


def _to_python(node: yaml.Node, loc: Loc, lines: dict[Loc, int], constructor: yaml.BaseLoader) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if key in result:
                raise InputError(f"duplicate key {key!r}", f"<file>:{key_node.start_mark.line + 1}")
            result[key] = _to_python(value_node, (*loc, key), lines, constructor)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*loc, i), lines, constructor) for i, item in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


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
        lines: dict[Loc, int] = {}
        data = {} if root is None else _to_python(root, (), lines, loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        raise InputError(f"YAML syntax error: {err.problem or err}", f"{path}:{line}") from None
    except yaml.YAMLError as err:
        raise InputError(f"YAML error: {err}", str(path)) from None
    except InputError as err:  # duplicate key: fill in the file name
        raise InputError(err.message, err.where.replace("<file>", str(path))) from None
    finally:
        loader.dispose()
    return Document(str(path), data, lines)
