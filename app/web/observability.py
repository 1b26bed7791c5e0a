"""Per request: an id (the client's X-Request-Id when sane, else a new one) on every log line and on the
response, the request counted and timed for Prometheus, and one access log line."""

from __future__ import annotations

import re
import time
import uuid

from flask import Flask, Response, g, request

from app import logs
from app.web.context import services
from app.web.credentials import client_address

_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def register(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        g.request_token = logs.request_id.set(g.request_id)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("started", time.perf_counter())
        response.headers["X-Request-Id"] = g.get("request_id", "")
        route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        svc = services()
        svc.metrics.requests.labels(
            route=route, method=request.method, status=str(response.status_code)
        ).inc()
        svc.metrics.latency.labels(route=route, method=request.method).observe(time.perf_counter() - started)
        if svc.settings.access_log:
            logs.access(
                remote=client_address(),  # as a trusted proxy reports it (REGISTRY_TRUSTED_PROXIES)
                method=request.method,
                path=request.path,
                status=response.status_code,
                size=response.content_length,
                agent=request.headers.get("User-Agent"),
                started=started,
                error=g.get("error_code"),
            )
        return response

    @app.teardown_request
    def _forget(_: BaseException | None) -> None:
        token = g.pop("request_token", None)
        if token is not None:
            logs.request_id.reset(token)
