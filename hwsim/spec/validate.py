"""Validate a piece of a YAML document against a pydantic model, reporting ``file:line: field: what``."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from hwsim.errors import InputError
from hwsim.yamlio import Document, Loc

M = TypeVar("M", bound=pydantic.BaseModel)


def format_loc(loc: Loc) -> str:
    """``("layers", 3, "kernel")`` -> ``layers[3].kernel``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing field"
    if kind == "extra_forbidden":
        return "unknown field"
    msg = error["msg"]
    # pydantic prefixes messages of custom validators; the user needs only the reason
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def validate(model: type[M], data: Any, doc: Document, at: Loc = (), context: str = "") -> M:
    """Validate ``data`` (found at ``at`` in ``doc``) as ``model``; the first error becomes an InputError."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        errors = err.errors(include_url=False)
        first = errors[0]
        loc = (*at, *first["loc"])
        message = _message(first)
        if context:
            message += f" ({context})"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        raise InputError(message, doc.where(loc), format_loc(loc)) from None
