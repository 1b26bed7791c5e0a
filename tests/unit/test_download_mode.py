"""REGISTRY_DOWNLOAD_MODE: auto (the default) streams objects below REGISTRY_DOWNLOAD_STREAM_BELOW and
redirects larger ones; redirect and proxy as before; bad values stop the process naming the variable."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import requests
from flask import Flask

from app.errors import ConfigurationError
from app.settings import load_settings
from scripts.harness import BIN, Simulator, start_registry
from tests.conftest import TOKENS, bearer

BASE = "/ml/vision/-/data"


def ca_path(body: bytes) -> str:
    digest = hashlib.md5(body).hexdigest()
    return f"{BASE}/dvc/files/md5/{digest[:2]}/{digest[2:]}"


def test_auto_is_the_default_and_streams_small_objects(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    body = os.urandom(4096)  # DVC's typical small file
    client.put(ca_path(body), data=body, headers=bearer("developer"))
    answer = client.get(ca_path(body), headers=bearer("reporter"))
    assert answer.status_code == 200 and answer.data == body
    assert "Location" not in answer.headers
    assert answer.headers["X-Checksum-MD5"] == hashlib.md5(body).hexdigest()
    assert answer.headers["Content-Length"] == "4096"


def test_auto_chooses_by_size_from_the_index(make_app: Callable[..., Flask]) -> None:
    client = make_app(download_mode="auto", download_stream_below=1000).test_client()
    below, at = os.urandom(999), os.urandom(1000)
    for body in (below, at):
        client.put(ca_path(body), data=body, headers=bearer("developer"))
    streamed = client.get(ca_path(below), headers=bearer("reporter"))
    assert streamed.status_code == 200 and streamed.data == below
    redirected = client.get(ca_path(at), headers=bearer("reporter"))
    assert redirected.status_code == 302 and redirected.headers["X-Object-Size"] == "1000"
    assert client.get(redirected.headers["Location"]).data == at  # the signed URL serves it


def test_auto_streams_ranges_and_answers_conditionals(make_app: Callable[..., Flask]) -> None:
    client = make_app(download_mode="auto").test_client()
    body = os.urandom(5000)
    client.put(ca_path(body), data=body, headers=bearer("developer"))
    ranged = client.get(ca_path(body), headers={**bearer("reporter"), "Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.data == body[100:200]
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    same = client.get(ca_path(body), headers={**bearer("reporter"), "If-None-Match": etag})
    assert same.status_code == 304 and same.data == b""
    assert client.get(f"{BASE}/dvc/files/md5/00/missing", headers=bearer("reporter")).status_code == 404


@pytest.mark.parametrize(("mode", "size", "status"), [("redirect", 10, 302), ("proxy", 10_000, 200)])
def test_redirect_and_proxy_ignore_the_threshold(
    make_app: Callable[..., Flask], mode: str, size: int, status: int
) -> None:
    client = make_app(download_mode=mode, download_stream_below=1000).test_client()
    body = os.urandom(size)
    client.put(ca_path(body), data=body, headers=bearer("developer"))
    answer = client.get(ca_path(body), headers=bearer("reporter"))
    assert answer.status_code == status
    assert (answer.data == body) if status == 200 else ("Location" in answer.headers)


def test_settings_accept_auto_and_sizes() -> None:
    settings = load_settings(
        environ={"REGISTRY_DOWNLOAD_MODE": "auto", "REGISTRY_DOWNLOAD_STREAM_BELOW": "256KiB"}
    )
    assert (settings.download_mode, settings.download_stream_below) == ("auto", 256 * 1024)
    assert load_settings(environ={}).download_mode == "auto"


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("REGISTRY_DOWNLOAD_MODE", "automatic", "auto, redirect, proxy"),
        ("REGISTRY_DOWNLOAD_STREAM_BELOW", "lots", "REGISTRY_DOWNLOAD_STREAM_BELOW"),
        ("REGISTRY_DOWNLOAD_STREAM_BELOW", "-1", "REGISTRY_DOWNLOAD_STREAM_BELOW"),
    ],
)
def test_bad_values_stop_the_server_naming_the_variable(
    tmp_path: Path, name: str, value: str, said: str
) -> None:
    with pytest.raises(ConfigurationError, match=name):
        load_settings(environ={name: value})
    env = {**os.environ, "REGISTRY_STORAGE_URL": f"file://{tmp_path}", name: value}
    done = subprocess.run(
        [BIN / "data-registry", "serve", "--bind", "127.0.0.1:1"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode != 0
    assert said in done.stderr.decode() and "Traceback" not in done.stderr.decode()


def test_a_streamed_get_stops_reading_storage_when_the_client_hangs_up(
    tmp_path: Path, simulator: Simulator
) -> None:
    registry = start_registry(
        tmp_path / "registry",
        simulator.url,
        serve_args=("--workers", "1"),
        REGISTRY_DOWNLOAD_MODE="auto",
        REGISTRY_DOWNLOAD_STREAM_BELOW="256MiB",
    )
    try:
        body = os.urandom(64 << 20)  # far more than the sockets buffer: the worker waits on the client
        path = ca_path(body)
        put = requests.put(registry.url + path, data=body, headers=bearer("developer"), timeout=60)
        assert put.status_code == 201
        worker = psutil.Process(registry.process.pid).children()[0]
        stored = registry.storage.resolve()

        def reading() -> bool:
            return any(Path(f.path).is_relative_to(stored) for f in worker.open_files())

        port = int(registry.url.rsplit(":", 1)[1])
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKENS['reporter']}\r\n\r\n".encode()
        )
        assert client.recv(65536).startswith(b"HTTP/1.1 200")
        assert _eventually(reading), "the worker should be streaming the object"
        client.close()  # hang up after a few KB of 64 MiB
        assert _eventually(lambda: not reading()), "the worker kept reading after the client left"
    finally:
        registry.stop()


def _eventually(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False
