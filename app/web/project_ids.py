"""Projects in `/api/v1/projects/:id` as GitLab's API names them: a numeric id, or the full path URL-encoded
(`ml%2Fvision`). Servers decode PATH_INFO, so the encoded slashes are put back for that one segment from
the raw request URI before routing, and the `project` converter turns the segment into a ProjectRef."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from werkzeug.routing import BaseConverter

from app.model import ProjectRef

PREFIX = "/api/v1/projects/"


class ProjectConverter(BaseConverter):
    """One path segment: digits are a project id, anything else a (decoded) full path."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> ProjectRef:
        return ProjectRef(id=int(value)) if value.isdigit() else ProjectRef(path=unquote(value))

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
