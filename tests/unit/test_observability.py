"""Metrics and request ids in-process: quota refusals counted, request ids echoed (or made up when the
client's is unusable), the worker's job runs counted, log lines carry the request id."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from flask import Flask

from app.components import build_components
from app.jobs.scheduler import run_once
from app.logs import JSONFormatter, RequestIdFilter, masked_path
from tests.conftest import TOKENS, bearer


def sample(text: str, name: str) -> float:
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines() if line.startswith(name))


def test_quota_and_size_refusals_are_counted(make_app: Callable[..., Flask]) -> None:
    client = make_app(default_quota="10", max_file_size="5").test_client()
    assert client.put("/ml/vision/-/data/a", data=b"123456", headers=bearer("developer")).status_code == 413
    client.put("/ml/vision/-/data/b", data=b"1234", headers=bearer("developer"))
    assert client.put("/ml/vision/-/data/c", data=b"12345", headers=bearer("developer")).status_code == 201
    assert client.put("/ml/vision/-/data/d", data=b"12345", headers=bearer("developer")).status_code == 413
    text = client.get("/-/metrics").text
    assert sample(text, 'registry_quota_refusals_total{reason="file_too_large"}') == 1
    assert sample(text, 'registry_quota_refusals_total{reason="quota_exceeded"}') == 1
    assert sample(text, "registry_upload_bytes_total") == 9


@pytest.mark.parametrize(
    ("given", "echoed"), [("abc-123", True), ("bad id with spaces", False), ("x" * 65, False)]
)
def test_request_ids(make_app: Callable[..., Flask], given: str, echoed: bool) -> None:
    answer = make_app().test_client().get("/-/health", headers={"X-Request-Id": given})
    assert (answer.headers["X-Request-Id"] == given) is echoed
    assert len(answer.headers["X-Request-Id"]) >= 7


def test_log_lines_carry_the_request_id(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())
    make_app().test_client().get(
        "/ml/vision/-/data/x", headers={"X-Request-Id": "rid-1", **bearer("developer")}
    )
    access = [r for r in caplog.records if r.name == "app.access"]
    assert [getattr(r, "request_id", None) for r in access] == ["rid-1"]
    line = json.loads(JSONFormatter().format(access[0]))
    assert (
        line["request_id"] == "rid-1"
        and line["http"]["status"] == 404
        and line["http"]["path"] == "/ml/vision/-/data/x"
    )
    assert TOKENS["developer"] not in caplog.text


def test_signed_paths_are_masked() -> None:
    assert masked_path("/-/blobs/abc.def.ghi") == "/-/blobs/[signed]"
    assert masked_path("/ml/vision/-/data/x") == "/ml/vision/-/data/x"


def test_worker_job_runs_are_counted(
    make_app: Callable[..., Flask], tmp_path: object, database_url: str
) -> None:
    make_app()
    parts = build_components({"storage_url": f"file://{tmp_path}/storage", "database_url": database_url})
    assert run_once(parts, ["deletions", "stale_uploads"])
    text = parts.metrics.render()[0].decode()
    assert sample(text, 'registry_job_runs_total{job="deletions",outcome="ok"}') == 1
    assert sample(text, 'registry_job_runs_total{job="stale_uploads",outcome="ok"}') == 1
