"""`GET /api/v1/docs`: the API reference as one server-rendered page, read from the OpenAPI document,
with its stylesheet served by the app (no CDN, no JavaScript: registries run in closed networks)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, render_template

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
    if schema.get("type") == "array":
        inner = type_of(schema.get("items", {}))
        notes = [*inner["notes"], *([f"at most {schema['maxItems']} items"] if "maxItems" in schema else [])]
        return {"text": f"array of {inner['text']}", "link": inner["link"], "notes": notes}
    text = schema.get("type", "any")
    if "format" in schema:
        text = f"{text} ({schema['format']})"
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


def reference(document: dict[str, Any]) -> dict[str, Any]:
    """What the page lists: every operation (method, path, summary, parameters, body, answers) and every
    schema's fields, from an OpenAPI 3 document."""
    operations = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            operations.append(
                {
                    "anchor": re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-"),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "description": p.get("description", ""),
                            "type": type_of(p.get("schema", {})),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": _schema_name(op.get("requestBody", {}).get("content")),
                    "responses": [
                        {
                            "status": code,
                            "description": r["description"],
                            "schema": _schema_name(r.get("content")),
                        }
                        for code, r in sorted(op["responses"].items())
                    ],
                }
            )
    schemas = {
        name: [
            {
                "name": field,
                "required": field in schema.get("required", []),
                "description": spec.get("description", ""),
                "type": type_of(spec),
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
