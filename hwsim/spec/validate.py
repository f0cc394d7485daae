"""Validate a piece of a YAML document against a pydantic model, reporting ``file:line: field: what``.

A misspelt key is reported first, with the field it was probably meant to be: pydantic reports it
as an unknown field *and* the intended field as missing, and the missing one alone would send the
user looking for a field that is there.
"""

from __future__ import annotations

import types
import typing
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


def _inner(annotation: Any, part: str | int) -> Any:
    """The type found one step down ``annotation`` at ``part``: a model's field, a dict's value, a list's item."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _inner(typing.get_args(annotation)[0], part)
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            found = _inner(member, part)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field else None
    if origin is dict:
        return typing.get_args(annotation)[1]
    if origin in (list, tuple) and typing.get_args(annotation):
        return typing.get_args(annotation)[0]
    return None


def _model_fields(annotation: Any) -> list[str]:
    """Field names of the model (or the models of a union) ``annotation`` stands for."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_fields(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [name for member in typing.get_args(annotation) for name in _model_fields(member)]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return list(annotation.model_fields)
    return []


def fields_at(model: type[pydantic.BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The fields the mapping at ``path`` inside a ``model`` document may have."""
    annotation: Any = model
    for part in path:
        annotation = _inner(annotation, part)
        if annotation is None:
            return []
    return _model_fields(annotation)


def _value_at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def validate(model: type[M], data: Any, doc: Document, at: Loc = (), context: str = "") -> M:
    """Validate ``data`` (found at ``at`` in ``doc``) as ``model``; the first error becomes an InputError.

    An unknown key comes first, named, with the closest field the mapping lacks (``unknown field
    'kernal' (did you mean 'kernel'?)``); the missing field it stands for is not counted again.
    """
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        errors = err.errors(include_url=False)
        unknown = [e for e in errors if e["type"] == "extra_forbidden"]
        first = unknown[0] if unknown else errors[0]
        place = _trim(first["loc"], data)
        message = _message(first)
        meant = None
        if first["type"] == "extra_forbidden":
            *parent, key = place
            mapping = _value_at(data, tuple(parent))
            absent = [name for name in fields_at(model, tuple(parent)) if name not in mapping]
            import difflib  # only for a mistake: a run that validates imports none of it

            meant = next(iter(difflib.get_close_matches(str(key), absent, n=1, cutoff=0.6)), None)
            message = f"unknown field {key!r}" + (f" (did you mean {meant!r}?)" if meant else "")
            field_loc: Loc = (*at, *parent)
        else:
            field_loc = (*at, *place)
        if context:
            message += f" (in layer {context})"
        places = dict.fromkeys(_trim(e["loc"], data) for e in errors)
        places.pop(place)
        if meant is not None:
            places.pop((*place[:-1], meant), None)  # the missing field the misspelt key stands for
        if places:
            message += f" (and {len(places)} more)"
        where = doc.where_key((*at, *place)) if first["type"] == "extra_forbidden" else doc.where((*at, *place))
        raise InputError(message, where, format_loc(field_loc)) from None
