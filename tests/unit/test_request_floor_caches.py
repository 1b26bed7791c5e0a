"""What the per-request savings keep: the request counters' cached children still count per route, method
and status; gunicorn's access line is still written when its logger would write it, and not built when it
would not; the masking of log lines is unchanged by its shortcuts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from gunicorn.config import Config

from app.gunicorn_config import RegistryLogger
from app.logs import masked_path
from app.metrics import Metrics
from app.web.context import EXTENSION
from tests.conftest import bearer


def sample(metrics: Metrics, line: str) -> float:
    text = metrics.render()[0].decode()
    return sum(float(row.rpartition(" ")[2]) for row in text.splitlines() if row.startswith(line))


def test_requests_are_counted_per_route_method_and_status(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    app = make_app()
    client = app.test_client()
    for _ in range(3):
        assert client.get("/-/health").status_code == 200
    assert client.put("/ml/vision/-/data/here", data=b"x", headers=bearer("developer")).status_code == 201
    for _ in range(2):
        assert client.get("/ml/vision/-/data/missing", headers=bearer("developer")).status_code == 404
    assert client.get("/ml/vision/-/data/here", headers=bearer("developer")).status_code == 200
    assert client.delete("/-/health").status_code == 405
    metrics: Metrics = app.extensions[EXTENSION].metrics
    route = 'registry_http_requests_total{method="%s",route="%s",status="%s"}'
    assert sample(metrics, route % ("GET", "/-/health", "200")) == 3
    assert sample(metrics, route % ("DELETE", "(unmatched)", "405")) == 1
    data = "/<anypath:project_path>/-/data/<anypath:object_path>"
    assert sample(metrics, route % ("GET", data, "404")) == 2  # the same route and method
    assert sample(metrics, route % ("GET", data, "200")) == 1
    latency = 'registry_http_request_duration_seconds_count{method="GET",route="/-/health"}'
    assert sample(metrics, latency) == 3


@pytest.mark.parametrize(("level", "written"), [(logging.WARNING, False), (logging.INFO, True)])
def test_gunicorns_access_line_is_built_only_when_written(
    level: int, written: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = RegistryLogger(Config())
    logger.access_log.setLevel(level)
    built: list[Any] = []
    emitted: list[logging.LogRecord] = []
    monkeypatch.setattr(logger, "atoms", lambda *args: built.append(args) or {"h": "-"})
    monkeypatch.setattr(logger.access_log, "handle", emitted.append)
    monkeypatch.setattr(logger, "_access_log_enabled", True)  # as with the registry's logconfig_dict
    logger.access(object(), object(), {}, 0.1)
    assert bool(built) is written and bool(emitted) is written


def test_masking_is_unchanged_by_its_shortcuts() -> None:
    assert masked_path("/a?credential=AKIA/x&b=1") == "/a?credential=[masked]&b=1"  # any case, as before
    assert (
        masked_path("GET /-/blobs/abc?X-Goog-Signature=ff")
        == "GET /-/blobs/[signed]?X-Goog-Signature=[masked]"
    )
    assert masked_path("/-/blobs") == "/-/blobs" and masked_path("a=b") == "a=b"
