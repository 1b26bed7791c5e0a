"""The examples of the OpenAPI document: an instance of a schema made of its fields' examples, the error
envelope of each refusal, and an operation's request as a curl command."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

BASE_URL = "https://data.example.com"
_REF = "#/components/schemas/"
# the error envelope of each status every operation may answer, as the registry words it (app/errors.py)
ERRORS = {
    400: (
        "bad_request",
        "Invalid request: limit: Must be greater than or equal to 1 and less than or equal to 1000.",
    ),
    401: ("authentication_required", "Authentication required to read from ml/vision"),
    403: ("permission_denied", "Developer role required to write to ml/vision"),
    404: ("project_not_found", "Project ml/vision not found, or it needs a GitLab token to read"),
    413: ("body_too_large", "Request body too large: the limit is 1.0 MiB"),
    429: (
        "rate_limited",
        "Too many look-ups of projects without a GitLab token from this address; retry in 12 s",
    ),
    503: ("gitlab_unavailable", "GitLab is unreachable; try again later"),
}
# and of the refusals particular to some operations
REFUSALS = {
    409: ("conflict", "A different object exists at datasets/images.tar; set overwrite to replace it"),
    413: ("quota_exceeded", "Quota exceeded for ml/vision: 9.8 GiB of 10.0 GiB used"),
}


def error_example(status: int, *, refusal: bool = False) -> dict[str, Any]:
    """The error body an operation answers with for `status`, one of its own refusals or a common error."""
    code, message = (REFUSALS if refusal and status in REFUSALS else ERRORS).get(status, ERRORS[400])
    return {"error": {"code": code, "message": message}}


def instance(schema: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]]) -> Any:
    """An example of `schema`: its own `example`, else an object of its properties' examples, or a list
    of one example item; None where a field has none (the document's tests name such fields)."""
    if "example" in schema:
        return schema["example"]
    if "$ref" in schema:
        return instance(schemas[schema["$ref"].removeprefix(_REF)], schemas)
    for combined in ("allOf", "anyOf"):  # a nested schema, or a nested schema or null
        if schema.get(combined):
            return instance(schema[combined][0], schemas)
    if schema.get("type") == "array":
        return [instance(schema.get("items", {}), schemas)]
    if "properties" in schema:
        return {name: instance(field, schemas) for name, field in schema["properties"].items()}
    return None


def curl(method: str, path: str, query: Mapping[str, Any], body: Any) -> str:
    """The command that makes this request with a GitLab token, one option per line."""
    url = BASE_URL + path + (f"?{urlencode(query, safe='/%')}" if query else "")
    options = [] if method == "GET" or (method == "POST" and body is not None) else [f"-X {method}"]
    options.append('-H "Authorization: Bearer $GITLAB_TOKEN"')
    if body is not None:
        options += ['-H "Content-Type: application/json"', f"-d {shlex.quote(json.dumps(body))}"]
    return " \\\n  ".join(["curl " + " ".join(options[:1]), *options[1:], shlex.quote(url)])
