"""`data-registry upload FILE URL` and `download URL FILE`: one big file straight between this machine and
the bucket, through the registry's direct upload sessions and signed URLs — parts in parallel, progress,
resumable after an interruption (a state file beside the file), md5 verified. The credential goes to the
registry's origin only (app/client/session.py); the signed URLs get none."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any, TextIO
from urllib.parse import quote

import requests

from app.client.errors import BadURL, ClientError
from app.client.pool import worker_pool
from app.client.progress import TransferProgress, counted
from app.client.retry import patient_retry
from app.client.session import ask, client_session, error_message
from app.client.urls import DataURL, parse_data_url

CHUNK = 1024 * 1024


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(8 * CHUNK):
            digest.update(block)
    return digest.hexdigest()


class FileSlice:
    """`size` bytes of a file from `offset`, read as requests sends a body of known length (a generator
    would make it chunked, which signed part URLs refuse); `tell` and `seek` let urllib3 send it again
    when it retries."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._path, self._offset, self._size, self._at = path, offset, size, 0
        self._file: IO[bytes] | None = None

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._at

    def seek(self, position: int, whence: int = os.SEEK_SET) -> int:
        self.close()
        self._at = position if whence == os.SEEK_SET else self._size + position
        return self._at

    def read(self, amount: int | None = -1) -> bytes:
        left = self._size - self._at
        if left <= 0:
            return b""
        if self._file is None:
            self._file = self._path.open("rb")
            self._file.seek(self._offset + self._at)
        block = self._file.read(left if amount is None or amount < 0 else min(amount, left))
        self._at += len(block)
        if self._at >= self._size or not block:
            self.close()
        return block

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _api(target: DataURL) -> str:
    return f"{target.root}/api/v1/projects/{quote(target.project, safe='')}"


def _object(url: str) -> DataURL:
    target = parse_data_url(url)
    if not target.prefix:
        raise BadURL("The URL names no object: add its path after /-/data/ (…/-/data/models/w.bin)")
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
) -> int:
    """0 when the registry has the file (201 new, 200 identical), 1 on a refusal, 2 for a wrong URL."""
    try:
        target = _object(url)
    except BadURL as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 2
    http = client_session(patient_retry())
    stat = file.stat()
    state_file = StateFile(file.with_name(file.name + ".registry-upload"))
    state = state_file.load()
    fingerprint = {"url": url, "size": stat.st_size, "mtime": stat.st_mtime_ns}
    try:
        if state is None or state.get("file") != fingerprint:
            print(f"hashing {file.name} ({stat.st_size / 2**20:,.1f} MiB)", file=out)
            md5 = _md5(file)
            opened = ask(
                http,
                "POST",
                f"{_api(target)}/uploads",
                json={"path": target.prefix, "size": stat.st_size, "md5": md5, "overwrite": overwrite},
                headers=headers,
            )
            if opened.status_code != 201:
                raise ClientError(f"the registry refused the upload: {error_message(opened)}")
            state = {"file": fingerprint, "md5": md5, "session": opened.json(), "done": []}
            state_file.save(state)
        else:
            print(f"resuming: {counted(len(state['done']), 'part')} already sent", file=out)
        _send(http, file, state, state_file, jobs, out)
        done = ask(http, "POST", f"{_api(target)}/uploads/{state['session']['id']}/complete", headers=headers)
        if done.status_code not in (200, 201):
            raise ClientError(f"the registry did not complete the upload: {error_message(done)}")
    except ClientError as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 1
    state_file.remove()
    stored = done.json()["object"]
    said = "stored" if done.status_code == 201 else "already there, identical"
    print(f"{said}: {target.prefix} ({stored['size']:,} bytes, md5 {stored['md5']})", file=out)
    return 0


def _send(
    http: requests.Session, file: Path, state: dict[str, Any], state_file: StateFile, jobs: int, out: TextIO
) -> None:
    session = state["session"]
    if session["kind"] == "gcs_resumable":
        _send_gcs(http, file, session, out)
        return
    parts = [p for p in session["parts"] if p["number"] not in state["done"]]
    before = sum(p["size"] for p in session["parts"] if p["number"] in state["done"])
    size = sum(p["size"] for p in session["parts"])
    with TransferProgress(out, files=1, size=size, done_size=before) as progress:
        line = progress.start(file.name, size, done=before)

        def put(part: dict[str, Any]) -> None:
            body = FileSlice(file, part["offset"], part["size"])
            try:
                sent = ask(http, "PUT", part["url"], data=body)
            except (requests.RequestException, OSError) as e:
                raise ClientError(f"part {part['number']}: {e.__class__.__name__}") from None
            finally:
                body.close()
            if sent.status_code not in (200, 201, 204):
                raise ClientError(f"part {part['number']}: the bucket answered {sent.status_code}")
            with state_file.lock:
                state["done"].append(part["number"])
            state_file.save(state)
            progress.advance(line, part["size"])

        with worker_pool(jobs) as pool:
            for future in [pool.submit(put, part) for part in parts]:
                future.result()
        progress.finish(line)


def _send_gcs(http: requests.Session, file: Path, session: dict[str, Any], out: TextIO) -> None:
    """A GCS resumable upload: open it once (the session URI is kept), then send what GCS lacks."""
    uri = session.get("resumable_uri")
    if uri is None:
        opened = ask(http, "POST", session["url"], headers=session.get("headers") or {})
        uri = opened.headers.get("Location")
        if uri is None:
            raise ClientError(f"GCS did not open the upload ({opened.status_code})")
        session["resumable_uri"] = uri
    size = file.stat().st_size
    status = ask(http, "PUT", uri, headers={"Content-Range": f"bytes */{size}", "Content-Length": "0"})
    have = 0
    if status.status_code == 308 and "Range" in status.headers:
        have = int(status.headers["Range"].rsplit("-", 1)[1]) + 1
    elif status.status_code in (200, 201):
        return
    with TransferProgress(out, files=1, size=size, done_size=have) as progress:
        line = progress.start(file.name, size, done=have)
        body = FileSlice(file, have, size - have)
        try:
            sent = ask(
                http, "PUT", uri, data=body, headers={"Content-Range": f"bytes {have}-{size - 1}/{size}"}
            )
        finally:
            body.close()
        if sent.status_code not in (200, 201):
            raise ClientError(f"GCS answered {sent.status_code}")
        progress.advance(line, size - have)
        progress.finish(line)


def destination(url: str, given: str) -> Path:
    """Where `download URL GIVEN` saves: GIVEN, or the object's name inside GIVEN when that is a directory
    (one that exists, or any path ending in /, which must exist). Said before anything is fetched."""
    name = _object(url).prefix.rsplit("/", 1)[-1]
    path = Path(given)
    if given.endswith(("/", os.sep)) or path.is_dir():
        if not path.is_dir():
            raise ClientError(f"no such directory: {given}")
        path = path / name
    elif not path.parent.is_dir():
        raise ClientError(f"no such directory: {path.parent}/")
    if path.is_dir():
        raise ClientError(f"{path} is a directory: name the file to save {name} as")
    return path


def download(url: str, file: Path, headers: dict[str, str], *, out: TextIO = sys.stdout) -> int:
    """Fetch the object through a signed URL into `file` (a `.part` beside it until the md5 checks out;
    an interrupted download continues from there). 0 done, 1 refused or corrupt, 2 wrong URL."""
    try:
        target = _object(url)
    except BadURL as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 2
    http = client_session(patient_retry())
    partial = file.with_name(file.name + ".part")
    try:
        signed = ask(
            http, "GET", f"{_api(target)}/objects/download", params={"path": target.prefix}, headers=headers
        )
        if signed.status_code != 200:
            raise ClientError(f"the registry refused the download: {error_message(signed)}")
        info = signed.json()
        have = partial.stat().st_size if partial.exists() else 0
        if have > info["size"]:
            partial.unlink()
            have = 0
        if have:
            print(f"resuming at {have / 2**20:,.1f} MiB", file=out)
        _fetch(http, info, partial, have, out)
        md5 = _md5(partial)
        if md5 != info["md5"]:
            partial.unlink()
            raise ClientError(f"md5 {md5} differs from the registry's {info['md5']}: download again")
    except ClientError as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 1
    os.replace(partial, file)
    print(f"downloaded {target.prefix} to {file} ({info['size']:,} bytes, md5 verified)", file=out)
    return 0


def _fetch(http: requests.Session, info: dict[str, Any], partial: Path, have: int, out: TextIO) -> None:
    """The bytes from `have` on, appended to `partial` (all of them when the bucket ignores the range)."""
    size = info["size"]
    name = partial.name.removesuffix(".part")
    if have >= size:
        with TransferProgress(out, files=1, size=size, done_size=have) as progress:
            progress.finish(progress.start(name, size, done=have))
        return
    with ask(http, "GET", info["url"], headers={"Range": f"bytes={have}-"}, stream=True) as got:
        if got.status_code not in (200, 206):
            raise ClientError(f"the bucket answered {got.status_code}")
        if got.status_code == 200:
            have = 0  # the bucket ignored the range: start over (nothing was there before this run)
        with (
            partial.open("ab" if have else "wb") as f,
            TransferProgress(out, files=1, size=size, done_size=have) as progress,
        ):
            line = progress.start(name, size, done=have)
            try:
                for chunk in got.iter_content(CHUNK):
                    f.write(chunk)
                    progress.advance(line, len(chunk))
            except requests.RequestException as e:
                raise ClientError(f"the download broke off ({e.__class__.__name__})") from None
            progress.finish(line)
