"""The OpenAPI document of `/api/v1`, generated from the API's Flask routes and the schemas each view
declares with `operation` (which also loads and checks the view's query and body with them)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema

from app.validation import load_or_400
from app.web.project_ids import MAX_ID
from app.web.schemas import ErrorSchema
from app.web.streaming import json_body

View = Callable[..., ResponseReturnValue]
SchemaClass = type[Schema]
# Every operation may answer these (the JSON error envelope).
COMMON_ERRORS = {
    400: "invalid request",
    413: "request body too large",
    401: "credential missing or invalid",
    403: "not allowed",
    404: "not found",
    429: "rate limited",
    503: "GitLab or storage down",
}
_ARGUMENT = re.compile(r"<(?:(?P<converter>[^:<>]+):)?(?P<name>[^<>]+)>")
# the schema of a path parameter by its converter; other converters are strings
_TYPES = {
    "int": {"type": "integer"},
    "id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "float": {"type": "number"},
}
_DESCRIPTIONS = {"project": "a project's numeric id, or its full path URL-encoded (ml%2Fvision)"}


@dataclass(frozen=True)
class Operation:
    """What a view takes and answers, beyond what its route says."""

    query: SchemaClass | None = None
    body: SchemaClass | None = None
    returns: Mapping[int, tuple[str, SchemaClass | None]] = field(default_factory=dict)
    refusals: Mapping[int, str] = field(default_factory=dict)  # statuses beyond COMMON_ERRORS


def operation(
    *,
    query: SchemaClass | None = None,
    body: SchemaClass | None = None,
    returns: Mapping[int, tuple[str, SchemaClass | None]],
    refusals: Mapping[int, str] | None = None,
) -> Callable[[View], View]:
    """Declare a view's operation; the view gets the loaded `query` and `body` as keyword arguments
    (400 naming the first wrong field)."""
    declared = Operation(query, body, returns, refusals or {})

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def loaded(**kwargs: Any) -> ResponseReturnValue:
            if query is not None:
                kwargs["query"] = load_or_400(query(), request.args.to_dict(), what="Invalid request")
            if body is not None:
                kwargs["body"] = load_or_400(body(), json_body(request), what="Invalid request")
            return view(**kwargs)

        loaded.openapi = declared  # type: ignore[attr-defined]
        return loaded

    return decorate


def _name(schema: SchemaClass) -> str:
    return schema.__name__.removesuffix("Schema")


def _content(schema: SchemaClass) -> dict[str, Any]:
    return {"application/json": {"schema": _name(schema)}}


def _document(spec: APISpec, summary: str, parameters: list[dict[str, Any]], op: Operation) -> dict[str, Any]:
    for schema in (op.body, *(s for _, s in op.returns.values())):
        if schema is not None and _name(schema) not in spec.components.schemas:
            spec.components.schema(_name(schema), schema=schema)
    responses: dict[str, Any] = {
        str(status): {"description": text} | ({"content": _content(schema)} if schema else {})
        for status, (text, schema) in op.returns.items()
    }
    for status, text in {**COMMON_ERRORS, **op.refusals}.items():
        responses[str(status)] = {"description": text, "content": _content(ErrorSchema)}
    if op.query is not None:
        parameters = [*parameters, {"in": "query", "schema": op.query}]
    document: dict[str, Any] = {"summary": summary, "parameters": parameters, "responses": responses}
    if op.body is not None:  # a body whose fields are all optional may be left out ({})
        required = any(f.required for f in op.body().fields.values())
        document["requestBody"] = {"required": required, "content": _content(op.body)}
    return document


def build_spec(app: Flask, *, prefix: str = "/api/v1/") -> APISpec:
    """OpenAPI 3 of every route under `prefix` whose view declares an `operation`."""
    spec = APISpec("GitLab Data Registry", "1", "3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema(_name(ErrorSchema), schema=ErrorSchema)
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        op: Operation | None = getattr(view, "openapi", None)
        if op is None or not rule.rule.startswith(prefix):
            continue
        path = _ARGUMENT.sub(r"{\g<name>}", rule.rule)
        summary = (view.__doc__ or "").strip().splitlines()[0] if view.__doc__ else rule.endpoint
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            parameters = [
                {
                    "name": match["name"],
                    "in": "path",
                    "required": True,
                    "schema": _TYPES.get(match["converter"] or "", {"type": "string"}),
                }
                | (
                    {"description": _DESCRIPTIONS[match["converter"]]}
                    if match["converter"] in _DESCRIPTIONS
                    else {}
                )
                for match in _ARGUMENT.finditer(rule.rule)
            ]
            paths.setdefault(path, {})[method.lower()] = _document(spec, summary, parameters, op)
    for path, operations in paths.items():
        spec.path(path, operations=operations)
    return spec
