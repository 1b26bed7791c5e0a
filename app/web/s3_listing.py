"""Pages of an S3 listing over the registry's object listing: keys under a prefix in code-point order,
rolled up into common prefixes at a delimiter (a skip scan: one query per common prefix, whatever lies
below it), with an opaque continuation token."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from app.model.identity import Credential
from app.model.objects import Listing, ObjectInfo
from app.model.projects import ProjectRef
from app.s3_errors import S3Error
from app.web.context import services

_LAST_CHAR = "\U0010ffff"  # sorts after every character a path holds: past a whole common prefix
_QUERY_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    """Keys (with their object) and common prefixes (object None), in order; more follow when truncated."""

    entries: list[tuple[str, ObjectInfo | None]]
    truncated: bool

    @property
    def objects(self) -> list[ObjectInfo]:
        return [info for _, info in self.entries if info is not None]

    @property
    def prefixes(self) -> list[str]:
        return [name for name, info in self.entries if info is None]

    @property
    def last(self) -> str:
        """The last key or common prefix listed (ListObjects' NextMarker)."""
        return self.entries[-1][0] if self.entries else ""

    def token(self) -> str:
        """ListObjectsV2's NextContinuationToken: where the next page starts (after `last`)."""
        return base64.urlsafe_b64encode(self.last.encode()).decode()

    @staticmethod
    def resume(token: str) -> str:
        """The key a continuation token says to list after; 400 InvalidArgument for a token not ours."""
        try:
            return base64.urlsafe_b64decode(token.encode("ascii")).decode()
        except (binascii.Error, UnicodeError, ValueError):
            raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix a key rolls up into (prefix … delimiter), None when it is listed itself."""
    if not delimiter:
        return None
    found = key.find(delimiter, len(prefix))
    return None if found < 0 else key[: found + len(delimiter)]


def list_page(
    credential: Credential | None,
    ref: ProjectRef,
    bucket: str,
    *,
    prefix: str,
    delimiter: str,
    after: str | None,
    max_keys: int,
) -> Page:
    """Up to max_keys keys and common prefixes of the bucket under prefix, after the key (or common
    prefix) `after`."""
    if max_keys <= 0:
        return Page([], False)
    registry, base = services().registry, f"{bucket}/"
    entries: list[tuple[str, ObjectInfo | None]] = []
    cursor, last_prefix = (base + after if after is not None else None), None
    if after is not None and after.startswith(prefix) and _common_prefix(after, prefix, delimiter) == after:
        cursor, last_prefix = base + after + _LAST_CHAR, after  # resume past a whole common prefix
    while len(entries) <= max_keys:
        limit = min(max_keys + 1 - len(entries), _QUERY_LIMIT)
        listing = Listing(prefix=base + prefix, limit=limit, after=None if cursor is None else (None, cursor))
        found = registry.list_objects(credential, ref, listing)
        jumped = False
        for info in found:
            key = info.path[len(base) :]
            cursor = info.path
            common = _common_prefix(key, prefix, delimiter)
            if common is not None:
                if common == last_prefix:
                    continue  # a key sorting past the jump, still under the prefix just listed
                entries.append((common, None))
                last_prefix = common
                cursor, jumped = base + common + _LAST_CHAR, True
                break  # one query per common prefix, skipping everything below it
            entries.append((key, info))
        if not jumped and len(found) < limit:
            break
    return Page(entries[:max_keys], len(entries) > max_keys)
