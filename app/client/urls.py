"""The URLs people give the client commands: a registry data URL (the DVC remote) and a GitLab generic
packages URL (the remote being replaced), parsed with no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.client.errors import BadURL

_DATA = re.compile(
    r"^(?P<root>.*?)/(?:-/projects/(?P<id>\d+)/data|(?P<path>.+?)/-/data)(?:/(?P<prefix>.*))?$"
)
_SCHEMES = {
    "http": "http",
    "https": "https",
    "webdav": "http",
    "webdavs": "https",
    "dav": "http",
    "davs": "https",
}
_SOURCE = re.compile(
    r"^(?P<root>.*?)/api/v4/projects/(?P<project>[^/]+)/packages/generic(?:/(?P<prefix>.*))?$"
)
NO_DATA_URL = "The URL has no /-/data/ part: use https://<registry>/<group>/<project>/-/data/<prefix>"


@dataclass(frozen=True)
class DataURL:
    root: str  # scheme://host[/path prefix] of the registry
    project: str  # numeric id or full path
    url: str  # the data URL itself, as http(s)
    prefix: str  # the path under /-/data/


@dataclass(frozen=True)
class Source:
    api: str  # scheme://host[/prefix]/api/v4
    project: str  # as in the URL: a numeric id or the URL-encoded full path
    prefix: str  # package name (and more) under packages/generic


def parse_data_url(url: str) -> DataURL:
    """A registry data URL (http, https or the webdav schemes) split into registry, project and prefix."""
    parts = urlsplit(url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise BadURL(f"Not a registry URL: {url} (http, https, webdav or webdavs)")
    match = _DATA.match(parts.path)
    if match is None:
        raise BadURL(NO_DATA_URL)
    root = f"{scheme}://{parts.netloc}{match['root']}"
    return DataURL(
        root,
        match["id"] or match["path"].strip("/"),
        f"{scheme}://{parts.netloc}{parts.path}".rstrip("/"),
        (match["prefix"] or "").strip("/"),
    )


def parse_source(url: str) -> Source:
    """A generic packages URL as it stands in `.dvc/config` split into GitLab's API, project and prefix."""
    parts = urlsplit(url.strip())
    match = _SOURCE.match(parts.path.rstrip("/"))
    if parts.scheme not in ("http", "https") or match is None:
        raise BadURL(
            f"Not a generic packages URL: {url} (expected https://<gitlab>/api/v4/projects/<id or"
            " URL-encoded path>/packages/generic/<name>, as in your .dvc/config)"
        )
    root = f"{parts.scheme}://{parts.netloc}{match['root']}"
    return Source(f"{root}/api/v4", match["project"], (match["prefix"] or "").strip("/"))
