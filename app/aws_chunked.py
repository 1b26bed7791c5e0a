"""The `aws-chunked` content coding of S3 uploads, decoded as it streams with bounded memory: chunk framing,
chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD…) and the trailing headers (x-amz-checksum-*)
current SDKs send after the last chunk."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator
from typing import Protocol

from app.s3_errors import S3Error, signature_mismatch

MAX_LINE = 4096  # a chunk header (size + signature) or one trailing header
MAX_TRAILER = 16 * 1024  # all trailing headers together
_SIZE = re.compile(rb"([0-9a-fA-F]{1,16})(?:;chunk-signature=([0-9a-f]{64}))?")
_TRAILER = re.compile(rb"([A-Za-z0-9-]{1,128}):(.{0,1024})")


class ChunkSigner(Protocol):
    """Computes the signatures a signed aws-chunked body must carry (app.sigv4.SignedRequest)."""

    def chunk_signature(self, previous: str, chunk_sha256: str) -> str: ...

    def trailer_signature(self, previous: str, trailer: bytes) -> str: ...


def _incomplete(why: str) -> S3Error:
    return S3Error("IncompleteBody", f"The aws-chunked request body is incomplete or malformed: {why}")


class ChunkedBody:
    """Iterate it for the decoded payload; once iterated to the end, `trailers` holds the trailing headers
    (lower-case names). A signed body (signer and seed given) has each chunk's signature checked as it
    ends, the trailer's too; a failure raises S3Error before the iteration ends."""

    def __init__(
        self,
        raw: Iterable[bytes],
        *,
        signer: ChunkSigner | None = None,
        seed: str = "",
        trailer: bool = False,
    ) -> None:
        self._raw = iter(raw)
        self._buffer = bytearray()
        self._signer = signer
        self._previous = seed
        self._expect_trailer = trailer
        self.trailers: dict[str, str] = {}
        self.length = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            size, signature = self._chunk_header()
            digest = hashlib.sha256() if self._signer is not None else None
            remaining = size
            while remaining:
                piece = self._take(remaining)
                remaining -= len(piece)
                self.length += len(piece)
                if digest is not None:
                    digest.update(piece)
                yield piece
            self._check_signature(signature, digest)
            if size == 0:
                self._read_trailers()
                return
            if self._line() != b"":
                raise _incomplete("a chunk is longer than its size says")

    def _check_signature(self, given: bytes | None, digest: hashlib._Hash | None) -> None:
        if self._signer is None or digest is None:
            return
        if given is None:
            raise signature_mismatch()
        expected = self._signer.chunk_signature(self._previous, digest.hexdigest())
        if not hmac.compare_digest(expected.encode(), given):
            raise signature_mismatch()
        self._previous = expected

    def _chunk_header(self) -> tuple[int, bytes | None]:
        line = self._line()
        found = _SIZE.fullmatch(line)
        if found is None:
            raise _incomplete("a chunk header is not <hex size>[;chunk-signature=<signature>]")
        return int(found.group(1), 16), found.group(2)

    def _read_trailers(self) -> None:
        """The trailing headers up to the empty line; none but the empty line when none were declared."""
        canonical, total, signature = bytearray(), 0, None
        while (line := self._line()) != b"":
            total += len(line)
            if total > MAX_TRAILER:
                raise _incomplete("the trailing headers are too long")
            found = _TRAILER.fullmatch(line)
            if found is None:
                raise _incomplete("a trailing header is not <name>:<value>")
            name, value = found.group(1).decode().lower(), found.group(2).decode("latin-1").strip()
            if name == "x-amz-trailer-signature":
                signature = value
                continue
            self.trailers[name] = value
            canonical += f"{name}:{value}\n".encode("latin-1")
        if self._signer is not None and self._expect_trailer:
            if signature is None:
                raise signature_mismatch()
            expected = self._signer.trailer_signature(self._previous, bytes(canonical))
            if not hmac.compare_digest(expected, signature):
                raise signature_mismatch()
        if next(self._rest(), None) is not None:
            raise _incomplete("bytes follow the end of the aws-chunked body")

    def _rest(self) -> Iterator[bytes]:
        if self._buffer:
            yield bytes(self._buffer)
        for piece in self._raw:
            if piece:
                yield piece

    def _fill(self) -> bool:
        for piece in self._raw:
            if piece:
                self._buffer += piece
                return True
        return False

    def _take(self, limit: int) -> bytes:
        """Up to `limit` bytes of chunk data (what is buffered, or the next piece)."""
        if not self._buffer and not self._fill():
            raise _incomplete("the body ended inside a chunk")
        piece = bytes(self._buffer[:limit])
        del self._buffer[:limit]
        return piece

    def _line(self) -> bytes:
        """The next CRLF-terminated line, without its CRLF."""
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > MAX_LINE:
                raise _incomplete("a chunk header or trailing header is too long")
            if not self._fill():
                raise _incomplete("the body ended before its last chunk")
        if end > MAX_LINE:
            raise _incomplete("a chunk header or trailing header is too long")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line
