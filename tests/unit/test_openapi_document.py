"""The OpenAPI document reads well: every operation, parameter, body, answer and schema field has a
description and an example, the examples are valid for their schemas, and each operation's curl example
is a request the registry answers as documented."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.web.openapi_examples import BASE_URL
from tests.conftest import TOKENS

_REF = "#/components/schemas/"


@pytest.fixture
def document(make_app: Callable[..., Flask]) -> dict[str, Any]:
    response = make_app().test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json
    return document


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            yield method.upper(), path, op


def _is_structure(field: dict[str, Any]) -> bool:
    """A field whose example is its schema's (a nested object, or a list of them)."""
    inner = field.get("items", field)
    return "$ref" in inner or any(
        "$ref" in alternative for alternative in inner.get("allOf", inner.get("anyOf", []))
    )


def undocumented(document: dict[str, Any]) -> list[str]:
    """Every place of the document that lacks a description or an example, by name."""
    missing = []
    for method, path, op in operations(document):
        where = f"{method} {path}"
        if not op.get("description", "").strip():
            missing.append(f"{where}: description")
        if not any(
            s["lang"] == "curl" and s["source"].startswith("curl ") for s in op.get("x-codeSamples", [])
        ):
            missing.append(f"{where}: example request (curl)")
        for p in op.get("parameters", []):
            if not p.get("description", "").strip():
                missing.append(f"{where} parameter {p['name']}: description")
            if "example" not in p and "example" not in p.get("schema", {}):
                missing.append(f"{where} parameter {p['name']}: example")
        if "requestBody" in op:
            body = op["requestBody"]
            if not body.get("description", "").strip():
                missing.append(f"{where} body: description")
            if "example" not in body["content"]["application/json"]:
                missing.append(f"{where} body: example")
        for status, answer in op["responses"].items():
            if not answer.get("description", "").strip():
                missing.append(f"{where} {status}: description")
            if "content" in answer and "example" not in answer["content"]["application/json"]:
                missing.append(f"{where} {status}: example answer")
    for name, schema in document["components"]["schemas"].items():
        for field, spec in schema.get("properties", {}).items():
            if not spec.get("description", "").strip():
                missing.append(f"{name}.{field}: description")
            if "example" not in spec and not _is_structure(spec):
                missing.append(f"{name}.{field}: example")
    return missing


def test_every_operation_and_field_is_described_with_an_example(document: dict[str, Any]) -> None:
    assert undocumented(document) == []


def test_a_field_without_description_or_example_is_named() -> None:
    """The check above can fail: a new field with neither, or an answer without an example, is named."""
    document = {
        "paths": {"/api/v1/x": {"get": {"description": "X.", "responses": {"200": _answer({})}}}},
        "components": {"schemas": {"Thing": {"properties": {"new": {"type": "string"}}}}},
    }
    assert undocumented(document) == [
        "GET /api/v1/x: example request (curl)",
        "GET /api/v1/x 200: example answer",
        "Thing.new: description",
        "Thing.new: example",
    ]


def _answer(media: dict[str, Any]) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": {}, **media}}}


def as_json_schema(schema: Any, components: dict[str, Any]) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: references inlined, `nullable` as a null type."""
    if isinstance(schema, list):
        return [as_json_schema(item, components) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return as_json_schema(components[schema["$ref"].removeprefix(_REF)], components)
    converted = {key: as_json_schema(value, components) for key, value in schema.items() if key != "example"}
    if schema.get("nullable"):
        return {"anyOf": [{k: v for k, v in converted.items() if k != "nullable"}, {"type": "null"}]}
    return converted


def examples(document: dict[str, Any]) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(where, example, its schema) for every example of the document (the test above names those missing)."""
    for method, path, op in operations(document):
        for p in op.get("parameters", []):
            if "example" in p or "example" in p["schema"]:
                example = p.get("example", p["schema"].get("example"))
                yield f"{method} {path} parameter {p['name']}", example, p["schema"]
        for status, media in [
            ("body", op.get("requestBody", {}).get("content", {}).get("application/json")),
            *(
                (status, a.get("content", {}).get("application/json"))
                for status, a in op["responses"].items()
            ),
        ]:
            if media is not None and "example" in media:
                yield f"{method} {path} {status}", media["example"], media["schema"]
    for name, schema in document["components"]["schemas"].items():
        for field, spec in schema.get("properties", {}).items():
            if "example" in spec:
                yield f"{name}.{field}", spec["example"], spec


def test_every_example_is_valid_for_its_schema(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    checked = 0
    for where, example, schema in examples(document):
        try:
            jsonschema.validate(example, as_json_schema(schema, components))
        except jsonschema.ValidationError as e:
            pytest.fail(f"{where}: {e.message}")
        checked += 1
    assert checked > 100


def curl_request(source: str) -> tuple[str, str, dict[str, str], Any]:
    """Method, URL, headers and JSON body of a curl example, as a shell would pass them."""
    # a backslash before a newline continues the line in a shell; shlex leaves that to its caller
    words = shlex.split(source.replace("\\\n", " ").replace("$GITLAB_TOKEN", "TOKEN"))
    assert words[0] == "curl"
    method, headers, body, url = "GET", {}, None, None
    args = iter(words[1:])
    for word in args:
        if word == "-X":
            method = next(args)
        elif word == "-H":
            name, value = next(args).split(": ", 1)
            headers[name] = value
        elif word == "-d":
            body = json.loads(next(args))
            method = "POST" if method == "GET" else method
        else:
            assert url is None and not word.startswith("-"), word
            url = word
    assert url is not None
    return method, url, headers, body


def test_each_curl_example_is_a_request_the_registry_answers_as_documented(
    make_app: Callable[..., Flask], document: dict[str, Any]
) -> None:
    client: FlaskClient = make_app().test_client()
    for method, path, op in operations(document):
        (sample,) = op["x-codeSamples"]
        got_method, url, headers, body = curl_request(sample["source"])
        assert got_method == method, sample["source"]
        assert url.startswith(BASE_URL + path.split("{")[0]), sample["source"]
        if "requestBody" in op:
            assert body == op["requestBody"]["content"]["application/json"]["example"]
            assert headers["Content-Type"] == "application/json"
        role = "admin" if "/admin/" in path else "maintainer"
        assert headers.pop("Authorization") == "Bearer TOKEN"
        parts = urlsplit(url)
        # the examples' project is ml/vision, which the GitLab simulator knows as project 101
        target = parts.path.replace("/42/", "/101/") + (f"?{parts.query}" if parts.query else "")
        answer = client.open(
            target,
            method=method,
            headers={**headers, "Authorization": f"Bearer {TOKENS[role]}"},
            data=None if body is None else json.dumps(body),
        )
        assert str(answer.status_code) in op["responses"], (method, path, answer.status_code, answer.text)
        assert answer.status_code < 500
