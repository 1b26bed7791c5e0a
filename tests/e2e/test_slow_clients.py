"""Slow clients against the registry under gunicorn: 256 anonymous connections trickling headers and
bodies, a 400 MB anonymous JSON body; bodies framed in ways the worker refuses, stalled 1 MiB bodies
from many addresses and thousands of idle sockets. Meanwhile health answers at once, an authorised
`dvc pull` completes and the workers' memory stays put. Plus the worker's HTTP details a client relies
on."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from scripts.harness import RegistryServer
from scripts.slow_clients import (
    STALLED,
    UNFRAMED,
    HealthProbe,
    SlowClients,
    huge_anonymous_json,
    loopback,
    workers_rss,
)
from tests.conftest import TOKENS
from tests.e2e.dvc import same_tree, workspace

pytestmark = pytest.mark.e2e
AUTH = b"Authorization: Bearer " + TOKENS["developer"].encode()


def connect(registry: RegistryServer) -> socket.socket:
    host, port = registry.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """The status lines of the next `count` final answers (and of any 1xx before them)."""
    data, lines = b"", []
    while sum(not line.startswith(b"HTTP/1.1 1") for line in lines) < count:
        more = sock.recv(65536)
        if not more:
            break
        data += more
        while b"\r\n\r\n" in data:
            head, data = data.split(b"\r\n\r\n", 1)
            lines.append(head.split(b"\r\n", 1)[0])
            length = next(
                (
                    int(h.split(b":")[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(data) < length:
                data += sock.recv(65536)
            data = data[length:]
    return lines


def test_slow_anonymous_clients_starve_nobody(registry: RegistryServer, tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    (dataset / "data").mkdir(parents=True)
    for i in range(50):
        (dataset / "data" / f"{i}.bin").write_bytes(base64.b64encode(bytes([i]) * (100 + i * 40)))
    (dataset / "big.bin").write_bytes(b"big" * 400_000)
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote(
        "r", f"{registry.url}/ml/vision/-/data/slow-clients", auth="bearer", token=TOKENS["developer"]
    )
    dvc.run("push", "-r", "r")
    dvc.forget_local_data()

    rss_before = workers_rss(registry.process.pid)
    peak = [rss_before]
    done = threading.Event()

    def watch_memory() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], workers_rss(registry.process.pid))

    huge: list[tuple[str, int]] = []
    pulled: list[bool] = []
    trickled_upload: list[tuple[bytes, float]] = []

    def pull() -> None:
        time.sleep(5)  # with every slow connection open
        pulled.append(dvc.run("pull", "-r", "r", ok=False).returncode == 0)

    def authorised_trickle() -> None:
        """An authorised upload whose body stops coming: the thread reading it gives up in ~10 s."""
        with connect(registry) as sock:
            sock.sendall(
                b"PUT /ml/vision/-/data/slow-clients/trickled HTTP/1.1\r\nHost: r\r\n"
                + AUTH
                + b"\r\nContent-Length: 5000000\r\n\r\n"
                + b"x" * 1_100_000
            )
            started, answer = time.monotonic(), b""
            while more := sock.recv(65536):
                answer += more
            trickled_upload.append((answer, time.monotonic() - started))

    probe = HealthProbe(registry.url)
    helpers = [
        threading.Thread(target=watch_memory),
        threading.Thread(target=lambda: huge.append(huge_anonymous_json(registry.url))),
        threading.Thread(target=pull),
        threading.Thread(target=authorised_trickle),
    ]
    with SlowClients(registry.url, count=256, interval=1.0) as slow:
        time.sleep(2)
        for helper in helpers:
            helper.start()
        probe.run_for(22)  # past the 20 s given to a request's headers: the slow ones are cut and return
        for helper in helpers[1:]:
            helper.join(timeout=120)
    done.set()
    helpers[0].join()

    assert probe.failures == 0 and probe.p99() < 1.0, (probe.p99(), max(probe.latencies), probe.failures)
    assert pulled == [True], "the authorised dvc pull failed"
    assert same_tree(dataset / "data", dvc.root / "data")
    assert (dvc.root / "big.bin").read_bytes() == (dataset / "big.bin").read_bytes()
    assert huge and huge[0][0].startswith("HTTP/1.1 413"), huge
    assert huge[0][1] < 64 * 1024 * 1024, "the server read most of a body it refuses"
    assert slow.answers.get("408", 0) >= 100, slow.answers  # unfinished headers are cut, with a reason
    assert slow.reopened >= 100
    answer, waited = trickled_upload[0]
    assert answer.startswith(b"HTTP/1.1 400") and b"sent too slowly" in answer and 8 < waited < 20, waited
    assert peak[0] - rss_before < 50 * 1024 * 1024, (rss_before, peak[0])


def test_unframed_stalled_and_idle_clients_starve_nobody(registry: RegistryServer, tmp_path: Path) -> None:
    """All at once: 64 anonymous connections trickling bodies framed as the worker refuses (`gzip,
    chunked`, and `identity` then `chunked` on two lines), 80 anonymous 1 MiB bodies a byte short and
    stalled (from 80 addresses: more than the anonymous share of the body budget), and 2,500 idle
    sockets (from 10 addresses). Health answers at once throughout; authorised reads get their bytes."""
    dataset = tmp_path / "dataset"
    (dataset / "data").mkdir(parents=True)
    for i in range(20):
        (dataset / "data" / f"{i}.bin").write_bytes(os.urandom(1000 + i * 100))
    (dataset / "big.bin").write_bytes(os.urandom(300_000))
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote("r", f"{registry.url}/ml/vision/-/data/unframed", auth="bearer", token=TOKENS["developer"])
    dvc.run("push", "-r", "r")
    dvc.forget_local_data()
    blob = (dataset / "big.bin").read_bytes()
    md5 = hashlib.md5(blob).hexdigest()
    object_url = f"{registry.url}/ml/vision/-/data/unframed/files/md5/{md5[:2]}/{md5[2:]}"
    headers = {"Authorization": AUTH.decode().split(": ", 1)[1]}

    reads: list[bool] = []
    pulled: list[bool] = []
    done = threading.Event()

    def read_objects() -> None:
        while not done.wait(0.2):
            try:
                reads.append(requests.get(object_url, headers=headers, timeout=10).content == blob)
            except requests.RequestException:
                reads.append(False)

    rss_before = workers_rss(registry.process.pid)
    probe = HealthProbe(registry.url)
    attackers = [
        SlowClients(registry.url, 64, 1.0, [o for _, o in UNFRAMED], loopback(8, 40)),
        SlowClients(registry.url, 80, 0.5, [o for _, o in STALLED], loopback(80, 41), trickle=False),
        SlowClients(registry.url, 2500, 1.0, [b""], loopback(10, 42), trickle=False),
    ]
    helpers = [
        threading.Thread(target=read_objects),
        threading.Thread(target=lambda: pulled.append(dvc.run("pull", "-r", "r", ok=False).returncode == 0)),
    ]
    with attackers[0] as unframed, attackers[1], attackers[2]:
        time.sleep(3)  # every connection open, and the stalled bodies sent
        for helper in helpers:
            helper.start()
        probe.run_for(15)
        rss_during = workers_rss(registry.process.pid)
        done.set()
        for helper in helpers:
            helper.join(timeout=60)

    assert probe.failures == 0 and probe.p99() < 1.0, (probe.p99(), max(probe.latencies), probe.failures)
    assert pulled == [True], "the authorised dvc pull failed"
    assert same_tree(dataset / "data", dvc.root / "data")
    assert reads and all(reads), reads
    assert unframed.answers.get("501", 0) >= 100 and unframed.answers.get("400", 0) >= 100, unframed.answers
    assert rss_during - rss_before < 100 * 1024 * 1024, (rss_before, rss_during)


def test_expect_continue_gets_one_interim_answer(registry: RegistryServer) -> None:
    with connect(registry) as sock:
        sock.sendall(
            b"PUT /ml/vision/-/data/slow-clients/continued HTTP/1.1\r\nHost: r\r\n"
            + AUTH
            + b"\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        answers = read_answers(sock, 1)
    assert answers == [b"HTTP/1.1 201 CREATED"], answers


def test_pipelined_and_kept_alive_requests_are_all_answered(registry: RegistryServer) -> None:
    health = b"GET /-/health HTTP/1.1\r\nHost: r\r\n\r\n"
    put = (
        b"PUT /ml/vision/-/data/slow-clients/pipelined HTTP/1.1\r\nHost: r\r\n"
        + AUTH
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    with connect(registry) as sock:
        sock.sendall(health + put + health)
        assert read_answers(sock, 3) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 201 CREATED", b"HTTP/1.1 200 OK"]
        time.sleep(0.5)  # back in the poller, idle
        sock.sendall(health[:10])
        time.sleep(0.3)
        sock.sendall(health[10:])
        assert read_answers(sock, 1) == [b"HTTP/1.1 200 OK"]


def test_oversized_headers_are_refused(registry: RegistryServer) -> None:
    with connect(registry) as sock:
        sock.sendall(b"GET /-/health HTTP/1.1\r\nHost: r\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        assert read_answers(sock, 1) == [b"HTTP/1.1 431 Request Header Fields Too Large"]


def test_something_that_is_not_http_is_refused_at_once(registry: RegistryServer) -> None:
    """A TLS hello on the http port (an https:// URL pointed here) is answered 400 at once, not after the
    20 s a slow request may take."""
    with connect(registry) as sock:
        sock.settimeout(5)
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(32))
        started = time.monotonic()
        answer = sock.recv(100)
    assert answer.startswith(b"HTTP/1.1 400") and time.monotonic() - started < 2, answer
