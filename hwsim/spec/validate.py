"""Validate a piece of a YAML document against a pydantic model, reporting ``file:line: field: what``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic

from hwsim.errors import InputError
from hwsim.spec.yamlio import Document, Loc

M = TypeVar("M", bound=pydantic.BaseModel)


def format_loc(loc: Loc) -> str:
    """``("layers", 3, "kernel")`` -> ``layers[3].kernel``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing field" if isinstance(error["loc"][-1], str) else f"too few items (no item {error['loc'][-1]})"
    if kind == "extra_forbidden":
        return "unknown field"
    msg = error["msg"]
    # pydantic prefixes messages of custom validators; the user needs only the reason
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def _trim(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop what pydantic appends for union members (``kernel.constrained-int``): keep the path through the data."""
    kept: list[Any] = []
    for part in loc:
        if isinstance(data, dict):
            kept.append(part)  # a missing or unknown key of a mapping is still a place in the file
            if part not in data:
                break
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            kept.append(part)
            data = data[part]
        else:
            break
    return tuple(kept)


def validate(model: type[M], data: Any, doc: Document, at: Loc = (), context: str = "") -> M:
    """Validate ``data`` (found at ``at`` in ``doc``) as ``model``; the first error becomes an InputError."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        errors = err.errors(include_url=False)
        places = list(dict.fromkeys(_trim(e["loc"], data) for e in errors))
        first = errors[0]
        loc = (*at, *places[0])
        message = _message(first)
        if context:
            message += f" (in layer {context})"
        if len(places) > 1:
            message += f" (and {len(places) - 1} more)"
        raise InputError(message, doc.where(loc), format_loc(loc)) from None
