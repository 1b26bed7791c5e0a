"""`data-registry upload FILE URL` and `download URL FILE`: one big file straight between this machine and
the bucket, through the registry's direct upload sessions and signed URLs — parts in parallel, progress,
resumable after an interruption (a state file beside the file), md5 verified. The credential goes to the
registry's origin only (app/client_http.py); the signed URLs get none."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import requests

from app.client_http import client_session
from app.doctor import DataURL, DoctorError, parse
from app.importer import ImportError_ as TransferError
from app.importer import Progress, Retrying

CHUNK = 1024 * 1024


def _md5(path: Path, start: int = 0, digest: Any = None) -> Any:
    digest = digest or hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        f.seek(start)
        while block := f.read(8 * CHUNK):
            digest.update(block)
    return digest


class FileSlice:
    """`size` bytes of a file from `offset`, read as requests sends a body of known length (a generator
    would make it chunked, which signed part URLs refuse)."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._file = path.open("rb")
        self._file.seek(offset)
        self._left = size

    def __len__(self) -> int:
        return self._left

    def read(self, amount: int = -1) -> bytes:
        if not self._left:
            return b""
        wanted = self._left if amount is None or amount < 0 else min(amount, self._left)
        block = self._file.read(wanted)
        self._left -= len(block)
        if not self._left:
            self._file.close()
        return block


def _message(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.reason}"


def _api(target: DataURL) -> str:
    return f"{target.root}/api/v1/projects/{quote(target.project, safe='')}"


def _object(url: str) -> DataURL:
    target = parse(url)
    if not target.prefix:
        raise TransferError("The URL names no object: add its path after /-/data/ (…/-/data/models/w.bin)")
    return target


class StateFile:
    """What an upload has done so far, beside the file: the session and the parts already sent."""

    def __init__(self, path: Path) -> None:
        self.path, self.lock = path, threading.Lock()

    def load(self) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = json.loads(self.path.read_text())
            return found
        except (OSError, ValueError):
            return None

    def save(self, state: dict[str, Any]) -> None:
        with self.lock:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(state))
            os.replace(temporary, self.path)  # never half-written, even when killed

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def upload(
    file: Path,
    url: str,
    headers: dict[str, str],
    *,
    jobs: int = 4,
    overwrite: bool = False,
    out: TextIO = sys.stdout,
    session: requests.Session | None = None,
) -> int:
    """0 when the registry has the file (201 new, 200 identical), 1 on a refusal, 2 for a wrong URL."""
    try:
        target = _object(url)
    except (DoctorError, TransferError) as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 2
    http = Retrying(session or client_session())
    stat = file.stat()
    state_file = StateFile(file.with_name(file.name + ".registry-upload"))
    state = state_file.load()
    fingerprint = {"url": url, "size": stat.st_size, "mtime": stat.st_mtime_ns}
    try:
        if state is None or state.get("file") != fingerprint:
            print(f"hashing {file.name} ({stat.st_size / 2**20:,.1f} MiB)", file=out)
            md5 = _md5(file).hexdigest()
            opened = http.request(
                "POST",
                f"{_api(target)}/uploads",
                json={"path": target.prefix, "size": stat.st_size, "md5": md5, "overwrite": overwrite},
                headers=headers,
            )
            if opened.status_code != 201:
                raise TransferError(f"the registry refused the upload: {_message(opened)}")
            state = {"file": fingerprint, "md5": md5, "session": opened.json(), "done": []}
            state_file.save(state)
        else:
            print(f"resuming: {len(state['done'])} part(s) already sent", file=out)
        _send(http, file, state, state_file, jobs, out)
        done = http.request(
            "POST", f"{_api(target)}/uploads/{state['session']['id']}/complete", headers=headers
        )
        if done.status_code not in (200, 201):
            raise TransferError(f"the registry did not complete the upload: {_message(done)}")
    except TransferError as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 1
    state_file.remove()
    stored = done.json()["object"]
    said = "stored" if done.status_code == 201 else "already there, identical"
    print(f"{said}: {target.prefix} ({stored['size']:,} bytes, md5 {stored['md5']})", file=out)
    return 0


def _send(
    http: Retrying, file: Path, state: dict[str, Any], state_file: StateFile, jobs: int, out: TextIO
) -> None:
    session = state["session"]
    if session["kind"] == "gcs_resumable":
        _send_gcs(http, file, session, out)
        return
    parts = [p for p in session["parts"] if p["number"] not in state["done"]]
    progress = Progress(len(session["parts"]), sum(p["size"] for p in session["parts"]), out)
    already = [p for p in session["parts"] if p["number"] in state["done"]]
    progress.add(len(already), sum(p["size"] for p in already))

    def put(part: dict[str, Any]) -> None:
        try:
            sent = http.request(
                "PUT", part["url"], body=lambda: FileSlice(file, part["offset"], part["size"])
            )
        except (requests.RequestException, OSError) as e:
            raise TransferError(f"part {part['number']}: {e.__class__.__name__}") from None
        if sent.status_code not in (200, 201, 204):
            raise TransferError(f"part {part['number']}: the bucket answered {sent.status_code}")
        with state_file.lock:
            state["done"].append(part["number"])
        state_file.save(state)
        progress.add(1, part["size"])

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in [pool.submit(put, part) for part in parts]:
            future.result()
    progress.done()


def _send_gcs(http: Retrying, file: Path, session: dict[str, Any], out: TextIO) -> None:
    """A GCS resumable upload: open it once (the session URI is kept), then send what GCS lacks."""
    uri = session.get("resumable_uri")
    if uri is None:
        opened = http.request("POST", session["url"], headers=session.get("headers") or {})
        uri = opened.headers.get("Location")
        if uri is None:
            raise TransferError(f"GCS did not open the upload ({opened.status_code})")
        session["resumable_uri"] = uri
    size = file.stat().st_size
    status = http.request("PUT", uri, headers={"Content-Range": f"bytes */{size}", "Content-Length": "0"})
    have = 0
    if status.status_code == 308 and "Range" in status.headers:
        have = int(status.headers["Range"].rsplit("-", 1)[1]) + 1
    elif status.status_code in (200, 201):
        return
    progress = Progress(1, size, out)
    sent = http.request(
        "PUT",
        uri,
        body=lambda: FileSlice(file, have, size - have),
        headers={"Content-Range": f"bytes {have}-{size - 1}/{size}"},
    )
    if sent.status_code not in (200, 201):
        raise TransferError(f"GCS answered {sent.status_code}")
    progress.add(1, size - have)
    progress.done()


def download(
    url: str,
    file: Path,
    headers: dict[str, str],
    *,
    out: TextIO = sys.stdout,
    session: requests.Session | None = None,
) -> int:
    """Fetch the object through a signed URL into `file` (a `.part` beside it until the md5 checks out;
    an interrupted download continues from there). 0 done, 1 refused or corrupt, 2 wrong URL."""
    try:
        target = _object(url)
    except (DoctorError, TransferError) as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 2
    http = Retrying(session or client_session())
    partial = file.with_name(file.name + ".part")
    try:
        signed = http.request(
            "GET", f"{_api(target)}/objects/download", params={"path": target.prefix}, headers=headers
        )
        if signed.status_code != 200:
            raise TransferError(f"the registry refused the download: {_message(signed)}")
        info = signed.json()
        have = partial.stat().st_size if partial.exists() else 0
        if have > info["size"]:
            partial.unlink()
            have = 0
        if have:
            print(f"resuming at {have / 2**20:,.1f} MiB", file=out)
        progress = Progress(1, info["size"] - have, out)
        if have < info["size"]:
            with http.request("GET", info["url"], headers={"Range": f"bytes={have}-"}, stream=True) as got:
                if got.status_code not in (200, 206):
                    raise TransferError(f"the bucket answered {got.status_code}")
                if got.status_code == 200:
                    have = 0  # the bucket ignored the range: start over
                with partial.open("ab" if have else "wb") as f:
                    for chunk in got.iter_content(CHUNK):
                        f.write(chunk)
                        progress.add(0, len(chunk))
        progress.add(1, 0)
        progress.done()
        md5 = _md5(partial).hexdigest()
        if md5 != info["md5"]:
            partial.unlink()
            raise TransferError(f"md5 {md5} differs from the registry's {info['md5']}: download again")
    except TransferError as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 1
    os.replace(partial, file)
    print(f"downloaded {target.prefix} to {file} ({info['size']:,} bytes, md5 verified)", file=out)
    return 0
