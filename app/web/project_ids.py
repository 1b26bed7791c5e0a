"""Projects in `/api/v1/projects/:id` as GitLab's API names them: a numeric id, or the full path URL-encoded
(`ml%2Fvision`). Servers decode PATH_INFO, so the encoded slashes are put back for that one segment from
the raw request URI before routing, and the `project` converter turns the segment into a ProjectRef."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from werkzeug.routing import BaseConverter, IntegerConverter, Map, ValidationError

from app.model.projects import ProjectRef

PREFIX = "/api/v1/projects/"
MAX_ID = 2**63 - 1  # GitLab's ids are PostgreSQL bigints, and so are the index's


def project_ref(text: str) -> ProjectRef | None:
    """A project by its numeric id (ASCII digits) or its full path; None for an id no project can have
    (0, past MAX_ID) and for an empty path."""
    if text.isascii() and text.isdigit():
        number = int(text) if len(text) <= len(str(MAX_ID)) else 0
        return ProjectRef(id=number) if 0 < number <= MAX_ID else None
    return ProjectRef(path=text) if text else None


class IdConverter(IntegerConverter):
    """`<id:project_id>`: a GitLab id, 1 to MAX_ID (ASCII digits); anything else matches no route (404)
    rather than overflowing a database column."""

    regex = r"[0-9]+"

    def __init__(self, map: Map) -> None:
        super().__init__(map, min=1, max=MAX_ID)


class ProjectConverter(BaseConverter):
    """One path segment: digits are a project id, anything else a (decoded) full path."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> ProjectRef:
        found = project_ref(value) if value.isdigit() else ProjectRef(path=unquote(value))
        if found is None:
            raise ValidationError()  # an id no project has: 404
        return found

    def to_url(self, value: Any) -> str:
        ref: ProjectRef = value
        return str(ref.id) if ref.id is not None else str(ref.path).replace("/", "%2F")


class EncodedProjectPaths:
    """WSGI middleware: `/api/v1/projects/ml%2Fvision/objects` keeps its `%2F` through routing."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").partition("?")[0]
        if raw.startswith(PREFIX):
            segment, slash, rest = raw[len(PREFIX) :].partition("/")
            if "%2f" in segment.lower():
                decoded_rest = unquote(rest).encode("utf-8").decode("latin-1")  # WSGI's str of bytes
                environ["PATH_INFO"] = PREFIX + segment + slash + decoded_rest
        result: Iterable[bytes] = self._app(environ, start_response)
        return result
