"""PUT replaces (DESIGN 3.2, 3.10): a different object at a path is replaced and the version it replaces
goes to the trash, restorable and counted as the trash is; If-Match / If-None-Match answer 412 when they do
not hold, also when two writers race; content addresses keep their rule; the JSON API keeps `overwrite`."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.errors import PreconditionFailed
from app.jobs import usage_sweep
from app.model.conditions import EntityTags, WriteCondition
from app.model.identity import Credential, CredentialKind
from app.model.projects import ProjectRef
from tests.conftest import TOKENS, bearer

API = "/api/v1/projects/101"
DATA = "/ml/vision/-/data"
PATH = "reports/metrics.json"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def put(client: FlaskClient, body: bytes, path: str = PATH, **headers: str) -> int:
    return client.put(f"{DATA}/{path}", data=body, headers={**bearer("developer"), **headers}).status_code


def content(client: FlaskClient, path: str = PATH) -> bytes:
    got = client.get(f"{DATA}/{path}", headers=bearer("reporter"), follow_redirects=True)
    assert got.status_code == 200
    return got.data


def trash(client: FlaskClient) -> list[dict[str, object]]:
    objects: list[dict[str, object]] = client.get(f"{API}/trash", headers=bearer("reporter")).json["objects"]
    return objects


def totals(client: FlaskClient) -> tuple[int, int, int, int]:
    info = client.get(API, headers=bearer("reporter")).json
    return info["used_bytes"], info["object_count"], info["trash_bytes"], info["trash_count"]


def test_the_replaced_version_goes_to_the_trash_and_comes_back(client: FlaskClient) -> None:
    """Was 409 "A different object exists … add ?overwrite=true": rclone failed every changed file."""
    assert put(client, b"version one") == 201
    assert put(client, b"version two!") == 200
    assert content(client) == b"version two!"
    assert [(o["path"], o["md5"]) for o in trash(client)] == [(PATH, md5(b"version one"))]
    assert totals(client) == (12, 1, 11, 1)  # live and trash, each counted once
    assert put(client, b"version 3") == 200
    assert sorted(o["md5"] for o in trash(client)) == sorted([md5(b"version one"), md5(b"version two!")])

    restored = client.post(f"{API}/trash/restore", json={"paths": [PATH]}, headers=bearer("maintainer"))
    assert restored.status_code == 200
    assert content(client) == b"version two!"  # the newest replaced version; the live one took its place
    assert sorted(o["md5"] for o in trash(client)) == sorted([md5(b"version one"), md5(b"version 3")])
    assert totals(client) == (12, 1, 20, 2)


def test_an_identical_put_changes_nothing(client: FlaskClient) -> None:
    assert put(client, b"same") == 201
    assert put(client, b"same") == 200
    assert put(client, b"same", **{"If-Match": f'"{md5(b"same")}"'}) == 200
    assert trash(client) == [] and totals(client) == (4, 1, 0, 0)


def test_the_replaced_versions_bytes_stay_until_the_trash_is_purged(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = app.extensions["data_registry"]
    root = Path(svc.storage.root)

    def stored() -> list[bytes]:
        return sorted(p.read_bytes() for p in (root / "versions").rglob("*") if p.is_file())

    for body in (b"one", b"two", b"three"):
        put(client, body)
    assert stored() == [b"one", b"three", b"two"]  # no copy: each replaced key moved to its trash row
    # the usage sweep sees every version at a path as referenced, however old its blob
    monkeypatch.setattr(usage_sweep, "ORPHAN_AGE", timedelta(0))
    usage_sweep.sweep_usage(svc.lifecycle, svc.index, svc.storage)
    assert stored() == [b"one", b"three", b"two"] and totals(client) == (5, 1, 6, 2)
    assert client.post(f"{API}/trash/purge", headers=bearer("maintainer")).status_code == 200
    assert stored() == [b"three"] and totals(client) == (5, 1, 0, 0)


def test_without_a_trash_the_replaced_version_is_gone(make_app: Callable[..., Flask]) -> None:
    app = make_app(trash_retention="0")
    client = app.test_client()
    root = Path(app.extensions["data_registry"].storage.root)
    put(client, b"old bytes")
    assert put(client, b"newer bytes") == 200
    assert trash(client) == [] and totals(client) == (11, 1, 0, 0)
    assert [p.read_bytes() for p in (root / "versions").rglob("*") if p.is_file()] == [b"newer bytes"]


def test_the_quota_counts_the_new_bytes_and_the_replaced_version_as_trash(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(default_quota="1000B").test_client()
    assert put(client, b"a" * 400) == 201
    assert put(client, b"b" * 400) == 200  # 400 live + 400 in the trash
    refused = client.put(f"{DATA}/{PATH}", data=b"c" * 400, headers=bearer("developer"))
    assert refused.status_code == 413 and "in the trash" in refused.status
    assert put(client, b"b" * 400) == 200  # an identical re-upload is never refused, even at the quota
    assert content(client) == b"b" * 400 and totals(client) == (400, 1, 400, 1)


def test_content_addresses_keep_their_rule(client: FlaskClient) -> None:
    body = b"dvc object"
    path = f"dvc/files/md5/{md5(body)[:2]}/{md5(body)[2:]}"
    assert put(client, b"another body", path) == 400  # the body must match the address
    assert put(client, body, path) == 201
    assert put(client, body, path) == 200  # DVC may push an object twice
    assert client.delete(f"{DATA}/{path}", headers=bearer("maintainer")).status_code == 204
    assert put(client, body, path) == 201  # pushed again after gc: its bytes in the trash are live again
    assert trash(client) == [] and totals(client) == (len(body), 1, 0, 0)


@pytest.mark.parametrize(
    ("condition", "existing", "status"),
    [
        ({"If-None-Match": "*"}, None, 201),
        ({"If-None-Match": "*"}, b"there", 412),
        ({"If-Match": "*"}, None, 412),
        ({"If-Match": "*"}, b"there", 200),
        ({"If-Match": f'"{md5(b"there")}"'}, b"there", 200),
        ({"If-Match": md5(b"there")}, b"there", 200),  # the bare md5, leniently
        ({"If-Match": f'"{md5(b"other")}", "{md5(b"there")}"'}, b"there", 200),
        ({"If-Match": f'"{md5(b"other")}"'}, b"there", 412),
        ({"If-Match": f'W/"{md5(b"there")}"'}, b"there", 412),  # strong comparison
        ({"If-Match": f'"{md5(b"there")}"'}, None, 412),
        ({"If-None-Match": f'"{md5(b"there")}"'}, b"there", 412),
        ({"If-None-Match": f'"{md5(b"other")}"'}, b"there", 200),
        ({"If-Match": "not a tag"}, b"there", 400),
    ],
)
def test_if_match_and_if_none_match_on_put(
    client: FlaskClient, condition: dict[str, str], existing: bytes | None, status: int
) -> None:
    if existing is not None:
        assert put(client, existing) == 201
    answer = client.put(f"{DATA}/{PATH}", data=b"new", headers={**bearer("developer"), **condition})
    assert answer.status_code == status, answer.status
    if status < 300:
        assert content(client) == b"new"
    elif existing is not None:
        assert content(client) == existing
    if status == 412:
        assert answer.json["error"]["code"] == "precondition_failed"


def test_a_refused_condition_reads_no_body(client: FlaskClient) -> None:
    """Checked before the body: a doomed upload costs no transfer."""
    put(client, b"there")
    body = io.BytesIO(b"x" * 100)
    answer = client.put(
        f"{DATA}/{PATH}",
        input_stream=body,
        headers={**bearer("developer"), "If-None-Match": "*", "Content-Length": "100"},
    )
    assert answer.status_code == 412 and body.tell() == 0


def test_two_racing_create_only_puts_one_wins(app: Flask) -> None:
    """Both pass the check before their bodies are read; the one under the project's lock decides."""
    uploads = app.extensions["data_registry"].uploads
    credential = Credential(CredentialKind.BEARER, TOKENS["developer"])
    both_reading = threading.Barrier(2, timeout=10)
    condition = WriteCondition(if_none_match=EntityTags(any=True))
    outcomes: list[str] = []

    def body(data: bytes) -> Iterator[bytes]:
        both_reading.wait()  # each is past the early check: nothing existed for either
        yield data

    def upload(data: bytes) -> None:
        try:
            uploads.upload(credential, ProjectRef(path="ml/vision"), PATH, body(data), condition=condition)
            outcomes.append("201")
        except PreconditionFailed:
            outcomes.append("412")

    threads = [threading.Thread(target=upload, args=(data,)) for data in (b"writer one", b"writer two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(outcomes) == ["201", "412"]
    client = app.test_client()
    assert content(client) in (b"writer one", b"writer two") and trash(client) == []


def test_the_json_api_keeps_overwrite(client: FlaskClient) -> None:
    """Direct upload sessions keep their contract: without overwrite a different object is a 409; with
    it, the replaced version goes to the trash like a PUT's."""
    put(client, b"first")
    body = b"second"
    start = {"path": PATH, "size": len(body), "md5": md5(body)}
    refused = client.post(f"{API}/uploads", json=start, headers=bearer("developer"))
    assert refused.status_code == 409
    session = client.post(f"{API}/uploads", json={**start, "overwrite": True}, headers=bearer("developer"))
    assert session.status_code == 201, session.json
    part = session.json["parts"][0]
    assert client.put(part["url"], data=body).status_code == 200
    done = client.post(f"{API}/uploads/{session.json['id']}/complete", headers=bearer("developer"))
    assert done.status_code == 200, done.json
    assert content(client) == body
    assert [o["md5"] for o in trash(client)] == [md5(b"first")]


def test_a_trashed_version_is_purged_after_retention(client: FlaskClient, app: Flask) -> None:
    from app.model.projects import Project, Visibility
    from app.trash import purge_trash

    put(client, b"old")
    put(client, b"new")
    svc = app.extensions["data_registry"]
    later = datetime.now(UTC) + timedelta(days=8)
    report = purge_trash(
        svc.index,
        svc.storage,
        [Project(101, "ml/vision", Visibility.PRIVATE)],
        retention=7 * 86400,
        now=later,
    )
    assert report.objects == 1 and trash(client) == [] and content(client) == b"new"


def test_listings_show_the_live_version_once(client: FlaskClient, app: Flask) -> None:
    """A folder listing (PROPFIND's) joined every row at a path: a replaced version showed up beside the
    live one."""
    put(client, b"old")
    put(client, b"newer")
    index = app.extensions["data_registry"].index
    listed = [(name, info.md5 if info else None) for name, info in index.children(101, "reports/")]
    assert listed == [("metrics.json", md5(b"newer"))]
    objects = client.get(f"{API}/objects", headers=bearer("reporter")).json["objects"]
    assert [(o["path"], o["md5"]) for o in objects] == [(PATH, md5(b"newer"))]
