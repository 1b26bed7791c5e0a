"""The aws-chunked decoder (app.aws_chunked) and the body checks (app.s3_payload): botocore's own encoding
with its trailing checksums, signed chunks, broken framing, and memory bounded whatever a client sends."""

from __future__ import annotations

import base64
import hashlib
import io
import zlib
from collections.abc import Iterator

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, Sha256Checksum

from app.aws_chunked import MAX_LINE, ChunkedBody
from app.s3_errors import S3Error
from app.s3_payload import PayloadChecks, checked, digest_for

BODY = bytes(range(256)) * 1000


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def encoded(body: bytes, checksum: type = Crc32Checksum, name: str = "x-amz-checksum-crc32") -> bytes:
    """The body as boto3 sends it (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""
    return AwsChunkedWrapper(io.BytesIO(body), checksum, name, chunk_size=65536).read()


def s3_code(call: object) -> str:
    with pytest.raises(S3Error) as raised:
        call()  # type: ignore[operator]
    return raised.value.s3_code


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
def test_botocore_encoding_decodes_whatever_the_network_pieces(size: int) -> None:
    decoder = ChunkedBody(pieces(encoded(BODY), size), trailer=True)
    assert b"".join(decoder) == BODY
    crc = base64.b64encode(zlib.crc32(BODY).to_bytes(4, "big")).decode()
    assert decoder.trailers == {"x-amz-checksum-crc32": crc}


def test_trailing_checksums_are_verified() -> None:
    for checksum, name in ((Crc32Checksum, "crc32"), (Sha256Checksum, "sha256")):
        decoder = ChunkedBody([encoded(BODY, checksum, f"x-amz-checksum-{name}")], trailer=True)
        checks = PayloadChecks(trailer_algorithms=(name,), length=len(BODY))
        assert b"".join(checked(decoder, checks, lambda d=decoder: _algorithms(d))) == BODY
    tampered = encoded(BODY).replace(BODY[:100], b"x" * 100, 1)
    decoder = ChunkedBody([tampered], trailer=True)
    checks = PayloadChecks(trailer_algorithms=("crc32",))
    assert s3_code(lambda: b"".join(checked(decoder, checks, lambda: _algorithms(decoder)))) == "BadDigest"


def _algorithms(decoder: ChunkedBody) -> dict[str, str]:
    return {k.removeprefix("x-amz-checksum-"): v for k, v in decoder.trailers.items()}


def test_a_declared_trailer_that_never_comes_is_refused() -> None:
    raw = b"5\r\nhello\r\n0\r\n\r\n"
    decoder = ChunkedBody([raw], trailer=True)
    checks = PayloadChecks(trailer_algorithms=("crc32",))
    assert (
        s3_code(lambda: b"".join(checked(decoder, checks, lambda: _algorithms(decoder)))) == "InvalidRequest"
    )


def test_header_checksums_md5_sha256_and_length() -> None:
    good = PayloadChecks(
        sha256_hex=hashlib.sha256(BODY).hexdigest(),
        content_md5=base64.b64encode(hashlib.md5(BODY).digest()).decode(),
        checksums={"crc32c": _crc32c(BODY), "sha1": base64.b64encode(hashlib.sha1(BODY).digest()).decode()},
        length=len(BODY),
    )
    assert b"".join(checked(pieces(BODY, 999), good)) == BODY
    bad_sha = PayloadChecks(sha256_hex=hashlib.sha256(b"other").hexdigest())
    assert s3_code(lambda: b"".join(checked([BODY], bad_sha))) == "XAmzContentSHA256Mismatch"
    bad_md5 = PayloadChecks(content_md5=base64.b64encode(hashlib.md5(b"other").digest()).decode())
    assert s3_code(lambda: b"".join(checked([BODY], bad_md5))) == "BadDigest"
    assert (
        s3_code(lambda: b"".join(checked([BODY], PayloadChecks(content_md5="not base64!"))))
        == "InvalidDigest"
    )
    bad_crc = PayloadChecks(checksums={"crc32c": _crc32c(b"other")})
    assert s3_code(lambda: b"".join(checked([BODY], bad_crc))) == "BadDigest"
    short = PayloadChecks(length=len(BODY) + 1)
    assert s3_code(lambda: b"".join(checked([BODY], short))) == "IncompleteBody"


def _crc32c(data: bytes) -> str:
    digest = digest_for("crc32c")
    assert digest is not None  # google-crc32c comes with google-cloud-storage
    digest.update(data)
    return base64.b64encode(digest.digest()).decode()


@pytest.mark.parametrize(
    "raw",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",  # not hex
        b"5\r\nhel",  # ends inside a chunk
        b"5\r\nhello world\r\n0\r\n\r\n",  # longer than its size
        b"5\r\nhello\r\n",  # no last chunk
        b"5\r\nhello\r\n0\r\n\r\ntrailing junk",  # bytes after the end
        b"0\r\nnot a header\r\n\r\n",  # a trailer that is no header
        b"5;chunk-signature=xyz\r\nhello\r\n0\r\n\r\n",  # a malformed signature extension
    ],
)
def test_broken_framing_is_incomplete_body(raw: bytes) -> None:
    assert s3_code(lambda: b"".join(ChunkedBody(pieces(raw, 3)))) == "IncompleteBody"


def test_memory_stays_bounded_on_a_line_that_never_ends() -> None:
    """A chunk header with no CRLF is refused after MAX_LINE bytes, not buffered to the end."""
    read = 0

    def endless() -> Iterator[bytes]:
        nonlocal read
        while True:
            read += 1024
            yield b"a" * 1024

    assert s3_code(lambda: b"".join(ChunkedBody(endless()))) == "IncompleteBody"
    assert read <= MAX_LINE + 2048


def test_a_big_chunk_streams_in_pieces() -> None:
    """A 1 MiB chunk is handed on as its bytes arrive, never held whole."""
    size = 1 << 20
    raw = f"{size:x}\r\n".encode() + b"b" * size + b"\r\n0\r\n\r\n"
    longest = max(len(piece) for piece in ChunkedBody(pieces(raw, 65536)))
    assert longest <= 65536


class _Signer:
    """Chunk signatures as a keyed hash of (previous, digest): enough to test that each is checked."""

    def chunk_signature(self, previous: str, chunk_sha256: str) -> str:
        return hashlib.sha256(f"{previous}|{chunk_sha256}".encode()).hexdigest()

    def trailer_signature(self, previous: str, trailer: bytes) -> str:
        return hashlib.sha256(f"{previous}|trailer|".encode() + trailer).hexdigest()


def _signed_body(chunks: list[bytes], *, trailer: bytes | None = None, seed: str = "seed") -> bytes:
    signer, previous, out = _Signer(), seed, b""
    for chunk in [*chunks, b""]:
        previous = signer.chunk_signature(previous, hashlib.sha256(chunk).hexdigest())
        out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk
        out += b"\r\n" if chunk or trailer is None else b""
    if trailer is None:
        return out
    signature = signer.trailer_signature(previous, trailer.replace(b"\r\n", b"\n"))  # signed as name:value\n
    return out + trailer + f"x-amz-trailer-signature:{signature}\r\n\r\n".encode()


def test_signed_chunks_are_each_verified() -> None:
    raw = _signed_body([b"hello ", b"world"])
    assert b"".join(ChunkedBody(pieces(raw, 5), signer=_Signer(), seed="seed")) == b"hello world"
    assert (
        s3_code(lambda: b"".join(ChunkedBody([raw], signer=_Signer(), seed="other")))
        == "SignatureDoesNotMatch"
    )
    tampered = raw.replace(b"world", b"w0rld")
    assert s3_code(lambda: b"".join(ChunkedBody([tampered], signer=_Signer(), seed="seed"))) == (
        "SignatureDoesNotMatch"
    )
    unsigned = b"5\r\nhello\r\n0\r\n\r\n"
    assert s3_code(lambda: b"".join(ChunkedBody([unsigned], signer=_Signer(), seed="seed"))) == (
        "SignatureDoesNotMatch"
    )


def test_signed_trailers_are_verified() -> None:
    trailer = b"x-amz-checksum-crc32:AAAAAA==\r\n"
    raw = _signed_body([b"data"], trailer=trailer)
    decoder = ChunkedBody([raw], signer=_Signer(), seed="seed", trailer=True)
    assert b"".join(decoder) == b"data" and decoder.trailers == {"x-amz-checksum-crc32": "AAAAAA=="}
    forged = raw.replace(b"AAAAAA==", b"BBBBBB==")
    assert s3_code(lambda: b"".join(ChunkedBody([forged], signer=_Signer(), seed="seed", trailer=True))) == (
        "SignatureDoesNotMatch"
    )
