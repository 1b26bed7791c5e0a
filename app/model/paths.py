"""Object paths inside a project: the path rules, DVC content addresses, and the storage keys a path
maps to."""

from __future__ import annotations

import mimetypes
import re
import secrets
from dataclasses import dataclass

from app.errors import InvalidPath

# DVC content-addressed layouts: `<remote>/files/md5/xx/<30 hex>[.dir]`, legacy `<remote>/xx/<30 hex>[.dir]`
_MD5_PATH = re.compile(r"^(?P<prefix>(?:.*/)?)(?P<head>[0-9a-f]{2})/(?P<tail>[0-9a-f]{30})(?P<dir>\.dir)?$")
_MAX_PATH_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ObjectPath:
    """A validated object path inside a project (DESIGN.md section 2)."""

    value: str

    def __post_init__(self) -> None:
        check_object_path(self.value)

    def __str__(self) -> str:
        return self.value

    @property
    def expected_md5(self) -> str | None:
        """The md5 a DVC content-addressed path promises (`files/md5/xx/<30 hex>[.dir]`), else None."""
        address = self.content_address
        return address.md5 if address else None

    @property
    def content_address(self) -> ContentAddress | None:
        """Where this path sits in a DVC content-addressed layout, None when it is not such a path."""
        match = _MD5_PATH.match(self.value)
        if match is None:
            return None
        return ContentAddress(
            prefix=match["prefix"], md5=match["head"] + match["tail"], is_dir=bool(match["dir"])
        )


@dataclass(frozen=True)
class ContentAddress:
    """A DVC object path split into its directory of objects, its md5, and whether it is a `.dir`."""

    prefix: str
    md5: str
    is_dir: bool

    def sibling(self, md5: str) -> str:
        """The path of the (file) object with that md5 in the same remote and layout."""
        return f"{self.prefix}{md5[:2]}/{md5[2:]}"


def check_object_path(path: str) -> None:
    """Raise InvalidPath naming the rule the path breaks."""
    if not path:
        raise InvalidPath("Invalid path: must not be empty")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON) is no character
        raise InvalidPath("Invalid path: not valid UTF-8") from None
    if len(encoded) > _MAX_PATH_BYTES:
        raise InvalidPath(f"Invalid path: longer than {_MAX_PATH_BYTES} bytes")
    if path.startswith("/"):
        raise InvalidPath("Invalid path: must not start with '/'")
    if "\\" in path:
        raise InvalidPath("Invalid path: backslash is not allowed")
    if _CONTROL.search(path):
        raise InvalidPath("Invalid path: control characters are not allowed")
    for segment in path.split("/"):
        if segment == "":
            raise InvalidPath("Invalid path: empty segment ('//' or trailing '/')")
        if segment in (".", ".."):
            raise InvalidPath(f"Invalid path: '{segment}' segment is not allowed")


def object_key(project_id: int, path: ObjectPath) -> str:
    """Storage key of a project's object: keyed by the stable numeric id, never the project path. A DVC
    content address always lives here (its bytes can only be the ones its name says); see version_key."""
    return f"projects/{project_id}/{path.value}"


VERSIONS_PREFIX = "versions/"  # where versions of paths that are not content addresses live


def version_key(project_id: int, path: ObjectPath) -> str:
    """A fresh storage key for one version of a path that is not a content address: a write never
    changes bytes that the index or a signed URL may still point to (the path stays readable in it)."""
    return f"{VERSIONS_PREFIX}{project_id}/{secrets.token_hex(8)}/{path.value}"


def storage_key_for(project_id: int, path: ObjectPath) -> str:
    """Where a new write of path goes: a content address at its own key, anything else at a new one."""
    return object_key(project_id, path) if path.content_address else version_key(project_id, path)


def content_type(path: str) -> str:
    """The media type a file's name says (Python's mimetypes table), application/octet-stream otherwise."""
    guessed, _ = mimetypes.guess_type(path.rsplit("/", 1)[-1], strict=False)
    return guessed or "application/octet-stream"
