"""Per request: an id (the client's X-Request-Id when sane, else a new one) on every log line and on the
response, the request counted and timed for Prometheus, and one access log line."""

from __future__ import annotations

import os
import re
import time

from flask import Flask, Response, g
from flask.globals import app_ctx, request_ctx

from app import logs
from app.web.context import services
from app.web.credentials import client_address

_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def register(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        ctx = app_ctx.g  # one look-up through each context proxy: ~1 µs each
        given = request_ctx.request.headers.get("X-Request-Id", "")
        ctx.request_id = given if _SANE_ID.match(given) else os.urandom(16).hex()  # uuid4: 4x the CPU
        ctx.request_token = logs.request_id.set(ctx.request_id)
        ctx.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        ctx, req = app_ctx.g, request_ctx.request
        started = ctx.get("started", time.perf_counter())
        response.headers["X-Request-Id"] = ctx.get("request_id", "")
        route = req.url_rule.rule if req.url_rule is not None else "(unmatched)"
        svc = services()
        svc.metrics.count_request(route, req.method, response.status_code, time.perf_counter() - started)
        if svc.settings.access_log:
            logs.access(
                remote=client_address(),  # as a trusted proxy reports it (REGISTRY_TRUSTED_PROXIES)
                method=req.method,
                path=req.path,
                status=response.status_code,
                size=response.content_length,
                agent=req.headers.get("User-Agent"),
                started=started,
                error=ctx.get("error_code"),
            )
        return response

    @app.teardown_request
    def _forget(_: BaseException | None) -> None:
        token = g.pop("request_token", None)
        if token is not None:
            logs.request_id.reset(token)
