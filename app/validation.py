"""Input loaded with a marshmallow schema, or one 400 naming the first field that is wrong; and what
counts as text a database can store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from marshmallow import Schema, ValidationError

from app.errors import BadRequest


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text (a NUL, or a lone surrogate such as JSON's "\\ud800", which
    is no character and has no UTF-8), None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid Unicode (a lone surrogate)"
    return None


def _strings(value: Any) -> Iterator[str]:
    """Every string in a loaded value: itself, list items, mapping keys and values, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)


def load_or_400(schema: Schema, data: Any, *, what: str) -> dict[str, Any]:
    """`data` loaded by `schema`; BadRequest "<what>: <field>: <problem>" for the first problem found,
    a string no database stores included (a NUL character, a lone surrogate)."""
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as e:
        field, problem = next(iter(e.normalized_messages().items()))  # type: ignore[no-untyped-call]
        if isinstance(problem, list):
            problem = " ".join(map(str, problem))
        raise BadRequest(f"{what}: {str(field)[:100]}: {problem}") from None
    for name, value in loaded.items():
        for text in _strings(value):
            if problem := text_problem(text):
                raise BadRequest(f"{what}: {name}: {problem}")
    return loaded
