"""Where doctor looks when given no URL, and what an S3 door URL is: the default DVC remote of the repository
in the working directory (.dvc/config, then .dvc/config.local, DVC's configobj files), and a registry's
S3 endpoint (`<registry>/<project>/-/s3[/<bucket>[/<prefix>]]`, DVC's `s3://bucket/prefix` + endpointurl)
as the data URL of the same objects. No I/O but reading those two files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from app.client.errors import BadURL

_SECTION = re.compile(r"^\s*\[\s*'?(?P<name>[^\]']+?)'?\s*\]\s*$")
_KEY = re.compile(r"^\s*(?P<key>[^=\s#;]+)\s*=\s*(?P<value>.*?)\s*$")
_ENDPOINT = re.compile(r"^(?P<base>.*?/(?:-/projects/\d+|.+?/-))/s3(?:/(?P<rest>.*))?$")
NO_REMOTE = "No URL given and no default DVC remote here (.dvc/config's core.remote): give the data URL"


@dataclass(frozen=True)
class S3Target:
    """A bucket (and prefix) at a registry's S3 door, and the data-plane URL of the same objects."""

    endpoint: str  # https://<registry>/<project>/-/s3
    bucket: str  # "" when only the endpoint was given
    prefix: str
    data_url: str


def s3_target(url: str) -> S3Target | None:
    """The S3 door a URL names (`…/-/s3[/bucket[/prefix]]`), or None for any other URL."""
    parts = urlsplit(url.strip())
    found = _ENDPOINT.match(parts.path.rstrip("/"))
    if parts.scheme not in ("http", "https") or found is None:
        return None
    base = f"{parts.scheme}://{parts.netloc}{found['base']}"
    bucket, _, prefix = (found["rest"] or "").strip("/").partition("/")
    return S3Target(f"{base}/s3", bucket, prefix, f"{base}/data/{bucket}/{prefix}".rstrip("/"))


def _read(path: Path) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in path.read_text(errors="replace").splitlines() if path.is_file() else []:
        if found := _SECTION.match(line):
            current = sections.setdefault(re.sub(r"\s+", " ", found["name"].strip()), {})
        elif (found := _KEY.match(line)) and current is not None:
            current[found["key"]] = found["value"].strip("'\"")
    return sections


def default_remote(workdir: Path) -> tuple[str, str | None]:
    """(the URL doctor checks, the credential the remote's local config holds or None) for the default
    remote of the DVC repository at `workdir`; an s3 remote's URL is its endpoint + bucket + prefix."""
    config: dict[str, dict[str, str]] = {}
    for file in ("config", "config.local"):
        for section, values in _read(workdir / ".dvc" / file).items():
            config.setdefault(section, {}).update(values)
    name = config.get("core", {}).get("remote")
    remote = config.get(f'remote "{name}"') if name else None
    if not remote or "url" not in remote:
        raise BadURL(NO_REMOTE)
    url = remote["url"]
    if url.startswith("s3://"):
        if "endpointurl" not in remote:
            raise BadURL(f"The DVC remote {name} is {url} on AWS itself (no endpointurl): not a registry")
        return f"{remote['endpointurl'].rstrip('/')}/{url.removeprefix('s3://')}", remote.get("access_key_id")
    token = remote.get("token") or remote.get("password", "").removeprefix("Bearer ").strip() or None
    return url, token
