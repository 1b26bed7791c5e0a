"""Uploads at the edges, on the wire against gunicorn: cut-off clients, races, hostile paths."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from scripts.harness import RegistryServer
from tests.conftest import TOKENS

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {TOKENS['developer']}"}


def ca(prefix: str, body: bytes) -> str:
    md5 = hashlib.md5(body).hexdigest()
    return f"/ml/vision/-/data/{prefix}/files/md5/{md5[:2]}/{md5[2:]}"


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def wait_until_empty(directory: Path, seconds: float = 10) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p.name for p in directory.iterdir()]
        if not left:
            return left
        time.sleep(0.1)
    return [p.name for p in directory.iterdir()]


def raw_request(server: RegistryServer, head: bytes, body_parts: list[bytes]) -> None:
    """Send a request's head and some body bytes, then hang up without finishing it."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        time.sleep(0.3)


@pytest.mark.parametrize("framing", ["chunked", "sized"])
def test_client_cut_off_mid_upload_leaves_nothing(registry: RegistryServer, framing: str) -> None:
    body = os.urandom(3 * 1024 * 1024)
    path = ca(f"cutoff-{framing}", body)
    head = (f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKENS['developer']}\r\n").encode()
    if framing == "chunked":
        sent = body[: 2 * 1024 * 1024]
        raw_request(
            registry,
            head + b"Transfer-Encoding: chunked\r\n\r\n",
            [f"{len(sent):x}\r\n".encode() + sent + b"\r\n"],
        )
    else:
        raw_request(
            registry,
            head + f"Content-Length: {len(body)}\r\n\r\n".encode(),
            [body[: 2 * 1024 * 1024]],
        )
    assert wait_until_empty(registry.storage / ".tmp") == []
    assert requests.head(registry.url + path, headers=AUTH, timeout=10).status_code == 404
    assert not (registry.storage / "projects" / "101" / f"cutoff-{framing}").exists()


def test_concurrent_uploads_of_one_object_give_one_valid_object(registry: RegistryServer) -> None:
    body = os.urandom(6 * 1024 * 1024)
    url = registry.url + ca("race", body)

    def put(_: int) -> int:
        return requests.put(
            url, data=iter([body[:4_000_000], body[4_000_000:]]), headers=AUTH, timeout=60
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(put, range(8)))
    assert statuses == [200] * 7 + [201]
    stored = registry.storage / "projects" / "101" / ca("race", body).split("/-/data/")[1]
    assert hashlib.md5(stored.read_bytes()).hexdigest() == hashlib.md5(body).hexdigest()
    assert wait_until_empty(registry.storage / ".tmp") == []


def test_concurrent_different_bodies_at_one_path_keep_one_consistent_object(
    registry: RegistryServer,
) -> None:
    url = registry.url + "/ml/vision/-/data/race/model.pkl"
    bodies = [os.urandom(1024 * 1024) for _ in range(6)]

    def put(body: bytes) -> int:
        return requests.put(url, data=body, headers=AUTH, timeout=60).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(put, bodies))
    assert statuses == [200] * 5 + [201]  # one creates, each other replaces (DESIGN 3.2)
    head = requests.head(url, headers=AUTH, timeout=10)
    served = requests.get(url, headers=AUTH, timeout=30).content
    assert served in bodies and hashlib.md5(served).hexdigest() == head.headers["X-Checksum-MD5"]
    # every version under a key of its own, each whole: the one served and the five replaced (the trash's)
    versions = [p for p in (registry.storage / "versions" / "101").rglob("model.pkl") if "/race/" in str(p)]
    assert sorted(v.read_bytes() for v in versions) == sorted(bodies)
    trashed = requests.get(
        registry.url + "/api/v1/projects/101/trash", params={"prefix": "race/"}, headers=AUTH, timeout=10
    ).json()["objects"]
    assert sorted(t["md5"] for t in trashed if t["path"] == "race/model.pkl") == sorted(
        hashlib.md5(b).hexdigest() for b in bodies if b != served
    )


@pytest.mark.parametrize(
    "target",
    [
        "/ml/vision/-/data/evil/../../../../escape",
        "/ml/vision/-/data/evil/%2e%2e/%2e%2e/%2e%2e/escape",
        "/ml/vision/-/data/evil/..%2f..%2f..%2fescape",
        "/ml/vision/-/data/evil/a%5c..%5c..%5cescape",
        "/ml/vision/-/data/evil/a%01b",
        "/ml/vision/-/data/evil/a%0ab",
        "/ml/vision/-/data/evil//double",
        "/ml/vision/-/data/evil/" + "x" * 1025,
        "/-/projects/101/data/evil/%2e%2e/%2e%2e/escape",
    ],
)
def test_bad_paths_are_400_and_write_nothing(registry: RegistryServer, target: str) -> None:
    before = files_under(registry.storage)
    parts = urlsplit(registry.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("PUT", target, skip_accept_encoding=True)
    conn.putheader("Authorization", f"Bearer {TOKENS['developer']}")
    conn.putheader("Content-Length", "5")
    conn.endheaders(b"owned")
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 400, (response.status, response.reason)
    assert "Invalid path" in response.reason
    assert files_under(registry.storage) - before <= {"registry.db-wal", "registry.db-shm"}
    assert not list(registry.storage.parent.glob("escape*"))
