"""Input loaded with a marshmallow schema, or one 400 naming the first field that is wrong."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from app.errors import BadRequest


def load_or_400(schema: Schema, data: Any, *, what: str) -> dict[str, Any]:
    """`data` loaded by `schema`; BadRequest "<what>: <field>: <problem>" for the first problem found,
    a NUL character in a string included (no database stores one)."""
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as e:
        field, problem = next(iter(e.normalized_messages().items()))  # type: ignore[no-untyped-call]
        raise BadRequest(f"{what}: {field}: {problem}") from None
    for name, value in loaded.items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise BadRequest(f"{what}: {name}: contains a NUL character")
    return loaded
