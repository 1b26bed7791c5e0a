"""DVC directory manifests (`<md5>.dir`): what they list, read back from their JSON."""

from __future__ import annotations

import json
import re

from app.errors import BadRequest

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
    if not isinstance(entries, list):
        raise InvalidManifest("Invalid .dir manifest: not a JSON list")
    md5s = set()
    for entry in entries:
        md5 = entry.get("md5") if isinstance(entry, dict) else None
        if not isinstance(md5, str) or not _MD5.match(md5):
            raise InvalidManifest("Invalid .dir manifest: an entry has no valid md5")
        md5s.add(md5)
    return md5s
