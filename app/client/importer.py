"""`data-registry import-generic-packages SOURCE_URL DEST_URL`: copy a DVC remote kept in GitLab's generic
packages registry (the hack this product replaces) into the registry — every package file under SOURCE_URL
to DEST_URL + the same relative path, streamed, in parallel, resumable (what is there already is skipped),
md5-verified (a file whose bytes differ is taken out of the registry again and named), with GitLab's 429s
and 5xx retried as its `Retry-After` asks (app/client/retry.py). The token goes to no other origin
(app/client/session.py)."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import as_completed
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote

import requests

from app.client.credentials import gitlab_headers
from app.client.errors import BadURL, ClientError
from app.client.pool import worker_pool
from app.client.progress import Line, TransferProgress, counted
from app.client.retry import patient_retry
from app.client.session import ask, client_session, left_origin, next_page, same_origin, show_origin
from app.client.urls import DataURL, Source, parse_data_url, parse_source

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class SourceFile:
    rel: str  # the path under SOURCE_URL, which is also the path under DEST_URL
    url: str  # where GitLab serves it
    size: int
    md5: str | None


def pages(http: requests.Session, url: str, headers: dict[str, str]) -> Iterator[Any]:
    """Every item of a paged GitLab list, following `Link: rel="next"` on the list's own origin only."""
    next_url: str | None = url
    while next_url:
        response = ask(http, "GET", next_url, headers=headers)
        _check_source(response)
        yield from response.json()
        next_url = next_page(response)
        # GitLab's pages never leave its origin: sending the token there would hand it over, and
        # asking without it would import a list someone else chose, so stop and say so.
        if next_url and not same_origin(url, next_url):
            raise ClientError(
                f"GitLab's list at {show_origin(url)} names its next page on another origin"
                f" ({show_origin(next_url)}): refused, the token goes nowhere else"
            )


def _check_source(response: requests.Response) -> None:
    elsewhere = left_origin(response)
    if elsewhere and response.status_code in (401, 403, 404):
        raise ClientError(
            f"GitLab redirected to {elsewhere}, which answered {response.status_code}: the token goes to"
            " SOURCE_URL's origin only, so it was not sent there (if that is your GitLab itself, use its"
            " URL in SOURCE_URL)"
        )
    if response.status_code in (401, 403):
        raise ClientError(
            f"GitLab refused the token ({response.status_code}): it needs read access to the project's"
            " package registry (scope read_api, or a deploy token with read_package_registry)"
        )
    if response.status_code == 404:
        raise ClientError("GitLab knows no such project, or the token cannot see it (404)")
    if response.status_code >= 400:
        raise ClientError(f"GitLab answered {response.status_code}")


def list_source(http: requests.Session, source: Source, headers: dict[str, str]) -> list[SourceFile]:
    """Every package file under the source URL (the newest upload of a file when it was uploaded twice)."""
    name = source.prefix.split("/", 1)[0]
    found: dict[str, tuple[int, SourceFile]] = {}
    packages = f"{source.api}/projects/{source.project}/packages?package_type=generic&per_page=100"
    if name:
        packages += f"&package_name={quote(name)}"
    for package in pages(http, packages, headers):
        if name and package["name"] != name:
            continue
        files = f"{source.api}/projects/{source.project}/packages/{package['id']}/package_files?per_page=100"
        for entry in pages(http, files, headers):
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


def present(http: requests.Session, dest: DataURL, headers: dict[str, str], rels: list[str]) -> set[str]:
    """Which of the relative paths the registry has under the destination (batch existence, 1,000 a call)."""
    here: set[str] = set()
    base = f"{dest.prefix}/" if dest.prefix else ""
    url = f"{dest.root}/api/v1/projects/{quote(dest.project, safe='')}/objects/exists"
    for start in range(0, len(rels), 1000):
        batch = rels[start : start + 1000]
        response = ask(http, "POST", url, json={"paths": [base + rel for rel in batch]}, headers=headers)
        if response.status_code in (401, 403, 404):
            raise ClientError(
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


@dataclass(frozen=True)
class Copier:
    """What copying a file needs: the retrying session, a plain one for the streamed PUT (a stream cannot
    be sent twice), the destination and both ends' headers, and the progress."""

    http: requests.Session
    plain: requests.Session
    dest: DataURL
    source_headers: dict[str, str]
    dest_headers: dict[str, str]
    progress: TransferProgress


def copy(copier: Copier, item: SourceFile) -> None:
    """Stream one file from GitLab into the registry (bounded memory), then check the md5 three ways:
    GitLab's, the bytes that passed, and what the registry stored; on a difference the stored copy is
    deleted again and the file named."""
    target = f"{copier.dest.url}/{quote(item.rel)}"
    line = copier.progress.start(item.rel, item.size)
    try:
        stored, sent = _stream(copier, item, target, line)
    finally:
        copier.progress.finish(line)
    if stored.status_code not in (200, 201):
        raise ClientError(f"{item.rel}: the registry answered {stored.status_code} {_message(stored)}")
    registry_md5 = stored.json().get("md5")
    if registry_md5 != sent or (item.md5 and item.md5 != sent):
        undone = _remove(copier.http, target, copier.dest_headers) if stored.status_code == 201 else _KEPT
        raise ClientError(
            f"{item.rel}: md5 differs (GitLab lists {item.md5}, GitLab sent {sent},"
            f" the registry stored {registry_md5}); {undone}"
        )


def _stream(copier: Copier, item: SourceFile, target: str, line: Line) -> tuple[requests.Response, str]:
    """GitLab's bytes straight into the registry's PUT; the registry's answer and the md5 of what passed."""
    with ask(copier.http, "GET", item.url, headers=copier.source_headers, stream=True) as got:
        try:
            _check_source(got)
        except ClientError as e:
            raise ClientError(f"{item.rel}: {e}") from None
        digest = hashlib.md5(usedforsecurity=False)  # DVC's content address, not a security check

        def body() -> Iterator[bytes]:
            for chunk in got.iter_content(CHUNK):
                digest.update(chunk)
                copier.progress.advance(line, len(chunk))
                yield chunk

        stored = copier.plain.put(target, data=body(), headers=copier.dest_headers, timeout=600)
    return stored, digest.hexdigest()


_KEPT = "an identical copy was in the registry before this import, so it is left there: check it"


def _remove(http: requests.Session, target: str, headers: dict[str, str]) -> str:
    """Delete what was just stored at `target`; how that went, for the failure's line."""
    try:
        gone = ask(http, "DELETE", target, headers=headers)
    except (ClientError, requests.RequestException) as e:
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
    nap: Callable[[float], None] = time.sleep,
) -> int:
    """The whole import; 0 when every source file is in the registry, 1 otherwise, 2 for wrong URLs."""
    try:
        source = parse_source(source_url)
        dest = parse_data_url(dest_url)
    except BadURL as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 2
    retry = patient_retry(nap=nap)
    http = client_session(retry)
    source_headers = gitlab_headers(token)
    dest_secret = dest_token or token
    dest_headers = {"Authorization": f"Bearer {dest_secret}"} if dest_secret else {}
    try:
        files = list_source(http, source, source_headers)
        there = present(http, dest, dest_headers, [f.rel for f in files])
        todo = [f for f in files if f.rel not in there]
        print(
            f"{counted(len(files), 'file')} under {source_url}; {len(there):,} already in the registry,"
            f" {len(todo):,} to copy ({sum(f.size for f in todo) / 2**20:,.1f} MiB)",
            file=out,
        )
        if dry_run:
            for item in todo:
                print(f"would copy {item.rel} ({item.size:,} bytes)", file=out)
            return 0
        with (
            client_session() as plain,
            TransferProgress(out, files=len(todo), size=sum(f.size for f in todo)) as progress,
        ):
            copier = Copier(http, plain, dest, source_headers, dest_headers, progress)
            failed = _copy_all(copier, todo, jobs)
        missing = set(f.rel for f in files) - present(http, dest, dest_headers, [f.rel for f in files])
    except ClientError as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 1
    for problem in failed[:20]:
        print(f"failed: {problem}", file=out)
    if len(failed) > 20:
        print(f"failed: … and {len(failed) - 20:,} more", file=out)
    print(
        f"copied {counted(len(todo) - len(failed), 'file')}, skipped {len(there):,} already there,"
        f" {len(failed):,} failed, {len(missing):,} missing;"
        f" GitLab asked to slow down or failed {counted(retry.tally.count, 'time')} (retried)",
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


def _copy_all(copier: Copier, todo: list[SourceFile], jobs: int) -> list[str]:
    """Files first, `.dir` manifests after them (the registry takes a manifest only once its files are
    there); the problems, one line each."""
    failed: list[str] = []
    for batch in (
        [f for f in todo if not f.rel.endswith(".dir")],
        [f for f in todo if f.rel.endswith(".dir")],
    ):
        with worker_pool(jobs) as pool:
            running = {pool.submit(copy, copier, item): item for item in batch}
            for future in as_completed(running):
                item = running[future]
                try:
                    future.result()
                except (ClientError, requests.RequestException) as e:
                    failed.append(
                        str(e) if isinstance(e, ClientError) else f"{item.rel}: {e.__class__.__name__}"
                    )
    return failed
