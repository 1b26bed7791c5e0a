"""`GET /api/v1/docs`: the API reference as one server-rendered page, read from the OpenAPI document
(descriptions rendered from their Markdown, examples as curl and JSON), with its stylesheet served by the
app (no CDN, no JavaScript: registries run in closed networks)."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, current_app, render_template

from app.web.doc_text import inline, render
from app.web.openapi import build_spec

bp = Blueprint(
    "api_docs",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/api/v1/docs/static",
)
_REF = "#/components/schemas/"
_PAGE = "registry.api_docs_page"


def type_of(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema as the page shows it: its type in words, the schema it links to, its constraints."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(_REF)
        return {"text": name, "link": name, "notes": []}
    if schema.get("allOf"):
        return type_of(schema["allOf"][0])
    if schema.get("anyOf"):  # apispec's nullable nested schema: the schema, or null
        shown = type_of(schema["anyOf"][0])
        return shown | {"text": shown["text"] + " or null"}
    if schema.get("type") == "array":
        inner = type_of(schema.get("items", {}))
        notes = [*inner["notes"], *([f"at most {schema['maxItems']} items"] if "maxItems" in schema else [])]
        return {"text": f"array of {inner['text']}", "link": inner["link"], "notes": notes}
    text = schema.get("type") or " or ".join(s.get("type", "any") for s in schema.get("oneOf", [])) or "any"
    if "format" in schema:
        text = f"{text} ({schema['format']})"
    if schema.get("nullable"):
        text += " or null"
    notes = []
    if "enum" in schema:
        notes.append("one of " + ", ".join(str(value) for value in schema["enum"]))
    bounds = (("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥"), ("maxLength", "length ≤"))
    for key, words in bounds:
        if key in schema:
            notes.append(f"{words} {schema[key]}")
    if "pattern" in schema:
        notes.append(f"matches {schema['pattern']}")
    if "default" in schema and schema["default"] not in ("", None):
        notes.append(f"default {schema['default']}")
    return {"text": text, "link": None, "notes": notes}


def _schema_name(content: dict[str, Any] | None) -> str | None:
    if not content:
        return None
    ref: str = content["application/json"]["schema"].get("$ref", "")
    return ref.removeprefix(_REF) or None


def _example(holder: dict[str, Any]) -> str | None:
    """An example as compact JSON, from the object or, for a parameter, its schema."""
    for place in (holder, holder.get("schema", {})):
        if "example" in place:
            return json.dumps(place["example"], ensure_ascii=False)
    return None


def _answer(code: str, answer: dict[str, Any]) -> dict[str, Any]:
    media = answer.get("content", {}).get("application/json", {})
    return {
        "status": code,
        "description": render(answer["description"]),
        "schema": _schema_name(answer.get("content")),
        "example": json.dumps(media["example"], indent=2, ensure_ascii=False) if "example" in media else None,
        "error": media.get("example", {}).get("error") if not code.startswith("2") else None,
    }


def _operation(method: str, path: str, op: dict[str, Any]) -> dict[str, Any]:
    body = op.get("requestBody", {})
    return {
        "anchor": re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-"),
        "method": method.upper(),
        "path": path,
        "description": render(op.get("description") or op.get("summary", "")),
        "parameters": [
            {
                "name": p["name"],
                "in": p["in"],
                "required": p.get("required", False),
                "description": render(p.get("description", "")),
                "type": type_of(p.get("schema", {})),
                "example": _example(p),
            }
            for p in op.get("parameters", [])
        ],
        "body": _schema_name(body.get("content")),
        "body_description": inline(body.get("description", "")),
        "curl": [sample["source"] for sample in op.get("x-codeSamples", []) if sample["lang"] == "curl"],
        "responses": [_answer(code, r) for code, r in sorted(op["responses"].items())],
    }


def reference(document: dict[str, Any]) -> dict[str, Any]:
    """What the page lists: every operation (method, path, description, parameters, body, answers, example
    request and answers) and every schema's fields, from an OpenAPI 3 document; descriptions as HTML."""
    operations = [
        _operation(method, path, op)
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    ]
    schemas = {
        name: [
            {
                "name": field,
                "required": field in schema.get("required", []),
                "description": render(spec.get("description", "")),
                "type": type_of(spec),
                "example": _example(spec),
            }
            for field, spec in schema.get("properties", {}).items()
        ]
        for name, schema in sorted(document["components"]["schemas"].items())
    }
    return {"title": document["info"]["title"], "operations": operations, "schemas": schemas}


@bp.get("/api/v1/docs")
def docs() -> str:
    """The API reference page (rendered once per app: the routes do not change)."""
    page: str | None = current_app.extensions.get(_PAGE)
    if page is None:
        page = render_template("api_docs.html", **reference(build_spec(current_app).to_dict()))
        current_app.extensions[_PAGE] = page
    return page
