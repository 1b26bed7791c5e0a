"""GCS V4 signed URLs made by the registry, checked with Google's documented algorithm
(tests/storage/goog4.py): valid ones pass; tampered, expired, wrong-method and other-object URLs fail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.storage.conftest import gcs_backend
from tests.storage.goog4 import Rejected, verify


@pytest.fixture
def signed(gcs_emulator: str, service_account_file: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    backend: Any = gcs_backend(gcs_emulator, service_account_file, monkeypatch, chunk_size=256 * 1024)
    backend.commit(backend.stage("projects/1/model.bin", iter([b"weights"])))
    backend.commit(backend.stage("projects/1/other.bin", iter([b"other"])))
    return backend, backend.sign_download("projects/1/model.bin", ttl=600).url


@pytest.fixture
def public_key(service_account_file: Path) -> rsa.RSAPublicKey:
    pem = json.loads(service_account_file.read_text())["private_key"].encode()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.public_key()


def test_a_signed_url_verifies_and_downloads(signed: tuple[Any, str], public_key: rsa.RSAPublicKey) -> None:
    _, url = signed
    verify(url, "GET", public_key)
    assert "X-Goog-Expires=600" in url
    assert requests.get(url, timeout=10).content == b"weights"  # the emulator serves it (checking nothing)


def test_tampered_signature(signed: tuple[Any, str], public_key: rsa.RSAPublicKey) -> None:
    _, url = signed
    signature = url.split("X-Goog-Signature=")[1][:512]
    forged = url.replace(signature, signature[:-2] + ("00" if not signature.endswith("00") else "11"))
    with pytest.raises(Rejected, match="SignatureDoesNotMatch"):
        verify(forged, "GET", public_key)


def test_expired(signed: tuple[Any, str], public_key: rsa.RSAPublicKey) -> None:
    _, url = signed
    with pytest.raises(Rejected, match="ExpiredToken"):
        verify(url, "GET", public_key, now=datetime.now(UTC) + timedelta(seconds=601))


def test_wrong_method(signed: tuple[Any, str], public_key: rsa.RSAPublicKey) -> None:
    _, url = signed
    for method in ("PUT", "DELETE", "POST"):
        with pytest.raises(Rejected, match="SignatureDoesNotMatch"):
            verify(url, method, public_key)


def test_other_object(signed: tuple[Any, str], public_key: rsa.RSAPublicKey) -> None:
    _, url = signed
    with pytest.raises(Rejected, match="SignatureDoesNotMatch"):
        verify(url.replace("model.bin", "other.bin"), "GET", public_key)


def test_another_key(signed: tuple[Any, str]) -> None:
    _, url = signed
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(Rejected, match="SignatureDoesNotMatch"):
        verify(url, "GET", stranger)


def test_the_ttl_is_the_configured_one(signed: tuple[Any, str], public_key: rsa.RSAPublicKey) -> None:
    backend, _ = signed
    url = backend.sign_download("projects/1/model.bin", ttl=30).url
    verify(url, "GET", public_key, now=datetime.now(UTC) + timedelta(seconds=25))
    with pytest.raises(Rejected, match="ExpiredToken"):
        verify(url, "GET", public_key, now=datetime.now(UTC) + timedelta(seconds=31))


def test_the_disposition_is_signed(signed: tuple[Any, str], public_key: rsa.RSAPublicKey) -> None:
    backend, _ = signed
    url = backend.sign_download(
        "projects/1/model.bin", ttl=60, disposition='attachment; filename="m.bin"'
    ).url
    assert "response-content-disposition=attachment" in url
    verify(url, "GET", public_key)
    with pytest.raises(Rejected, match="SignatureDoesNotMatch"):
        verify(url.replace("m.bin", "evil.exe"), "GET", public_key)
