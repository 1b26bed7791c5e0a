"""The one place errors become responses: the status line carries the message (DVC prints only the
reason phrase), the body repeats it as {"error": {"code", "message"}}, or as a page for a browser."""

from __future__ import annotations

import logging
import re
import threading
import time

from flask import Flask, Response, g, json, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import HTTPException

from app.errors import RegistryError
from app.logs import masked_path
from app.web.context import services
from app.web.error_pages import error_page
from app.web.negotiation import prefers_html

log = logging.getLogger(__name__)
_NOT_IN_A_STATUS_LINE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9112: no control but HTAB


def reason_phrase(message: str) -> str:
    """A message made safe for an HTTP status line: one line, latin-1, bounded."""
    line = _NOT_IN_A_STATUS_LINE.sub("?", " ".join(message.split()))[:300]
    return line.encode("latin-1", "replace").decode("latin-1")


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error whose reason phrase is the message (its code goes to the access log): JSON, or a page
    for a browser that prefers HTML (same status line and headers)."""
    g.error_code = code
    headers = headers or {}
    page = prefers_html(request)
    if request.method == "HEAD":
        body = ""
    elif page:
        body = error_page(status, code, message, headers)
    else:
        body = json.dumps({"error": {"code": code, "message": message}})
    response = Response(body, mimetype="text/html" if page else "application/json", headers=headers)
    response.status = f"{status} {reason_phrase(message)}"
    response.vary.add("Accept")  # a page or JSON, by Accept: caches must keep them apart
    if status == 401:  # browsers prompt for a password on a Basic challenge; a page offers sign-in instead
        scheme = "Bearer" if page else "Basic"
        response.headers.setdefault("WWW-Authenticate", f'{scheme} realm="GitLab Data Registry"')
    return response


_DEPENDENCIES = {
    "storage_unavailable": "storage",
    "database_unavailable": "database",
    "gitlab_unavailable": "gitlab",
}


def cause_of(error: BaseException) -> str:
    """What made a dependency fail, for a log line: the innermost cause's kind and first line (the
    database driver's own message, not SQLAlchemy's, which repeats the statement and its parameters)."""
    cause: BaseException = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    cause = getattr(cause, "orig", None) or cause
    lines = str(cause).strip().splitlines() or [""]
    return masked_path(f"{type(cause).__name__}: {lines[0][:300]}")


class DependencyFailures:
    """A dependency's failures logged as one warning per dependency per `every` seconds, with the cause
    and how many requests failed since the last warning: an outage is visible without flooding the log."""

    def __init__(self, every: float = 60.0) -> None:
        self._every = every
        self._last: dict[str, float] = {}
        self._since: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, dependency: str, error: RegistryError) -> None:
        now = time.monotonic()
        with self._lock:
            self._since[dependency] = self._since.get(dependency, 0) + 1
            if now - self._last.get(dependency, -self._every) < self._every:
                return
            self._last[dependency], failed = now, self._since.pop(dependency)
        log.warning(
            "%s is failing: %s (%s; %d request(s) failed since the last warning)",
            dependency,
            error.message,
            cause_of(error),
            failed,
            extra={"dependency": dependency},
        )


def http_error(error: HTTPException) -> Response:
    """werkzeug's own errors (no route, a method a route does not take, a malformed request) as JSON."""
    code = (error.name or "error").lower().replace(" ", "_")
    response = error_response(error.code or 500, code, error.description or error.name)
    valid_methods = getattr(error, "valid_methods", None)
    if error.code == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    return response


def register(app: Flask) -> None:
    """Install the handlers that translate every error into the JSON envelope."""
    failures = DependencyFailures()

    @app.errorhandler(RegistryError)
    def _registry_error(error: RegistryError) -> Response:
        if error.status == 413:  # quota_exceeded, file_too_large
            services().metrics.quota_refusals.labels(reason=error.code).inc()
        dependency = _DEPENDENCIES.get(error.code)
        if dependency is not None:
            services().metrics.dependency_errors.labels(dependency=dependency).inc()
            failures.record(dependency, error)
        return error_response(error.status, error.code, error.message, error.headers)

    app.register_error_handler(HTTPException, http_error)

    @app.errorhandler(ParseException)
    def _malformed_body(error: ParseException) -> Response:
        # gunicorn found the body's framing broken while the app read it (a bad chunk size, say)
        return error_response(400, "malformed_body", "Malformed request body (chunked transfer coding)")

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Internal error; the registry logged it")
