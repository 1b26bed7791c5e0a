"""Direct upload sessions on the local backend (its signed URLs are served by the app itself): open,
PUT the bytes to the signed URL, complete; every refusal leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import bearer

API = "/api/v1/projects/101"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def storage_files(app: Flask) -> list[str]:
    root = Path(app.extensions["data_registry"].storage.root)
    found = (p.relative_to(root) for p in root.rglob("*") if p.is_file())
    return sorted(str(p) for p in found if p.parts[0] in ("projects", "versions", "uploads", ".tmp"))


def open_session(client: FlaskClient, role: str = "developer", **body: Any) -> Any:
    return client.post(f"{API}/uploads", json=body, headers=bearer(role))


def send(client: FlaskClient, session: dict[str, Any], data: bytes) -> None:
    assert session["kind"] == "parts"
    for part in session["parts"]:
        chunk = data[part["offset"] : part["offset"] + part["size"]]
        assert client.put(part["url"], data=chunk).status_code == 200  # no credential: the URL is signed


def complete(client: FlaskClient, session: dict[str, Any], role: str = "developer") -> Any:
    return client.post(f"{API}/uploads/{session['id']}/complete", headers=bearer(role))


def test_upload_complete_and_read_back(client: FlaskClient, app: Flask) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    md5 = hashlib.md5(data).hexdigest()
    opened = open_session(client, path="models/big.bin", size=len(data), md5=md5)
    assert opened.status_code == 201, opened.json
    session = opened.json
    assert session["size"] == len(data) and len(session["parts"]) == 1
    early = complete(client, session)
    assert early.status_code == 409 and early.json["error"]["code"] == "upload_not_finished"
    send(client, session, data)
    assert storage_files(app) == [f"uploads/{session['id']}"]  # not visible as an object yet
    done = complete(client, session)
    assert done.status_code == 201 and done.json["object"]["md5"] == md5 and done.json["created"] is True
    head = client.head("/ml/vision/-/data/models/big.bin", headers=bearer("reporter"))
    assert head.headers["X-Checksum-MD5"] == md5 and int(head.headers["Content-Length"]) == len(data)
    got = client.get("/ml/vision/-/data/models/big.bin", headers=bearer("reporter"), follow_redirects=True)
    assert hashlib.md5(got.data).hexdigest() == md5
    (stored,) = storage_files(app)  # a path that is not a content address: a version key of its own
    assert stored.startswith("versions/101/") and stored.endswith("/models/big.bin")
    assert complete(client, session).status_code == 404  # a session completes once


def test_md5_mismatch_is_rejected_at_complete_and_leaves_nothing(client: FlaskClient, app: Flask) -> None:
    data = os.urandom(100_000)
    session = open_session(client, path="x.bin", size=len(data), md5=hashlib.md5(b"other").hexdigest()).json
    send(client, session, data)
    refused = complete(client, session)
    assert refused.status_code == 400 and refused.json["error"]["code"] == "checksum_mismatch"
    assert storage_files(app) == []
    assert client.head("/ml/vision/-/data/x.bin", headers=bearer("reporter")).status_code == 404
    assert complete(client, session).status_code == 404


def test_content_addressed_path_is_checked_without_a_declared_md5(client: FlaskClient, app: Flask) -> None:
    path = (
        "dvc/files/md5/" + hashlib.md5(b"right").hexdigest()[:2] + "/" + hashlib.md5(b"right").hexdigest()[2:]
    )
    session = open_session(client, path=path, size=5).json
    assert session["md5"] == hashlib.md5(b"right").hexdigest()
    send(client, session, b"wrong")
    assert complete(client, session).json["error"]["code"] == "checksum_mismatch"
    assert storage_files(app) == []
    wrong_md5 = open_session(client, path=path, size=5, md5=hashlib.md5(b"wrong").hexdigest())
    assert wrong_md5.status_code == 400 and "does not match path" in wrong_md5.json["error"]["message"]


def test_signed_url_takes_no_more_than_the_declared_size(client: FlaskClient, app: Flask) -> None:
    session = open_session(client, path="small.bin", size=10).json
    too_big = client.put(session["parts"][0]["url"], data=b"x" * 11)
    assert too_big.status_code == 413
    assert storage_files(app) == []
    assert client.put(session["parts"][0]["url"], data=b"x" * 9).status_code == 200
    short = complete(client, session)
    assert short.status_code == 400 and "9 bytes arrived, 10 were declared" in short.json["error"]["message"]
    assert storage_files(app) == []


def test_signed_upload_urls_cannot_be_forged_or_used_to_read(client: FlaskClient, app: Flask) -> None:
    session = open_session(client, path="f.bin", size=4).json
    url = session["parts"][0]["url"]
    assert client.put(url[:-2] + ("AA" if not url.endswith("AA") else "BB"), data=b"data").status_code == 403
    assert client.get(url).status_code == 403  # an upload token is not a download token
    client.put("/ml/vision/-/data/secret.bin", data=b"secret", headers=bearer("developer"))
    download = client.get(
        f"{API}/objects/download", query_string={"path": "secret.bin"}, headers=bearer("reporter")
    ).json["url"]
    assert client.put(download, data=b"evil").status_code == 403  # a download token is not an upload token
    got = client.get("/ml/vision/-/data/secret.bin", headers=bearer("reporter"), follow_redirects=True)
    assert got.data == b"secret"


def test_abort_drops_the_bytes(client: FlaskClient, app: Flask) -> None:
    session = open_session(client, path="gone.bin", size=4).json
    send(client, session, b"data")
    assert client.delete(f"{API}/uploads/{session['id']}", headers=bearer("reporter")).status_code == 403
    assert client.delete(f"{API}/uploads/{session['id']}", headers=bearer("developer")).status_code == 204
    assert storage_files(app) == []
    assert complete(client, session).status_code == 404


def test_refusals_up_front(make_app: Callable[..., Flask]) -> None:
    client = make_app(default_quota="1MiB", max_file_size="2MiB").test_client()
    assert open_session(client, "reporter", path="a", size=1).status_code == 403
    big = open_session(client, path="a", size=3 * 1024 * 1024)
    assert big.status_code == 413 and big.json["error"]["code"] == "file_too_large"
    quota = open_session(client, path="a", size=1024 * 1024 + 1)
    assert quota.status_code == 413 and quota.json["error"]["code"] == "quota_exceeded"
    assert open_session(client, path="../a", size=1).status_code == 400
    assert open_session(client, path="a", size=0).status_code == 400
    assert open_session(client, path="a", size="1").status_code == 400
    client.put("/ml/vision/-/data/taken", data=b"one", headers=bearer("developer"))
    taken = open_session(client, path="taken", size=3)
    assert taken.status_code == 409 and "overwrite" in taken.json["error"]["message"]
    assert open_session(client, path="taken", size=3, overwrite=True).status_code == 201
    same = open_session(client, path="taken", size=3, md5=hashlib.md5(b"one").hexdigest())
    assert same.status_code == 201  # the same bytes again: nothing to conflict with


def test_a_session_belongs_to_its_project(client: FlaskClient) -> None:
    session = open_session(client, path="mine.bin", size=4).json
    other = client.post(f"/api/v1/projects/103/uploads/{session['id']}/complete", headers=bearer("developer"))
    assert other.status_code == 404  # the developer may write to 103, but the session is 101's
    assert complete(client, session).status_code == 409  # still open for its own project


def test_closed_sessions_refuse_bytes(client: FlaskClient, app: Flask) -> None:
    aborted = open_session(client, path="a.bin", size=4).json
    assert client.delete(f"{API}/uploads/{aborted['id']}", headers=bearer("developer")).status_code == 204
    assert client.put(aborted["parts"][0]["url"], data=b"late").status_code == 404
    completed = open_session(client, path="b.bin", size=4).json
    send(client, completed, b"good")
    assert complete(client, completed).status_code == 201
    late = client.put(completed["parts"][0]["url"], data=b"evil")
    assert late.status_code == 404 and "closed" in late.json["error"]["message"]
    assert [key.rsplit("/", 1)[1] for key in storage_files(app)] == ["b.bin"]
    got = client.get("/ml/vision/-/data/b.bin", headers=bearer("reporter"), follow_redirects=True)
    assert got.data == b"good"


def test_a_put_racing_complete_never_replaces_verified_bytes(app: Flask) -> None:
    """An attacker holding the upload URL PUTs other bytes while `complete` runs: whatever is committed
    was verified (50 rounds)."""
    client, attacker = app.test_client(), app.test_client()
    outcomes = set()
    for round_ in range(50):
        good, evil = os.urandom(12), os.urandom(12)
        md5 = hashlib.md5(good).hexdigest()
        path = f"dvc/files/md5/{md5[:2]}/{md5[2:]}"
        session = open_session(client, path=path, size=len(good)).json
        send(client, session, good)
        url, stop = session["parts"][0]["url"], threading.Event()

        def put_evil(url: str = url, evil: bytes = evil, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                attacker.put(url, data=evil)

        racer = threading.Thread(target=put_evil)
        racer.start()
        try:
            done = complete(client, session)
        finally:
            stop.set()
            racer.join()
        outcomes.add(done.status_code)
        head = client.head(f"/ml/vision/-/data/{path}", headers=bearer("reporter"))
        if done.status_code == 201:
            assert head.headers["X-Checksum-MD5"] == md5
            got = client.get(f"/ml/vision/-/data/{path}", headers=bearer("reporter"), follow_redirects=True)
            assert got.data == good, f"round {round_}: committed bytes differ from the verified ones"
        elif done.status_code == 409:  # a late PUT's clean-up took the file: not finished, nothing kept
            assert done.json["error"]["code"] == "upload_not_finished" and head.status_code == 404
            assert (
                client.delete(f"{API}/uploads/{session['id']}", headers=bearer("developer")).status_code
                == 204
            )
        else:  # the evil bytes arrived before completion began: verified, refused, nothing kept
            assert done.status_code == 400 and head.status_code == 404, done.json
        assert [f for f in storage_files(app) if not f.startswith("projects/")] == []
    assert 201 in outcomes
