"""Read YAML safely and remember the line of every value, so errors can say ``file:line``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hwsim import files
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
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null"))
"""What a value may be. Binary, timestamps, sets and Python objects have no place in a network or profile."""
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


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
            return self.scalar(node)
        expected = _MAP_TAG if isinstance(node, yaml.MappingNode) else _SEQ_TAG
        if node.tag != expected:
            raise self.fail(f"unsupported YAML tag {_short_tag(node.tag)!r}", node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail("a mapping key must be a plain value, not a list or mapping", key_node)
                key = self.scalar(key_node)
                if key in result:
                    raise self.fail(f"duplicate key {key!r}", key_node)
                self.key_lines[loc + (key,)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*loc, key))
            return result
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        """A plain value: text, number, boolean or null; an integer beyond any real size is refused here,
        before anything converts it to a float and overflows."""
        if node.tag == _TIMESTAMP_TAG:
            return node.value  # a date, written unquoted: its text (no field takes a date)
        if node.tag not in _SCALAR_TAGS:
            raise self.fail(
                f"unsupported YAML tag {_short_tag(node.tag)!r}; values are text, numbers, true/false or null", node
            )
        try:
            value = self.loader.construct_object(node, deep=True)
            if isinstance(value, int):
                float(value)  # every number ends up in float arithmetic somewhere
        except (ValueError, OverflowError):  # ValueError: beyond Python's 4,300 digits for an int
            raise self.fail(f"the number {_abridged(node.value)} is too large for any field", node) from None
        return value


_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BASES = (yaml.composer.Composer, _PARSER) if _PARSER is not yaml.SafeLoader else (_PARSER,)
"""libyaml's parser under Python's composer (the pure-Python loader has that composer already)."""


class _Loader(*_BASES):  # type: ignore[misc]
    """PyYAML's safe loader, libyaml's parser where installed, composing nodes in Python so that a file of more
    values than any network has is refused as it is read: libyaml's own composer made 9 MB of one-line layers
    into 2.4 million nodes (13 s and 780 MB) before :class:`_Builder` could count them. The builder still counts
    what aliases expand to."""

    def __init__(self, stream: str) -> None:
        _PARSER.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        self.composed = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.composed += 1
        if self.composed > MAX_VALUES:
            line = self.peek_event().start_mark.line + 1
            raise InputError(
                f"more than {MAX_VALUES:,} values (a network or profile has a few hundred)", f"<file>:{line}"
            )
        return super().compose_node(parent, index)


def _short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:binary`` as written: ``!!binary``."""
    return tag.replace("tag:yaml.org,2002:", "!!")


def _abridged(digits: str) -> str:
    return digits if len(digits) <= 24 else f"{digits[:12]}...{digits[-6:]} ({len(digits)} characters)"


_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
"""What YAML counts as a line break, so a line found here is the line its marks would give."""


def _unacceptable(text: str, err: yaml.reader.ReaderError, path: Path) -> InputError:
    """A character YAML refuses (NUL, another control character) at its line. PyYAML's own message takes two
    lines and gives an offset, counted in characters by the Python reader and in UTF-8 bytes by libyaml; the
    first such character in the text is the one either reader stopped at."""
    character = err.character if isinstance(err.character, str) else chr(err.character)
    line = len(_LINE_BREAK.findall(text, 0, max(text.find(character), 0))) + 1
    return InputError(f"U+{ord(character):04X} is a character YAML does not allow ({err.reason})", f"{path}:{line}")


def load_yaml(path: str | Path) -> Document:
    """Parse ``path`` with PyYAML's safe loader; any failure is an :class:`InputError` with a line.

    Only a regular file of at most :data:`hwsim.files.MAX_TEXT_BYTES` is read (see :mod:`hwsim.files`).
    """
    path = Path(path)
    text = files.read_text(path, files.MAX_TEXT_BYTES, "YAML file")
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        builder = _Builder(loader)
        data = {} if root is None else builder.build(root, ())
    except yaml.reader.ReaderError as err:
        raise _unacceptable(text, err, path) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        raise InputError(f"YAML syntax error: {err.problem or err}", f"{path}:{line}") from None
    except yaml.YAMLError as err:
        raise InputError(f"YAML error: {' '.join(str(err).split())}", str(path)) from None
    except RecursionError:
        raise InputError(f"nested more than {MAX_DEPTH} levels deep", str(path)) from None
    except InputError as err:  # raised by the builder: fill in the file name
        raise InputError(err.message, err.where.replace("<file>", str(path))) from None
    finally:
        loader.dispose()
    return Document(str(path), data, builder.lines, builder.key_lines)
