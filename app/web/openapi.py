"""The OpenAPI document of `/api/v1`, generated from the API's Flask routes, their docstrings and the
schemas each view declares with `operation` (which also loads and checks the view's query and body with
them); every operation carries an example request (curl) and answers made of its fields' examples."""

from __future__ import annotations

import functools
import inspect
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
from app.web.openapi_examples import curl, error_example, instance
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
# a path parameter's description and example, by its converter or else its name
_PATH_PARAMETERS: dict[str, tuple[str, Any]] = {
    "project": ("The project: its numeric id, or its full path URL-encoded (`ml%2Fvision`).", "ml%2Fvision"),
    "id": ("The project's numeric id in GitLab.", 42),
    "session_id": (
        "The `id` of the upload session, from its `POST .../uploads` answer.",
        "5f0c3a9e8b7d4c21a6e9f0b1c2d3e4f5",
    ),
}


@dataclass(frozen=True)
class Operation:
    """What a view takes and answers, beyond what its route says."""

    query: SchemaClass | None = None
    body: SchemaClass | None = None
    returns: Mapping[int, tuple[str, SchemaClass | None]] = field(default_factory=dict)
    refusals: Mapping[int, str] = field(default_factory=dict)  # statuses beyond COMMON_ERRORS
    example_query: Mapping[str, Any] | None = None  # the example's query; else the required fields'
    example_answers: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)  # fields that differ


def operation(
    *,
    query: SchemaClass | None = None,
    body: SchemaClass | None = None,
    returns: Mapping[int, tuple[str, SchemaClass | None]],
    refusals: Mapping[int, str] | None = None,
    example_query: Mapping[str, Any] | None = None,
    example_answers: Mapping[int, Mapping[str, Any]] | None = None,
) -> Callable[[View], View]:
    """Declare a view's operation; the view gets the loaded `query` and `body` as keyword arguments
    (400 naming the first wrong field). The docstring is its description (first paragraph: summary)."""
    declared = Operation(query, body, returns, refusals or {}, example_query, example_answers or {})

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


def _document(spec: APISpec, doc: str, parameters: list[dict[str, Any]], op: Operation) -> dict[str, Any]:
    for schema in (op.body, *(s for _, s in op.returns.values())):
        if schema is not None and _name(schema) not in spec.components.schemas:
            spec.components.schema(_name(schema), schema=schema)
    responses: dict[str, Any] = {
        str(status): {"description": text} | ({"content": _content(schema)} if schema else {})
        for status, (text, schema) in op.returns.items()
    }
    for status, text in {**COMMON_ERRORS, **op.refusals}.items():
        error = _content(ErrorSchema)
        error["application/json"]["example"] = error_example(status, refusal=status in op.refusals)
        responses[str(status)] = {"description": text, "content": error}
    if op.query is not None:
        parameters = [*parameters, {"in": "query", "schema": op.query}]
    summary = doc.split("\n\n")[0].replace("\n", " ")
    document: dict[str, Any] = {
        "summary": summary,
        "description": doc,
        "parameters": parameters,
        "responses": responses,
    }
    if op.body is not None:  # a body whose fields are all optional may be left out ({})
        required = any(f.required for f in op.body().fields.values())
        description = (op.body.__doc__ or "").strip() or f"A JSON `{_name(op.body)}` object."
        document["requestBody"] = {
            "required": required,
            "description": description,
            "content": _content(op.body),
        }
    return document


def _add_examples(
    document: dict[str, Any], method: str, path: str, op: Operation, schemas: dict[str, Any]
) -> None:
    """The operation's example request as curl, its body's example and each answer's."""
    body = None
    if op.body is not None:
        body = instance(schemas[_name(op.body)], schemas)
        document["requestBody"]["content"]["application/json"]["example"] = body
    for status, (_, schema) in op.returns.items():
        if schema is not None:
            content = document["responses"][str(status)]["content"]["application/json"]
            content["example"] = instance(schemas[_name(schema)], schemas) | op.example_answers.get(
                status, {}
            )
    query = op.example_query
    if query is None and op.query is not None:
        fields = op.query().fields.items()
        query = {name: f.metadata["example"] for name, f in fields if f.required and "example" in f.metadata}
    values = {p["name"]: str(p["example"]) for p in document["parameters"] if "example" in p}
    url_path = re.sub(r"{(\w+)}", lambda m: values.get(m[1], m[0]), path)
    request = curl(method.upper(), url_path, query or {}, body)
    document["x-codeSamples"] = [{"lang": "curl", "label": "curl", "source": request}]


def _path_parameter(match: re.Match[str]) -> dict[str, Any]:
    """A path parameter of the route, with its description and example when it has them."""
    described = _PATH_PARAMETERS.get(match["converter"] or match["name"])
    return {
        "name": match["name"],
        "in": "path",
        "required": True,
        "schema": _TYPES.get(match["converter"] or "", {"type": "string"}),
    } | ({"description": described[0], "example": described[1]} if described else {})


def build_spec(app: Flask, *, prefix: str = "/api/v1/") -> APISpec:
    """OpenAPI 3 of every route under `prefix` whose view declares an `operation`."""
    spec = APISpec("GitLab Data Registry", "1", "3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema(_name(ErrorSchema), schema=ErrorSchema)
    paths: dict[str, dict[str, Any]] = {}
    declared: list[tuple[dict[str, Any], str, str, Operation]] = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        op: Operation | None = getattr(view, "openapi", None)
        if op is None or not rule.rule.startswith(prefix):
            continue
        path = _ARGUMENT.sub(r"{\g<name>}", rule.rule)
        doc = inspect.cleandoc(view.__doc__ or rule.endpoint)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            parameters = [_path_parameter(match) for match in _ARGUMENT.finditer(rule.rule)]
            document = _document(spec, doc, parameters, op)
            paths.setdefault(path, {})[method.lower()] = document
            declared.append((document, method, path, op))
    schemas = spec.to_dict()["components"]["schemas"]
    for document, method, path, op in declared:
        _add_examples(document, method, path, op, schemas)
    for path, operations in paths.items():
        spec.path(path, operations=operations)
    return spec
