"""A repository's `.dvc/config` as the registry reads it: the remote that keeps its data in this project
(an http or webdav remote whose URL is the project's data URL, or an s3 remote whose endpointurl is the
project's S3 door), its kind, and where its objects are in the project's data. Pure: no I/O."""

from __future__ import annotations

import configparser
import posixpath
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

RemoteKind = Literal["s3", "http", "webdav"]
_DATA = re.compile(r"^/(?:-/projects/(?P<id>\d+)/data|(?P<path>.+?)/-/data)(?:/(?P<prefix>.*))?$")
_S3_DOOR = re.compile(r"^/(?:-/projects/(?P<id>\d+)|(?P<path>.+?)/-)/s3/?$")


@dataclass(frozen=True)
class Remote:
    """A DVC remote of the repository that keeps its data in this project."""

    name: str
    kind: RemoteKind
    url: str
    default: bool
    prefix: str = ""  # where its objects are in the project's data ("" = the data root)


def _ours(match: re.Match[str] | None, project_path: str, project_id: int) -> bool:
    if match is None:
        return False
    return match["id"] == str(project_id) or (match["path"] or "").lower() == project_path.lower()


def our_remote(config: bytes | None, project_path: str, project_id: int) -> Remote | None:
    """The `.dvc/config` remote that points at this project (the default remote first), or None."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string((config or b"").decode("utf-8", errors="replace"))
    except configparser.Error:
        return None
    default = parser.get("core", "remote", fallback=None)
    found: list[Remote] = []
    for section in parser.sections():  # DVC writes ['remote "name"'] (configobj), quotes included
        bare = section.strip("'")
        if not bare.startswith("remote ") or bare.count('"') != 2:
            continue
        name, url = bare.split('"')[1], parser.get(section, "url", fallback="")
        parts = urlsplit(url)
        if parts.scheme == "s3":
            endpoint = urlsplit(parser.get(section, "endpointurl", fallback="")).path
            if _ours(_S3_DOOR.match(endpoint), project_path, project_id):
                prefix = posixpath.join(parts.netloc, parts.path.strip("/")).strip("/")
                found.append(Remote(name, "s3", url, name == default, prefix))
        elif parts.scheme in ("http", "https", "webdav", "webdavs"):
            match = _DATA.match(parts.path)
            if _ours(match, project_path, project_id):
                assert match is not None
                kind: RemoteKind = "webdav" if parts.scheme.startswith("webdav") else "http"
                found.append(Remote(name, kind, url, name == default, (match["prefix"] or "").strip("/")))
    found.sort(key=lambda r: not r.default)
    return found[0] if found else None
