"""The small-object path's own connections (app.storage.s3_connections, app.storage.s3_lean) against
servers that misbehave as real ones do: TLS checked against the configured bundle, a kept-alive
connection the server closed, a body cut short, and a proxy (then botocore's session carries it)."""

from __future__ import annotations

import datetime
import http.client
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.errors import StorageUnavailable
from app.storage.s3 import S3Backend
from app.storage.s3_connections import ConnectionFailed, Connections
from app.storage.s3_lean import _stream
from tests.conftest import make_bucket

BODY = b"0123456789" * 100


class _Objects(http.server.BaseHTTPRequestHandler):
    """GET answers BODY kept alive; GET /short announces more than it sends; GET /once closes after."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        if self.path == "/short":
            self.wfile.write(BODY[:100])
            self.close_connection = True
            return
        self.wfile.write(BODY)
        if self.path == "/once":  # closed without saying so: the client finds out on its next request
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def _serve(server: http.server.ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def plain() -> Iterator[str]:
    yield from _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Objects))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def tls(certificate: tuple[Path, Path]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Objects)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serve(server)


def _connections(scheme: str, host: str, certificates: str | bool | None = None) -> Connections:
    return Connections(scheme, host, connect_timeout=2, read_timeout=2, certificates=certificates, idle=4)


def _get(connections: Connections, path: str = "/") -> bytes:
    return b"".join(_stream(connections.exchange("GET", path, {"host": "x"}, None), 64))


def test_tls_is_checked_against_the_configured_bundle(tls: str, certificate: tuple[Path, Path]) -> None:
    trusted = _connections("https", tls, str(certificate[0]))
    assert [_get(trusted) for _ in range(3)] == [BODY] * 3
    assert trusted.opened == 1  # kept alive over TLS too
    with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
        _get(_connections("https", tls, None))  # the default bundle does not know this certificate
    assert _get(_connections("https", tls, False)) == BODY  # verify=False, as botocore's option


def test_a_kept_alive_connection_the_server_closed_is_replaced_at_once(plain: str) -> None:
    connections = _connections("http", plain)
    assert _get(connections, "/once") == BODY
    assert _get(connections, "/once") == BODY  # the pooled socket was closed: a new one, no error
    assert connections.opened == 2


def test_a_body_cut_short_is_storage_unavailable_and_its_connection_closed(plain: str) -> None:
    connections = _connections("http", plain)
    with pytest.raises(StorageUnavailable, match="stopped sending"):
        _get(connections, "/short")
    assert _get(connections) == BODY
    assert connections.opened == 2


def test_a_server_that_is_not_there_fails_the_exchange() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionFailed, match="ConnectionRefused"):
        _get(_connections("http", f"127.0.0.1:{port}"))


class _ForwardProxy(http.server.BaseHTTPRequestHandler):
    """A forward HTTP proxy (absolute-URI requests) that counts what it carried."""

    protocol_version = "HTTP/1.1"
    carried: list[str] = []

    def _forward(self) -> None:
        target = http.client.HTTPConnection(self.path.split("/")[2], timeout=10)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        path = "/" + self.path.split("/", 3)[3]
        target.request(self.command, path, body=body, headers=dict(self.headers))
        answer = target.getresponse()
        data = answer.read()
        type(self).carried.append(f"{self.command} {path}")
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        target.close()

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

    def log_message(self, *args: object) -> None:
        pass


def test_through_a_proxy_small_objects_go_over_botocores_session(
    seaweedfs: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForwardProxy)
    proxy = _serve(server)
    address = next(proxy)
    try:
        endpoint = seaweedfs.endpoint  # type: ignore[attr-defined]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)  # type: ignore[attr-defined]
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)  # type: ignore[attr-defined]
        bucket = make_bucket(endpoint)
        monkeypatch.setenv("HTTP_PROXY", f"http://{address}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        backend = S3Backend(
            bucket=bucket, prefix="p", endpoint_url=endpoint, region="us-east-1", addressing_style="path"
        )
        _ForwardProxy.carried.clear()
        backend.commit(backend.stage("through/proxy", iter([BODY])))
        assert b"".join(backend.read("through/proxy")) == BODY
        assert b"".join(backend.read("through/proxy", start=10, end=20)) == BODY[10:20]
        assert f"PUT /{bucket}/p/through/proxy" in _ForwardProxy.carried
        assert _ForwardProxy.carried.count(f"GET /{bucket}/p/through/proxy") == 2
        assert backend._lean._setup()[2] is None  # none of our own connections
    finally:
        next(proxy, None)
