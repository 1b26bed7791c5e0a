"""The S3 door under a seeded fuzzer: requests signed with botocore's own signer (so they get past SigV4 into
the dispatcher), then some mutated after signing, built from S3's own pieces (methods, sub-resources and
their values, conditional, range, checksum, copy and aws-chunked headers, XML and garbage bodies, truncated
aws-chunked bodies). Every answer: no 5xx but 501/503, an error is S3's XML (a HEAD's has no body, which the
next request on the same connection proves), and afterwards the log has no traceback and no token."""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import time
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from scripts.harness import RegistryServer, Simulator, start_registry
from tests.conftest import TOKENS

pytestmark = pytest.mark.e2e
TOKEN = TOKENS["maintainer"]
SEEDED = b"the fuzzer never names this bucket"
SEED = int(os.environ.get("REGISTRY_FUZZ_SEED", "0"))
REQUESTS = int(os.environ.get("REGISTRY_FUZZ_EXAMPLES", "500"))  # about 4 s here

METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]
OTHER_METHODS = ["PATCH", "PROPFIND", "COPY", "MKCOL", "BREW"]  # S3 answers them 405 MethodNotAllowed in XML
BASES = ["/ml/vision/-/s3", "/-/projects/101/s3", "/ml/no-such/-/s3"]
PATHS = ["", "/", "/fz", "/fz/", "/fz/k", "/fz/a/b.bin", "/fz/files/md5/ab/cdef", "/Fz_Bad", "/fz/a//b"]
PATHS += ["/fz/%2e%2e/x", "/fz/%00", "/fz/" + "k" * 1100, "/fz/caf%C3%A9", "/fz/-/x", "/fz/k?", "/x"]
SUBRESOURCES = ["uploads", "uploadId", "partNumber", "list-type", "max-keys", "prefix", "delimiter"]
SUBRESOURCES += ["continuation-token", "start-after", "marker", "encoding-type", "delete", "location", "acl"]
SUBRESOURCES += ["tagging", "versioning", "versionId", "max-parts", "part-number-marker", "X-Amz-Signature"]
VALUES = [
    "",
    "1",
    "0",
    "-1",
    "2",
    "10001",
    "abc",
    "1000000000000000000000",
    "%ff",
    "a%2Fb",
    "/",
    "url",
    "x" * 600,
]
HEADERS = {
    "Range": ["bytes=0-3", "bytes=-1", "bytes=9-2", "bytes=0-", "items=1-2", "bytes=1-2,4-5", ""],
    "If-Match": ['"abc"', "*", "", 'W/"x"'],
    "If-None-Match": ["*", '"abc"', ""],
    "If-Modified-Since": ["Sun, 06 Nov 1994 08:49:37 GMT", "yesterday", ""],
    "Content-MD5": ["1B2M2Y8AsgTpgAmY7PhCfg==", "!!", "", "AAAA"],
    "x-amz-copy-source": ["fz/k", "/fz/k", "other/../k", "%ff", "fz/k?versionId=1", "seeded/obj", ""],
    "x-amz-copy-source-range": ["bytes=0-1", "x"],
    "x-amz-checksum-crc32": ["AAAAAA==", "!", ""],
    "x-amz-checksum-sha256": ["AAAA", ""],
    "x-amz-sdk-checksum-algorithm": ["CRC32", "CRC64NVME", "MD7"],
    "x-amz-trailer": ["x-amz-checksum-crc32", "x-amz-checksum-crc64nvme", "x-nope", ""],
    "x-amz-decoded-content-length": ["0", "5", "-3", "99999999999", "x"],
    "Content-Encoding": ["aws-chunked", "gzip", "aws-chunked,gzip"],
    "Content-Type": ["application/xml", "text/plain", "multipart/form-data; boundary=x"],
    "Expect": ["100-continue"],
    "x-amz-metadata-directive": ["REPLACE", "COPY", "nope"],
    "x-amz-storage-class": ["GLACIER", "STANDARD"],
    "x-amz-acl": ["public-read"],
}
PAYLOAD_MODES = ["signed", "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"]
PAYLOAD_MODES += [
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "nonsense",
]
XML_BODIES = [
    b'<?xml version="1.0"?><Delete><Object><Key>fz/k</Key></Object><Quiet>true</Quiet></Delete>',
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
    b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&e;</Key></Object></Delete>',
    b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",
    b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>",
    b"<not xml",
    b"",
]


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("s3-fuzz"), gitlab.url)
    seeded = requests.put(
        f"{server.url}/ml/vision/-/data/seeded/obj", data=SEEDED, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert seeded.status_code == 201, seeded.text
    yield server
    server.stop()


def aws_chunked(rng: random.Random, body: bytes) -> bytes:
    """The body in aws-chunked framing (some chunk signatures, a trailer), then maybe cut or mangled."""
    out, at = b"", 0
    while at < len(body):
        size = rng.randint(1, 9000)
        extension = rng.choice([b"", b";chunk-signature=" + b"0" * 64, b";chunk-signature=zz"])
        out += (
            f"{min(size, len(body) - at):x}".encode() + extension + b"\r\n" + body[at : at + size] + b"\r\n"
        )
        at += size
    out += b"0\r\n" + rng.choice([b"", b"x-amz-checksum-crc32:AAAAAA==\r\n", b"x-amz-checksum-crc32\r\n"])
    out += rng.choice([b"\r\n", b"x-amz-trailer-signature:" + b"1" * 64 + b"\r\n\r\n", b""])
    cut = rng.random()
    if cut < 0.4:
        return out[: rng.randint(0, len(out))]  # truncated anywhere
    if cut < 0.5:
        return out.replace(b"\r\n", b"\n", 1)
    if cut < 0.6:
        return b"fffffffffffffffff\r\n" + out
    return out


def signed(door: RegistryServer, method: str, target: str, body: bytes = b"") -> requests.Response:
    request = AWSRequest(method=method, url=f"{door.url}{target}", data=body)
    request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    S3SigV4Auth(Credentials(TOKEN, TOKEN), "s3", "us-east-1").add_auth(request)
    return requests.request(method, request.url, headers=dict(request.headers), data=body, timeout=30)


def build(
    rng: random.Random, door: RegistryServer, values: list[str]
) -> tuple[str, str, dict[str, str], bytes]:
    method = rng.choice(METHODS)
    path = rng.choice(BASES) + rng.choice(PATHS)
    pairs = [(name, rng.choice(values)) for name in rng.sample(SUBRESOURCES, rng.randint(0, 4))]
    query = "&".join(
        name if not value and rng.random() < 0.5 else f"{name}={quote(value)}" for name, value in pairs
    )
    headers = {
        name: rng.choice(values) for name, values in rng.sample(sorted(HEADERS.items()), rng.randint(0, 5))
    }
    body = rng.choice([b"", os.urandom(rng.randint(1, 20000)), rng.choice(XML_BODIES)])
    mode = rng.choice(PAYLOAD_MODES)
    if mode.startswith("STREAMING") or rng.random() < 0.05:
        headers.setdefault("x-amz-decoded-content-length", str(len(body)))
        headers["Content-Encoding"] = "aws-chunked"
        body = aws_chunked(rng, body)
    headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest() if mode == "signed" else mode
    url = f"{door.url}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    S3SigV4Auth(Credentials(TOKEN, TOKEN), "s3", rng.choice(["us-east-1", "eu-west-1"])).add_auth(request)
    sent = dict(request.headers)
    mutation = rng.random()
    if mutation < 0.08:
        sent["Authorization"] = sent["Authorization"].replace("Signature=", "Signature=0")
    elif mutation < 0.14:
        body = body[: len(body) // 2]
    elif mutation < 0.2:
        sent["X-Amz-Date"] = rng.choice(["20000101T000000Z", "garbage", ""])
    elif mutation < 0.24:
        sent["Authorization"] = sent["Authorization"].replace("SignedHeaders=", "SignedHeaders=x-nope;")
    elif mutation < 0.27:
        method = rng.choice(METHODS)
    split = urlsplit(url)
    return method, split.path + (f"?{split.query}" if split.query else ""), sent, body


def check(method: str, status: int, body: bytes, what: str) -> None:
    assert status < 500 or status in (501, 503), f"{what}: {status} {body[:300]!r}"
    if status >= 400 and method != "HEAD":
        assert body.startswith(b"<?xml") and b"<Error><Code>" in body, f"{what}: {status} {body[:300]!r}"
    if method == "HEAD":
        assert body == b"", what


def test_fuzzed_signed_requests(door: RegistryServer) -> None:
    rng, address = random.Random(SEED), urlsplit(door.url)
    host, port = address.hostname or "127.0.0.1", address.port
    created = signed(door, "POST", "/ml/vision/-/s3/fz/k?uploads")  # a real upload id to mix in
    assert created.status_code == 200, created.text
    values = [*VALUES, created.text.split("<UploadId>")[1].split("</UploadId>")[0]]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    started, statuses = time.monotonic(), set()
    for number in range(REQUESTS):
        method, target, headers, body = build(rng, door, values)
        what = f"seed {SEED} request {number}: {method} {target[:120]} {sorted(headers)}"
        headers["Content-Length"] = str(len(body))
        connection.request(method, target, body=body, headers=headers, encode_chunked=False)
        answer = connection.getresponse()
        content = answer.read()
        statuses.add(answer.status)
        check(method, answer.status, content, what)
        if method == "HEAD" and not answer.will_close:  # a body after a HEAD would be read as the next answer
            connection.request("GET", "/-/health")
            after = connection.getresponse()
            assert after.status == 200 and after.read().startswith(b"{"), what
        if answer.will_close:
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.close()
    elapsed = time.monotonic() - started
    assert {200, 403, 400} <= statuses, statuses  # the fuzzer reached past the signature check, and refusals
    log = door.log_text()
    assert "Traceback" not in log and TOKEN not in log, log[-3000:]
    seeded = requests.get(
        f"{door.url}/ml/vision/-/data/seeded/obj", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert seeded.content == SEEDED
    print(f"{REQUESTS} requests in {elapsed:.1f} s, statuses {sorted(statuses)}")


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_other_methods_answer_in_s3_xml(door: RegistryServer, method: str) -> None:
    """S3 answers a method it does not know with 405 MethodNotAllowed in its XML; so must the door."""
    answer = signed(door, method, "/ml/vision/-/s3/fz/k")
    assert answer.status_code == 405 and "<Code>MethodNotAllowed</Code>" in answer.text, answer.text
