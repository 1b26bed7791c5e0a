"""What is stored: indexed objects, listing pages, stored blobs, signed URLs and download names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class ObjectInfo:
    """An indexed object of a project."""

    project_id: int
    path: str
    size: int
    md5: str
    created_at: datetime
    trashed_at: datetime | None = None  # in the project's trash since then
    storage_key: str | None = None  # where its bytes are, when not at the path's own key (a new version)

    @property
    def etag(self) -> str:
        return f'"{self.md5}"'

    @property
    def key(self) -> str:
        """The storage key of this version's bytes."""
        return self.storage_key or f"projects/{self.project_id}/{self.path}"


@dataclass(frozen=True)
class Listing:
    """Which page of a project's objects: under a prefix, containing a substring, ordered by path, size
    or created_at (ties by path), starting after the key (value, path) of the previous page's last."""

    prefix: str = ""
    search: str = ""
    limit: int = 100
    order_by: str = "path"
    descending: bool = False
    after: tuple[Any, str] | None = None
    trashed: bool = False  # list the project's trash instead of its objects


@dataclass(frozen=True)
class BlobInfo:
    """What a storage backend knows about a stored blob."""

    key: str
    size: int
    md5: str | None
    modified: datetime | None = None  # when its bytes were last written


@dataclass(frozen=True)
class SignedURL:
    """A short-lived URL that lets its holder GET one object, straight from storage."""

    url: str
    expires_at: datetime


def attachment(path: str) -> str:
    """A Content-Disposition that saves the object under its own name (RFC 6266, with RFC 5987 for
    names beyond ASCII)."""
    name = path.rsplit("/", 1)[-1]
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
