"""DVC directory manifests (`<md5>.dir`): what they list, a copy kept of one while it streams in, and the
one scan for the manifests of a project that list given files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from app.db.index import ObjectIndex
from app.errors import BadRequest, ObjectNotFound
from app.storage.base import StorageBackend

# Manifests larger than this (about 150,000 files) are neither buffered nor cross-checked.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_MD5 = re.compile(r"^[0-9a-f]{32}$")


class InvalidManifest(BadRequest):
    code = "invalid_manifest"


def listed_md5s(manifest: bytes) -> set[str]:
    """The md5 of every file a `.dir` manifest lists: `[{"md5": ..., "relpath": ...}, ...]`."""
    try:
        entries = json.loads(manifest)
    except ValueError:
        raise InvalidManifest("Invalid .dir manifest: not JSON") from None
    except RecursionError:
        raise InvalidManifest("Invalid .dir manifest: nested too deep") from None
    if not isinstance(entries, list):
        raise InvalidManifest("Invalid .dir manifest: not a JSON list")
    md5s = set()
    for entry in entries:
        md5 = entry.get("md5") if isinstance(entry, dict) else None
        if not isinstance(md5, str) or not _MD5.match(md5):
            raise InvalidManifest("Invalid .dir manifest: an entry has no valid md5")
        md5s.add(md5)
    return md5s


def manifest_listing(
    index: ObjectIndex,
    storage: StorageBackend,
    project_id: int,
    *,
    prefix: str,
    md5s: set[str],
    besides: str | None = None,
) -> str | None:
    """The path of a `.dir` manifest under `prefix` that lists one of `md5s`, None when none does.
    Manifests under `besides` (going away too), oversized or unreadable ones are passed over."""
    for manifest in index.find(project_id, prefix=prefix, suffix=".dir"):
        if manifest.size > MAX_MANIFEST_BYTES or (besides is not None and manifest.path.startswith(besides)):
            continue
        key = manifest.key
        try:
            if md5s & listed_md5s(b"".join(storage.read(key))):
                return manifest.path
        except (InvalidManifest, ObjectNotFound):
            continue
    return None


class ManifestCopy:
    """Passes a body through while keeping a copy of it, up to MAX_MANIFEST_BYTES."""

    def __init__(self, body: Iterable[bytes]) -> None:
        self._body = body
        self.buffer = bytearray()
        self.complete = True

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            if self.complete and len(self.buffer) + len(chunk) <= MAX_MANIFEST_BYTES:
                self.buffer += chunk
            else:
                self.complete, self.buffer = False, bytearray()
            yield chunk

    def kept(self) -> bytes | None:
        """The whole body, None when it was larger than MAX_MANIFEST_BYTES."""
        return bytes(self.buffer) if self.complete else None
