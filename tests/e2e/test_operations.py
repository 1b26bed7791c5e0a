"""Operations of a registry under gunicorn with JSON logs: /-/metrics counters move with a real dvc push
and pull (summed over both gunicorn workers), every log line is JSON with the request id of its request,
and no token or signature appears in the logs."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scripts.harness import RegistryServer, Simulator, start_registry
from tests.conftest import TOKENS
from tests.e2e.dvc import workspace

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry"), gitlab.url, REGISTRY_LOG_FORMAT="json")
    yield server
    server.stop()


def scrape(registry: RegistryServer) -> dict[str, float]:
    """Samples by `name{labels}`."""
    text = requests.get(f"{registry.url}/-/metrics", timeout=10).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def total(samples: dict[str, float], prefix: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples.items() if k.startswith(prefix) and all(w in k for w in wanted))


def test_metrics_move_with_a_dvc_push_and_pull(registry: RegistryServer, tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    (dataset / "data").mkdir(parents=True)
    for i in range(30):
        (dataset / "data" / f"f{i}.bin").write_bytes(os.urandom(1000 + i))
    (dataset / "big.bin").write_bytes(os.urandom(100_000))
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote("reg", f"{registry.url}/ml/vision/-/data/ops", auth="bearer", token=TOKENS["developer"])
    before = scrape(registry)

    dvc.run("push", "-r", "reg")
    pushed = scrape(registry)
    data_route = "/<anypath:project_path>/-/data/<anypath:object_path>"
    created = total(pushed, "registry_http_requests_total", route=data_route, status="201")
    assert created - total(before, "registry_http_requests_total", route=data_route, status="201") == 32
    stored = sum(f.stat().st_size for f in dataset.rglob("*") if f.is_file())
    assert pushed["registry_upload_bytes_total"] - before.get("registry_upload_bytes_total", 0) >= stored
    assert total(pushed, "registry_gitlab_api_calls_total", outcome="2xx") > 0
    assert total(pushed, "registry_auth_cache_lookups_total", result="gitlab") >= 1
    assert total(pushed, "registry_auth_cache_lookups_total", result="local") > 10  # the cache works
    assert total(pushed, "registry_http_request_duration_seconds_count", route=data_route) >= 32
    assert pushed["registry_deletion_backlog_projects"] == 0

    dvc.forget_local_data()
    dvc.run("pull", "-r", "reg")
    pulled = scrape(registry)
    downloads = total(pulled, "registry_http_requests_total", route=data_route, method="GET", status="200")
    before_pull = total(pushed, "registry_http_requests_total", route=data_route, method="GET", status="200")
    assert downloads - before_pull >= 32  # small objects are streamed (REGISTRY_DOWNLOAD_MODE=auto)


def test_json_logs_with_request_ids_and_no_secrets(registry: RegistryServer, tmp_path: Path) -> None:
    requests.put(
        f"{registry.url}/ml/vision/-/data/ops/logged.bin",
        data=b"x",
        headers={"Authorization": f"Bearer {TOKENS['developer']}", "X-Request-Id": "trace-4711"},
        timeout=10,
    )
    wrong = requests.get(
        f"{registry.url}/ml/vision/-/data/ops/logged.bin",
        headers={"PRIVATE-TOKEN": TOKENS["revoked"]},
        timeout=10,
    )
    assert wrong.status_code == 401 and wrong.headers["X-Request-Id"]
    download = requests.get(
        f"{registry.url}/api/v1/projects/101/objects/download",
        params={"path": "ops/logged.bin"},
        headers={"Authorization": f"Bearer {TOKENS['developer']}"},
        timeout=10,
    ).json()["url"]
    assert (
        requests.get(download, timeout=10).content == b"x"
    )  # a signed blob URL: its token must not be logged
    text = registry.log_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    access = [line for line in lines if line["logger"] == "app.access"]
    mine = [line for line in access if line["request_id"] == "trace-4711"]
    assert [(line["http"]["method"], line["http"]["status"]) for line in mine] == [("PUT", 201)]
    assert all(line["request_id"] for line in access)
    assert any(line["logger"].startswith("gunicorn") for line in lines)  # gunicorn's own lines are JSON too
    for secret in TOKENS.values():
        assert secret not in text
    token = download.rsplit("/", 1)[1]
    assert token not in text and "/-/blobs/[signed]" in text
    assert not re.search(r"Bearer \S", text)


def test_serve_sets_its_defaults_and_removes_the_metrics_directory_it_made(
    gitlab: Simulator, tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    server = start_registry(tmp_path / "registry", gitlab.url, TMPDIR=str(temp))
    try:
        made = list(temp.glob("registry-metrics-*"))
        assert len(made) == 1 and requests.get(f"{server.url}/-/metrics", timeout=10).ok
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
        if "MALLOC_ARENA_MAX" not in os.environ:  # serve's default: bounded upload memory (README)
            assert b"MALLOC_ARENA_MAX=1" in environ and b"MALLOC_MMAP_THRESHOLD_=4194304" in environ
            assert b"MALLOC_TRIM_THRESHOLD_=16777216" in environ
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert list(temp.glob("registry-metrics-*")) == []  # one leaked per start before
