"""`data-registry import-generic-packages SOURCE_URL DEST_URL`: copy a DVC remote kept in GitLab's generic
packages registry (the hack this product replaces) into the registry — every package file under SOURCE_URL
to DEST_URL + the same relative path, streamed, in parallel, resumable (what is there already is skipped),
md5-verified (a file whose bytes differ is taken out of the registry again and named), with GitLab's 429s
and 5xx retried as its `Retry-After` asks. The token goes to no other origin (app/client_http.py)."""

from __future__ import annotations

import hashlib
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import requests

from app.client_http import client_session, left_origin, next_page, same_origin, show_origin
from app.doctor import DataURL, DoctorError, parse

_SOURCE = re.compile(
    r"^(?P<root>.*?)/api/v4/projects/(?P<project>[^/]+)/packages/generic(?:/(?P<prefix>.*))?$"
)
RETRIED = {429, 500, 502, 503, 504}
CHUNK = 1024 * 1024


class ImportError_(Exception):  # `ImportError` is Python's own
    """A problem that stops the import, said in one line."""


@dataclass(frozen=True)
class Source:
    api: str  # scheme://host[/prefix]/api/v4
    project: str  # as in the URL: a numeric id or the URL-encoded full path
    prefix: str  # package name (and more) under packages/generic


@dataclass(frozen=True)
class SourceFile:
    rel: str  # the path under SOURCE_URL, which is also the path under DEST_URL
    url: str  # where GitLab serves it
    size: int
    md5: str | None


def parse_source(url: str) -> Source:
    parts = urlsplit(url.strip())
    match = _SOURCE.match(parts.path.rstrip("/"))
    if parts.scheme not in ("http", "https") or match is None:
        raise ImportError_(
            f"Not a generic packages URL: {url} (expected https://<gitlab>/api/v4/projects/<id or"
            " URL-encoded path>/packages/generic/<name>, as in your .dvc/config)"
        )
    root = f"{parts.scheme}://{parts.netloc}{match['root']}"
    return Source(f"{root}/api/v4", match["project"], (match["prefix"] or "").strip("/"))


def gitlab_headers(token: str | None) -> dict[str, str]:
    """The header GitLab's package API takes for the token's kind (by its prefix)."""
    if not token:
        return {}
    if token.startswith("gldt-"):
        return {"Deploy-Token": token}
    if token.startswith("glcbt-"):
        return {"Job-Token": token}
    return {"Private-Token": token}


class Retrying:
    """requests with GitLab's 429s, 5xx and dropped connections retried: a 429 as long as GitLab asks
    (Retry-After, for up to `patience` seconds in all), the others a few times with growing pauses."""

    def __init__(
        self,
        session: requests.Session,
        *,
        attempts: int = 8,
        patience: float = 900,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session, self.attempts, self.patience, self.sleep = session, attempts, patience, sleep
        self.retries = 0

    def request(
        self, method: str, url: str, *, body: Callable[[], Any] | None = None, **kwargs: Any
    ) -> requests.Response:
        """One request, retried; `body` makes the request's data afresh for every attempt."""
        failures, waited = 0, 0.0
        while True:
            if body is not None:
                kwargs["data"] = body()
            try:
                response: requests.Response | None = self.session.request(method, url, timeout=60, **kwargs)
            except (requests.ConnectionError, requests.Timeout):
                response = None
            if response is not None and response.status_code not in RETRIED:
                return response
            limited = response is not None and response.status_code == 429
            failures += 0 if limited else 1
            wait = min(2.0**failures, 60.0)
            if response is not None:
                retry_after = response.headers.get("Retry-After", "")
                wait = float(retry_after) if retry_after.isdigit() else wait
            if failures >= self.attempts or waited + wait > self.patience:
                if response is None:
                    raise ImportError_(f"{urlsplit(url).netloc} does not answer")
                return response
            if response is not None:
                response.close()
            self.retries += 1
            waited += wait
            self.sleep(wait)

    def pages(self, url: str, headers: dict[str, str]) -> Iterator[Any]:
        """Every item of a paged GitLab list, following `Link: rel="next"` on the list's own origin only."""
        next_url: str | None = url
        while next_url:
            response = self.request("GET", next_url, headers=headers)
            _check_source(response)
            yield from response.json()
            next_url = next_page(response)
            # GitLab's pages never leave its origin: sending the token there would hand it over, and
            # asking without it would import a list someone else chose, so stop and say so.
            if next_url and not same_origin(url, next_url):
                raise ImportError_(
                    f"GitLab's list at {show_origin(url)} names its next page on another origin"
                    f" ({show_origin(next_url)}): refused, the token goes nowhere else"
                )


def _check_source(response: requests.Response) -> None:
    elsewhere = left_origin(response)
    if elsewhere and response.status_code in (401, 403, 404):
        raise ImportError_(
            f"GitLab redirected to {elsewhere}, which answered {response.status_code}: the token goes to"
            " SOURCE_URL's origin only, so it was not sent there (if that is your GitLab itself, use its"
            " URL in SOURCE_URL)"
        )
    if response.status_code in (401, 403):
        raise ImportError_(
            f"GitLab refused the token ({response.status_code}): it needs read access to the project's"
            " package registry (scope read_api, or a deploy token with read_package_registry)"
        )
    if response.status_code == 404:
        raise ImportError_("GitLab knows no such project, or the token cannot see it (404)")
    if response.status_code >= 400:
        raise ImportError_(f"GitLab answered {response.status_code}")


def list_source(http: Retrying, source: Source, headers: dict[str, str]) -> list[SourceFile]:
    """Every package file under the source URL (the newest upload of a file when it was uploaded twice)."""
    name = source.prefix.split("/", 1)[0]
    found: dict[str, tuple[int, SourceFile]] = {}
    packages = f"{source.api}/projects/{source.project}/packages?package_type=generic&per_page=100"
    if name:
        packages += f"&package_name={quote(name)}"
    for package in http.pages(packages, headers):
        if name and package["name"] != name:
            continue
        files = f"{source.api}/projects/{source.project}/packages/{package['id']}/package_files?per_page=100"
        for entry in http.pages(files, headers):
            full = f"{package['name']}/{package['version']}/{entry['file_name']}"
            if source.prefix and not full.startswith(source.prefix + "/"):
                continue
            rel = full[len(source.prefix) + 1 :] if source.prefix else full
            url = (
                f"{source.api}/projects/{source.project}/packages/generic/"
                f"{quote(package['name'])}/{quote(package['version'])}/{quote(entry['file_name'])}"
            )
            item = SourceFile(rel, url, int(entry.get("size") or 0), entry.get("file_md5"))
            if rel not in found or found[rel][0] < int(entry["id"]):
                found[rel] = (int(entry["id"]), item)
    return sorted((item for _, item in found.values()), key=lambda f: f.rel)


def present(http: Retrying, dest: DataURL, headers: dict[str, str], rels: list[str]) -> set[str]:
    """Which of the relative paths the registry has under the destination (batch existence, 1,000 a call)."""
    here: set[str] = set()
    base = f"{dest.prefix}/" if dest.prefix else ""
    url = f"{dest.root}/api/v1/projects/{quote(dest.project, safe='')}/objects/exists"
    for start in range(0, len(rels), 1000):
        batch = rels[start : start + 1000]
        response = http.request("POST", url, json={"paths": [base + rel for rel in batch]}, headers=headers)
        if response.status_code in (401, 403, 404):
            raise ImportError_(
                f"The registry refused the destination ({response.status_code}): {_message(response)}"
            )
        response.raise_for_status()
        answered = response.json()["paths"]
        here.update(rel for rel in batch if answered.get(base + rel))
    return here


def _message(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason or str(response.status_code)


class Progress:
    """Files and bytes done, rate and ETA: one line redrawn on a terminal, a plain line every 5 s in CI."""

    def __init__(self, total_files: int, total_bytes: int, out: TextIO) -> None:
        self.total_files, self.total_bytes, self.out = total_files, total_bytes, out
        self.files = self.bytes = 0
        self.started = self.said = time.monotonic()
        self.lock = threading.Lock()
        self.tty = out.isatty()

    def add(self, files: int, size: int) -> None:
        with self.lock:
            self.files += files
            self.bytes += size
            now = time.monotonic()
            if self.tty or now - self.said >= 5 or self.files == self.total_files:
                self.said = now
                self._say(now)

    def _say(self, now: float) -> None:
        rate = self.bytes / max(now - self.started, 1e-6)
        left = (self.total_bytes - self.bytes) / rate if rate else 0
        line = (
            f"{self.files:,}/{self.total_files:,} files,"
            f" {self.bytes / 2**20:,.1f}/{self.total_bytes / 2**20:,.1f} MiB,"
            f" {rate / 2**20:,.1f} MiB/s, ETA {left:,.0f} s"
        )
        print(f"\r{line}" if self.tty else line, end="" if self.tty else "\n", file=self.out, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=self.out)


def copy(
    http: Retrying,
    item: SourceFile,
    dest: DataURL,
    source_headers: dict[str, str],
    dest_headers: dict[str, str],
) -> None:
    """Stream one file from GitLab into the registry (bounded memory), then check the md5 three ways:
    GitLab's, the bytes that passed, and what the registry stored; on a difference the stored copy is
    deleted again and the file named."""
    target = f"{dest.url}/{quote(item.rel)}"
    with http.request("GET", item.url, headers=source_headers, stream=True) as got:
        try:
            _check_source(got)
        except ImportError_ as e:
            raise ImportError_(f"{item.rel}: {e}") from None
        digest = hashlib.md5(usedforsecurity=False)  # DVC's content address, not a security check

        def body() -> Iterator[bytes]:
            for chunk in got.iter_content(CHUNK):
                digest.update(chunk)
                yield chunk

        stored = http.session.put(target, data=body(), headers=dest_headers, timeout=600)
    if stored.status_code not in (200, 201):
        raise ImportError_(f"{item.rel}: the registry answered {stored.status_code} {_message(stored)}")
    registry_md5 = stored.json().get("md5")
    sent = digest.hexdigest()
    if registry_md5 != sent or (item.md5 and item.md5 != sent):
        undone = _remove(http, target, dest_headers) if stored.status_code == 201 else _KEPT
        raise ImportError_(
            f"{item.rel}: md5 differs (GitLab lists {item.md5}, GitLab sent {sent},"
            f" the registry stored {registry_md5}); {undone}"
        )


_KEPT = "an identical copy was in the registry before this import, so it is left there: check it"


def _remove(http: Retrying, target: str, headers: dict[str, str]) -> str:
    """Delete what was just stored at `target`; how that went, for the failure's line."""
    try:
        gone = http.request("DELETE", target, headers=headers)
    except (ImportError_, requests.RequestException) as e:
        return f"removing it from the registry failed ({e.__class__.__name__}): delete {target} yourself"
    if gone.status_code in (200, 204, 404):
        return "it was removed from the registry again"
    if gone.status_code in (401, 403):
        return (
            f"the registry refused to remove it ({gone.status_code}: {_message(gone)}): delete {target}"
            " yourself, or run again with a Maintainer's --dest-token (deleting needs the Maintainer role)"
        )
    failure = f"{gone.status_code} {_message(gone)}"
    return f"removing it from the registry failed ({failure}): delete {target} yourself"


def run(
    source_url: str,
    dest_url: str,
    *,
    token: str | None,
    dest_token: str | None,
    jobs: int,
    dry_run: bool,
    out: TextIO = sys.stdout,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """The whole import; 0 when every source file is in the registry, 1 otherwise, 2 for wrong URLs."""
    try:
        source = parse_source(source_url)
        dest = parse(dest_url)
    except (ImportError_, DoctorError) as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 2
    http = Retrying(session or client_session(), sleep=sleep)
    source_headers = gitlab_headers(token)
    dest_secret = dest_token or token
    dest_headers = {"Authorization": f"Bearer {dest_secret}"} if dest_secret else {}
    try:
        files = list_source(http, source, source_headers)
        there = present(http, dest, dest_headers, [f.rel for f in files])
        todo = [f for f in files if f.rel not in there]
        print(
            f"{len(files):,} files under {source_url}; {len(there):,} already in the registry,"
            f" {len(todo):,} to copy ({sum(f.size for f in todo) / 2**20:,.1f} MiB)",
            file=out,
        )
        if dry_run:
            for item in todo:
                print(f"would copy {item.rel} ({item.size:,} bytes)", file=out)
            return 0
        failed = _copy_all(http, todo, dest, source_headers, dest_headers, jobs, out)
        missing = set(f.rel for f in files) - present(http, dest, dest_headers, [f.rel for f in files])
    except ImportError_ as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 1
    for problem in failed[:20]:
        print(f"failed: {problem}", file=out)
    if len(failed) > 20:
        print(f"failed: … and {len(failed) - 20:,} more", file=out)
    print(
        f"copied {len(todo) - len(failed):,} files, skipped {len(there):,} already there,"
        f" {len(failed):,} failed, {len(missing):,} missing;"
        f" GitLab asked to slow down or failed {http.retries:,} times (retried)",
        file=out,
    )
    if failed or missing:
        print("Not everything is in the registry: see the failures above.", file=out)
        return 1
    print(
        "Everything is in the registry. Switch the DVC remote over (the token stays out of .dvc/config):",
        file=out,
    )
    print(f"  dvc remote modify <remote> url {dest.url}", file=out)
    print("  dvc remote modify <remote> auth custom", file=out)
    print("  dvc remote modify <remote> custom_auth_header Authorization", file=out)
    print('  dvc remote modify --local <remote> password "Bearer $GITLAB_TOKEN"', file=out)
    print(
        "  dvc remote modify <remote> method POST   # or keep PUT: the registry takes both",
        file=out,
    )
    return 0


def _copy_all(
    http: Retrying,
    todo: list[SourceFile],
    dest: DataURL,
    source_headers: dict[str, str],
    dest_headers: dict[str, str],
    jobs: int,
    out: TextIO,
) -> list[str]:
    """Files first, `.dir` manifests after them (the registry takes a manifest only once its files are
    there); the problems, one line each."""
    progress = Progress(len(todo), sum(f.size for f in todo), out)
    failed: list[str] = []
    for batch in (
        [f for f in todo if not f.rel.endswith(".dir")],
        [f for f in todo if f.rel.endswith(".dir")],
    ):
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            running = {
                pool.submit(copy, http, item, dest, source_headers, dest_headers): item for item in batch
            }
            for future in as_completed(running):
                item = running[future]
                try:
                    future.result()
                except (ImportError_, requests.RequestException) as e:
                    failed.append(
                        str(e) if isinstance(e, ImportError_) else f"{item.rel}: {e.__class__.__name__}"
                    )
                progress.add(1, item.size)
    progress.done()
    return failed
