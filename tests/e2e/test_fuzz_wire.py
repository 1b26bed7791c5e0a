"""Raw bytes at gunicorn: a seeded fuzzer builds requests from hostile pieces at the byte level (invalid,
overlong and surrogate UTF-8 in the path, the query string and header values; NUL and controls; NFC and
NFD spellings; credentials in every form; Range, If-*, Depth, Destination, Overwrite, Content-Type,
X-Request-Id, cookies, hook headers; JSON bodies strict JSON refuses) and holds every answer to the rule of
tests/hostile.py; then the registry's log has no traceback and no credential, and the seeded object is
intact."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import socket
import time
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest
import requests

from scripts.harness import RegistryServer, Simulator
from tests.conftest import TOKENS
from tests.e2e.conftest import start_signin_registry
from tests.hostile import CAFE_NFC, CAFE_NFD, EDGE_STRINGS, HOOK_SECRET, check_answer, leaks

pytestmark = pytest.mark.e2e
TOKEN = TOKENS["maintainer"]
SEEDED = b"bytes the fuzzing must leave alone"  # in ml/pipeline (106), which no fuzzed request names
SEEDED_MD5 = hashlib.md5(SEEDED).hexdigest()
SEEDED_PATH = f"dvc/files/md5/{SEEDED_MD5[:2]}/{SEEDED_MD5[2:]}"
BUDGET_SECONDS, MAX_REQUESTS = 20.0, 2400  # about 7 s here; the time bounds a slow CI machine
# A longer hunt: REGISTRY_FUZZ_EXAMPLES=N requests from the seed REGISTRY_FUZZ_SEED (default: random)
HUNT = int(os.environ.get("REGISTRY_FUZZ_EXAMPLES", "0"))
SEEDS = [int(os.environ.get("REGISTRY_FUZZ_SEED", random.randrange(10**6)))] if HUNT else [0, 1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("fuzz-wire")
    running = start_signin_registry(root, gitlab, REGISTRY_WEBHOOK_SECRET=HOOK_SECRET)
    stored = requests.put(
        f"{running.url}/ml/pipeline/-/data/{SEEDED_PATH}",
        data=SEEDED,
        headers={"Authorization": f"Bearer {TOKENS['developer']}"},
        timeout=10,
    )
    assert stored.status_code == 201, stored.text
    yield running
    running.stop()


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


# Pieces, as bytes on the wire
EDGE = [utf8(s) for s in EDGE_STRINGS if len(s) < 2000]
RAW_BYTES = [
    b"\xff",
    b"\xc0\xaf",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x00",
    b"\x7f",
    b"\x85",
    b" ",
    b"\t",
]
PERCENT = ["%ff", "%c0%af", "%ed%a0%80", "%00", "%0a", "%2e%2e", "%2f", "%5c", "%25", "%", "%zz"]
PERCENT += [quote(CAFE_NFC), quote(CAFE_NFD), quote("\u202e"), quote("\u200b"), quote("\ufeff"), "x" * 3000]
ROUTES = [
    b"/ml/vision/-/data/{p}",
    b"/ml/vision/-/data/fuzz/{p}",
    b"/-/projects/101/data/{p}",
    b"/{p}/-/data/x",
    b"/ml/vision/-/data/{p}/",
    b"/api/v1/projects/{p}",
    b"/api/v1/projects/101/objects",
    b"/api/v1/projects/101/objects/exists",
    b"/api/v1/projects/101/objects/download",
    b"/api/v1/projects/101/uploads",
    b"/api/v1/projects/101/trash/restore",
    b"/api/v1/admin/projects/{p}/quota",
    b"/api/v1/whoami",
    b"/-/hooks/gitlab",
    b"/-/auth/sign_in",
    b"/-/auth/callback",
    b"/-/ui/projects/101/download",
    b"/-/blobs/{p}",
    b"/",
]
QUERY_NAMES = [b"prefix", b"search", b"cursor", b"limit", b"path", b"project", b"return_to", b"state", b"q"]
QUERY_NAMES += [b"ref", b"view", b"after", b"overwrite", b"dataset", b"offset"]
METHODS = [b"GET", b"HEAD", b"PUT", b"POST", b"DELETE", b"PROPFIND", b"MKCOL", b"OPTIONS", b"MOVE", b"COPY"]
HEADERS = [b"Range", b"If-Match", b"If-None-Match", b"If-Modified-Since", b"If-Range", b"Depth"]
HEADERS += [b"Destination", b"Overwrite", b"Content-Type", b"X-Request-Id", b"Cookie", b"Accept"]
HEADERS += [b"X-Forwarded-For", b"User-Agent", b"Idempotency-Key", b"X-Gitlab-Event-UUID", b"X-Gitlab-Token"]
HEADERS += [b"Webhook-Id", b"Webhook-Timestamp", b"Webhook-Signature", b"Origin"]
GOOD_VALUES = [
    b"bytes=0-3",
    b"bytes=-1",
    b"0",
    b"1",
    b"infinity",
    b"T",
    b"F",
    b"application/json",
    b"text/html",
]
GOOD_VALUES += [b'"' + SEEDED_MD5.encode() + b'"', b"Sun, 06 Nov 1994 08:49:37 GMT", b"http://registry/ml/x"]
GOOD_VALUES += [b"registry_session=abc; registry_sign_in=def", b"*", b"100-continue"]


def piece(rng: random.Random, raw: float = 0.5) -> bytes:
    """An edge case: with probability `raw` as raw bytes (which the request line's parser refuses but
    header values may carry), else percent-encoded, which every parser passes on to the app."""
    if rng.random() < raw:
        return rng.choice([*EDGE, *RAW_BYTES])
    if rng.random() < 0.5:
        return quote(rng.choice(EDGE), safe="/").encode()
    return rng.choice(PERCENT).encode()


def credential(rng: random.Random) -> tuple[list[bytes], list[str]]:
    """A credential header line in one of its forms, and the secret it carries (if it is one of ours)."""
    odd = piece(rng)
    secret = rng.choice([TOKEN.encode(), TOKEN.encode() + odd, odd, b"glpat-" + b"q" * 5000])
    basic = base64.b64encode(rng.choice([b"u:", b"gitlab-ci-token:", b":", b""]) + secret)
    line = rng.choice(
        [
            b"Authorization: Bearer " + secret,
            b"Authorization: Basic " + basic,
            b"Authorization: Basic " + odd,
            b"Authorization: " + odd,
            b"Private-Token: " + secret,
            b"Job-Token: " + secret,
            b"Deploy-Token: " + secret,
        ]
    )
    carried = secret.decode("latin-1")
    return [line], [carried] if TOKEN in carried or len(carried) > 4000 else []


def body(rng: random.Random) -> tuple[bytes, bytes]:
    """A body and its Content-Type: JSON with edge values, or JSON strict parsing refuses."""
    value = rng.choice(EDGE_STRINGS[:-1])
    shapes: list[object] = [
        {"paths": [value]},
        {"md5s": [value]},
        {"path": value, "size": rng.choice([1, 0, -1, 2**63, 10**30, "1"])},
        {"quota": rng.choice([value, 2**63, -1, None, 1.5, "1e400"])},
        {
            "event_name": "project_rename",
            "project_id": rng.choice([102, 0, 2**63]),
            "path_with_namespace": value,
        },
        {"event_name": value, "project_id": 102},
    ]
    text = utf8(json.dumps(rng.choice(shapes)))
    text = rng.choice(
        [
            text,
            text,
            text[:-1] + b', "paths": []}',  # maybe a duplicate key
            b'{"paths": [NaN]}',
            b"\xef\xbb\xbf" + text,
            text.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass"),
            b"[" * 50_000 + b"]" * 50_000,
            b"\xff\xfe\x00",
            b"",
        ]
    )
    return text, rng.choice(
        [b"application/json", b"application/json; charset=utf-16", b"text/plain", b"\xff"]
    )


def fuzzed(rng: random.Random) -> tuple[bytes, list[str]]:
    """One request and the secrets it carries."""
    target = rng.choice(ROUTES).replace(b"{p}", piece(rng, raw=0.1))
    if rng.random() < 0.6:
        pairs = [rng.choice(QUERY_NAMES) + b"=" + piece(rng, raw=0.1) for _ in range(rng.randint(1, 3))]
        target += b"?" + b"&".join(pairs)
    method = rng.choice([*METHODS, b"GET", b"GET", b"POST", b"POST", b"PUT"])
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: registry", b"Connection: close"]
    carried: list[str] = []
    if rng.random() < 0.8:
        credential_lines, carried = credential(rng)
        lines += credential_lines
    for _ in range(rng.randint(1, 4)):
        value = rng.choice([*GOOD_VALUES, piece(rng), piece(rng) + rng.choice(GOOD_VALUES)])
        lines.append(rng.choice(HEADERS) + b": " + value.replace(b"\r", b"").replace(b"\n", b""))
    if b"/-/hooks/" in target and rng.random() < 0.8:
        lines.append(b"X-Gitlab-Token: " + HOOK_SECRET.encode())
    content, content_type = body(rng) if rng.random() < 0.7 else (b"", b"")
    if content_type:
        lines.append(b"Content-Type: " + content_type)
    lines.append(b"Content-Length: %d" % len(content))
    return b"\r\n".join(lines) + b"\r\n\r\n" + content, carried


def exchange(server: RegistryServer, raw: bytes) -> bytes:
    """The whole answer (the server closes: Connection: close), or what came before a reset."""
    address = urlsplit(server.url)
    answer = b""
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            while len(answer) < 2**20 and (data := sock.recv(65536)):
                answer += data
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            pass
    return answer


def judge(answer: bytes, carried: list[str], what: str) -> None:
    """tests/hostile.py's rule for one raw answer (none at all is the server closing: allowed)."""
    while answer.startswith(b"HTTP/1.1 100 "):  # Expect: 100-continue, then the answer
        answer = answer.partition(b"\r\n\r\n")[2]
    if not answer:
        return
    head, _, content = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, status, reason = [*status_line.split(" ", 2), ""][:3]
    assert version.startswith("HTTP/1."), f"{what}: {answer[:200]!r}"
    headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
    if "chunked" in headers.get("Transfer-Encoding", ""):
        content = b""  # a streamed listing; its status line is what counts here
    check_answer(int(status), reason, content, headers, sent=carried, what=what)


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzzed_wire_requests(server: RegistryServer, seed: int) -> None:
    """A fixed budget of seeded requests (each reproducible from its seed and index)."""
    rng = random.Random(seed)
    deadline = time.monotonic() + (BUDGET_SECONDS / len(SEEDS) if not HUNT else 3600)
    sent: list[str] = []
    for index in range(HUNT or MAX_REQUESTS // len(SEEDS)):
        if time.monotonic() > deadline:
            break
        raw, carried = fuzzed(rng)
        sent += carried
        judge(exchange(server, raw), carried, f"seed {seed} request {index}: {raw[:300]!r}")
    assert requests.get(f"{server.url}/-/health", timeout=5).status_code == 200
    log = server.log_text()
    assert "Traceback" not in log, log[-3000:]
    leaks(log, sent, "the registry's log")
    seeded = requests.get(
        f"{server.url}/-/projects/106/data/{SEEDED_PATH}",
        headers={"Authorization": f"Bearer {TOKENS['developer']}"},
        timeout=10,
    )
    assert seeded.status_code == 200 and seeded.content == SEEDED


def test_basic_credentials_of_raw_bytes_are_401(server: RegistryServer) -> None:
    """UTF-8 bytes where base64 belongs made base64.b64decode raise its own ValueError: a 500."""
    for value in ("é".encode(), b"\xff\xfe", base64.b64encode("u:glpat-é\u202e".encode())):
        raw = b"GET /api/v1/projects/101 HTTP/1.1\r\nHost: r\r\nConnection: close\r\nAuthorization: Basic "
        answer = exchange(server, raw + value + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 401 Malformed"), answer[:200]
