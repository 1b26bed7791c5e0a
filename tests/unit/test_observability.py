"""Metrics and request ids in-process: quota refusals counted, request ids echoed (or made up when the
client's is unusable), the worker's job runs counted, log lines carry the request id."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.components import build_components
from app.db import upgrade
from app.jobs.scheduler import run_once
from app.logs import JSONFormatter, RequestIdFilter, TextFormatter, masked_path
from scripts.harness import Simulator, fresh_database_url
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


def test_text_lines_cannot_be_forged_and_tokens_never_show() -> None:
    """A %0a in a path stays on its line; a signed blob path or URL signature in any line (error
    tracebacks included) is masked."""
    formatter = TextFormatter()
    access = logging.makeLogRecord(
        {
            "name": "app.access",
            "msg": '"%s %s"',
            "args": ("GET", "/x\n127.0.0.1 - - forged"),
            "levelname": "INFO",
        }
    )
    assert "\n" not in formatter.format(access) and "\\x0a" in formatter.format(access)
    try:
        raise ValueError("failed on https://bucket/o?X-Amz-Signature=0123abcd&X-Amz-Date=1")
    except ValueError:
        error = logging.makeLogRecord(
            {
                "name": "app.web.errors",
                "msg": "unhandled error on %s %s",
                "args": ("PUT", "/-/blobs/c2VjcmV0.5.99\rforged"),
                "levelname": "ERROR",
                "exc_info": sys.exc_info(),
            }
        )
    for line in (formatter.format(error), JSONFormatter().format(error)):
        assert "c2VjcmV0" not in line and "0123abcd" not in line, line
        assert "/-/blobs/[signed]" in line and "X-Amz-Signature=[masked]" in line
    assert formatter.format(error).splitlines()[0].endswith("[signed]")  # the \r escaped, then masked
    assert "Traceback" in formatter.format(error).splitlines()[1]


def test_ready_says_to_migrate_an_unmigrated_database(tmp_path: Path, simulator: Simulator) -> None:
    overrides = {
        "storage_url": f"file://{tmp_path / 'storage'}",
        "database_url": fresh_database_url(tmp_path),
        "gitlab_url": simulator.url,
    }
    client = create_app(overrides).test_client()  # no `db upgrade`
    ready = client.get("/-/ready")
    assert ready.status_code == 503 and "data-registry db upgrade" in ready.json["checks"]["database"]
    head = client.head("/ml/open-data/-/data/x")
    assert head.status_code == 503 and "data-registry db upgrade" in head.status
    upgrade(overrides["database_url"])
    assert client.get("/-/ready").status_code == 200


def test_dependency_failures_are_counted_logged_once_a_minute_and_in_the_access_log(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,774 S3 failures used to leave no trace on the server: now each is counted by dependency, the
    first of a minute is a warning with its cause (and later ones say how many failed since), and the
    access line carries the error code."""
    from app.errors import StorageUnavailable

    app = make_app()
    storage = app.extensions["data_registry"].storage

    def unreachable(key: str, chunks: object) -> None:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as e:
            raise StorageUnavailable("S3 is unreachable; try again later") from e

    monkeypatch.setattr(storage, "stage", unreachable)
    caplog.set_level(logging.INFO)
    client = app.test_client()
    for n in range(3):
        answer = client.put(f"/ml/vision/-/data/f{n}", data=b"x", headers=bearer("developer"))
        assert answer.status_code == 503 and answer.headers["Retry-After"]
        assert answer.json["error"]["message"] == "S3 is unreachable; try again later"  # no SDK class
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "is failing" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "storage is failing" in warnings[0].getMessage()
    assert "ConnectionRefusedError: [Errno 111] Connection refused" in warnings[0].getMessage()
    access = [TextFormatter().format(r) for r in caplog.records if r.name == "app.access"]
    assert len(access) == 3 and all(line.endswith(" error=storage_unavailable") for line in access)
    metrics = client.get("/-/metrics").text
    assert sample(metrics, 'registry_dependency_errors_total{dependency="storage"}') == 3


def test_the_access_log_names_the_client_a_trusted_proxy_reports(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    forwarded = {"X-Forwarded-For": "203.0.113.7, 10.0.0.9"}
    make_app(trusted_proxies="127.0.0.0/8,10.0.0.0/8").test_client().get("/-/health", headers=forwarded)
    make_app().test_client().get("/-/health", headers=forwarded)  # no trusted proxy: the header is a lie
    remotes = [r.http["remote"] for r in caplog.records if r.name == "app.access"]  # type: ignore[attr-defined]
    assert remotes == ["203.0.113.7", "127.0.0.1"]
