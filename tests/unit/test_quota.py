"""Per-project quotas and the file-size limit: refused with 413 and a message DVC prints, nothing kept."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask

from app.jobs.usage_sweep import sweep_usage
from app.model.sizes import human_size, parse_size
from tests.conftest import bearer, usage_of

BASE = "/ml/vision/-/data/q"


def ca(body: bytes) -> str:
    md5 = hashlib.md5(body).hexdigest()
    return f"{BASE}/files/md5/{md5[:2]}/{md5[2:]}"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1048576", 2**20),
        ("50GiB", 50 * 2**30),
        ("10 GB", 10**10),
        ("512MiB", 512 * 2**20),
        ("1.5KiB", 1536),
        ("5TiB", 5 * 2**40),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "5 parsecs", "-1GB"])
def test_parse_size_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 10 * 2**30, int(9.8 * 2**30))] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "10.0 GiB",
        "9.8 GiB",
    ]


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(default_quota="10KiB", max_file_size="8KiB", download_mode="redirect")


def index(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions["data_registry"].index


def chunked(body: bytes) -> dict[str, object]:
    """Request options for a body without Content-Length, as DVC's http remote sends it."""
    return {"input_stream": io.BytesIO(body), "environ_overrides": {"wsgi.input_terminated": True}}


def stored(tmp_path: Path) -> list[str]:
    return sorted(str(p) for p in (tmp_path / "storage" / "projects").rglob("*") if p.is_file())


def test_quota_refuses_with_the_message_dvc_prints(app: Flask, tmp_path: Path) -> None:
    client, dev = app.test_client(), bearer("developer")
    first, second = os.urandom(6000), os.urandom(6000)
    assert client.put(ca(first), data=first, headers=dev).status_code == 201
    refused = client.put(ca(second), data=second, headers=dev)
    assert refused.status == "413 Quota exceeded for ml/vision: 5.9 KiB of 10.0 KiB used"
    assert refused.json["error"]["code"] == "quota_exceeded"
    assert client.head(ca(second), headers=dev).status_code == 404
    assert len(stored(tmp_path)) == 1
    # reads and deletes still work; an identical re-upload is not a new byte
    assert client.get(ca(first), headers=dev).status_code == 302
    assert client.put(ca(first), data=first, headers=dev).status_code == 200
    assert client.delete(ca(first), headers=bearer("maintainer")).status_code == 204
    trash = client.put(ca(second), data=second, headers=dev)  # the deleted object is in the trash
    assert trash.status.startswith(
        "413 Quota exceeded for ml/vision: 5.9 KiB of 10.0 KiB used, 5.9 KiB of it"
    )
    assert client.post("/api/v1/projects/101/trash/purge", headers=bearer("maintainer")).status_code == 200
    assert client.put(ca(second), data=second, headers=dev).status_code == 201


def test_a_streamed_body_is_cut_off_at_the_quota(app: Flask, tmp_path: Path) -> None:
    client, dev = app.test_client(), bearer("developer")
    first = os.urandom(7000)
    client.put(ca(first), data=first, headers=dev)

    refused = client.put(f"{BASE}/streamed.bin", headers=dev, **chunked(os.urandom(4000)))
    assert refused.status_code == 413 and "Quota exceeded" in refused.status
    assert len(stored(tmp_path)) == 1
    assert list((tmp_path / "storage" / ".tmp").iterdir()) == []
    assert usage_of(index(app), 101) == (7000, 1)


def test_raising_a_projects_quota_lets_the_upload_through(app: Flask) -> None:
    client, dev = app.test_client(), bearer("developer")
    big = os.urandom(7000)
    client.put(ca(big), data=big, headers=dev)
    more = os.urandom(7000)
    assert client.put(ca(more), data=more, headers=dev).status_code == 413
    index(app).set_quota(101, 100 * 1024)
    assert client.put(ca(more), data=more, headers=dev).status_code == 201
    index(app).set_quota(101, 0)  # 0: unlimited for this project
    again = os.urandom(8000)
    assert client.put(ca(again), data=again, headers=dev).status_code == 201


def test_replacing_counts_the_new_bytes_and_the_replaced_version_as_trash(
    make_app: Callable[..., Flask],
) -> None:
    """DESIGN 3.10: the replaced version goes to the trash, which counts toward the quota; without a
    trash only the growth counts."""
    client, dev = make_app(default_quota="10KiB", max_file_size="8KiB").test_client(), bearer("developer")
    client.put(f"{BASE}/model.bin", data=os.urandom(6000), headers=dev)
    assert client.put(f"{BASE}/model.bin", data=os.urandom(8000), headers=dev).status_code == 413
    assert client.put(f"{BASE}/model.bin", data=os.urandom(4000), headers=dev).status_code == 200
    assert client.post("/api/v1/projects/101/trash/purge", headers=bearer("maintainer")).status_code == 200
    app = make_app(default_quota="10KiB", max_file_size="8KiB", trash_retention="0")
    replaced = app.test_client().put(f"{BASE}/model.bin", data=os.urandom(8000), headers=dev)
    assert replaced.status_code == 200
    assert usage_of(index(app), 101) == (8000, 1)


def test_the_file_size_limit(app: Flask, tmp_path: Path) -> None:
    client, dev = app.test_client(), bearer("developer")
    index(app).set_quota(101, 0)
    sized = client.put(f"{BASE}/big.bin", data=os.urandom(9000), headers=dev)
    assert sized.status == "413 File too large: the limit is 8.0 KiB"
    assert sized.json["error"]["code"] == "file_too_large"

    streamed = client.put(f"{BASE}/big.bin", headers=dev, **chunked(os.urandom(10000)))
    assert streamed.status == "413 File too large: the limit is 8.0 KiB"
    assert stored(tmp_path) == []


def test_parallel_uploads_against_a_nearly_full_quota(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    """40 uploads at once (content-addressed and plain, sized and chunked) into room for about ten: the
    indexed usage never passes the quota and nothing refused stays in storage for a sweep to index."""
    app = make_app(default_quota="100KiB")
    svc = app.extensions["data_registry"]

    def upload(i: int) -> int:
        body = os.urandom(9000 + i)
        path = ca(body) if i % 2 else f"/ml/vision/-/data/plain/{i}.bin"
        options: dict[str, object] = chunked(body) if i % 4 < 2 else {"data": body}
        return app.test_client().put(path, headers=bearer("developer"), **options).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(upload, range(40)))
    assert set(statuses) == {201, 413} and statuses.count(201) >= 5
    used, count = usage_of(svc.index, 101)
    assert used <= 100 * 1024 and count == statuses.count(201)
    indexed = {info.key for info in svc.index.find(101, prefix="")}
    root = tmp_path / "storage"
    stored = {str(p.relative_to(root)) for top in ("projects", "versions") for p in (root / top).rglob("*")}
    assert {key for key in stored if (root / key).is_file()} == indexed
    report = sweep_usage(svc.lifecycle, svc.index, svc.storage)
    assert (report.indexed, report.dropped, report.corrected) == (0, 0, 0)


def test_direct_upload_sessions_hold_their_room(make_app: Callable[..., Flask]) -> None:
    """Open sessions reserve their declared size until they complete, abort or expire: 20 sessions of
    4 KiB fill an 80 KiB quota; the next session and a streamed upload are refused; an abort frees room."""
    client = make_app(default_quota="80KiB").test_client()
    api = "/api/v1/projects/101/uploads"
    sessions = [
        client.post(api, json={"path": f"s/{i}", "size": 4096}, headers=bearer("developer"))
        for i in range(20)
    ]
    assert [s.status_code for s in sessions] == [201] * 20
    refused = client.post(api, json={"path": "s/x", "size": 1}, headers=bearer("developer"))
    assert refused.status_code == 413 and refused.json["error"]["code"] == "quota_exceeded"
    assert client.put("/ml/vision/-/data/streamed", data=b"x", headers=bearer("developer")).status_code == 413
    first = sessions[0].json
    assert client.put(first["parts"][0]["url"], data=os.urandom(4096)).status_code == 200
    done = client.post(f"{api}/{first['id']}/complete", headers=bearer("developer"))
    assert done.status_code == 201  # its own room is its to use
    last = sessions[-1].json
    assert client.delete(f"{api}/{last['id']}", headers=bearer("developer")).status_code == 204
    assert client.put(last["parts"][0]["url"], data=b"late").status_code == 404  # aborted: refuses bytes
    assert (
        client.put("/ml/vision/-/data/streamed", data=b"x" * 4096, headers=bearer("developer")).status_code
        == 201
    )
