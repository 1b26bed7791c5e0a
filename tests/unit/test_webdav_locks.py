"""WebDAV LOCK and UNLOCK (RFC 4918 class 2) through the Flask app with the GitLab simulator: each lock
rule, and the litmus `locks` cases reproduced (a second client without the token is refused with 423, the
owner writes with it, conditional PUTs with If lists)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.locks import granted_timeout
from app.model.locks import parse_if
from tests.conftest import bearer

DATA = "/ml/vision/-/data"
D = "{DAV:}"


def lockinfo(scope: str = "exclusive", owner: str = "litmus test suite") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/>'
        f"</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>{owner}</D:owner></D:lockinfo>"
    ).encode()


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app().test_client()


def lock(
    client: FlaskClient, path: str, scope: str = "exclusive", depth: str = "0", **headers: str
) -> tuple[int, str | None]:
    answer = client.open(
        f"{DATA}/{path}",
        method="LOCK",
        data=lockinfo(scope),
        headers={**bearer("developer"), "Depth": depth, "Timeout": "Second-3600", **headers},
    )
    token = answer.headers.get("Lock-Token")
    return answer.status_code, token[1:-1] if token else None


def put(client: FlaskClient, path: str, body: bytes = b"data", **headers: str) -> int:
    return client.put(f"{DATA}/{path}", data=body, headers={**bearer("developer"), **headers}).status_code


def test_options_says_class_2(client: FlaskClient) -> None:
    answer = client.options(f"{DATA}/x")
    assert answer.headers["DAV"] == "1, 2"
    assert "LOCK" in answer.headers["Allow"] and "UNLOCK" in answer.headers["Allow"]


def test_lock_answers_lockdiscovery_and_a_token(client: FlaskClient) -> None:
    put(client, "lockme")
    answer = client.open(
        f"{DATA}/lockme", method="LOCK", data=lockinfo(), headers={**bearer("developer"), "Depth": "0"}
    )
    assert answer.status_code == 200
    token = answer.headers["Lock-Token"]
    assert token.startswith("<opaquelocktoken:") and token.endswith(">")
    active = ElementTree.fromstring(answer.data).find(f"{D}lockdiscovery/{D}activelock")
    assert active is not None
    assert active.findtext(f"{D}locktoken/{D}href") == token[1:-1]
    assert active.find(f"{D}lockscope/{D}exclusive") is not None
    assert active.findtext(f"{D}depth") == "0"
    assert active.findtext(f"{D}owner") == "litmus test suite"
    assert active.findtext(f"{D}timeout") in ("Second-3600", "Second-3599")


def test_writes_without_the_token_are_423_and_with_it_go_through(client: FlaskClient) -> None:
    put(client, "lockme")
    put(client, "notlocked")
    status, token = lock(client, "lockme")
    assert status == 200 and token
    assert put(client, "lockme") == 423
    assert client.delete(f"{DATA}/lockme", headers=bearer("maintainer")).status_code == 423
    move = {**bearer("maintainer"), "Destination": f"{DATA}/whocares"}
    assert client.open(f"{DATA}/lockme", method="MOVE", headers=move).status_code == 423
    copy = {**bearer("developer"), "Destination": f"{DATA}/lockme"}
    assert client.open(f"{DATA}/notlocked", method="COPY", headers=copy).status_code == 423
    patch = (
        b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
        b"<D:set><D:prop><Z:random>foobar</Z:random></D:prop></D:set></D:propertyupdate>"
    )
    headers = bearer("developer")
    assert client.open(f"{DATA}/lockme", method="PROPPATCH", data=patch, headers=headers).status_code == 423
    headers["If"] = f"(<{token}>)"
    assert client.open(f"{DATA}/lockme", method="PROPPATCH", data=patch, headers=headers).status_code == 207
    assert put(client, "lockme", If=f"(<{token}>)") == 200  # the owner writes with the token
    assert put(client, "lockme", If=f"<http://localhost{DATA}/lockme> (<{token}>)") == 200  # tagged, as neon
    assert put(client, "notlocked") == 200  # other resources are not locked


def test_locks_do_not_follow_a_copy(client: FlaskClient) -> None:
    put(client, "lockme")
    lock(client, "lockme")
    copy = {**bearer("developer"), "Destination": f"{DATA}/lockme-copydest"}
    assert client.open(f"{DATA}/lockme", method="COPY", headers=copy).status_code == 201
    assert put(client, "lockme-copydest") == 200


def test_a_second_lock_on_an_exclusive_lock_is_423(client: FlaskClient) -> None:
    put(client, "lockme")
    assert lock(client, "lockme")[0] == 200
    assert lock(client, "lockme")[0] == 423
    assert lock(client, "lockme", scope="shared")[0] == 423


def test_shared_locks_share(client: FlaskClient) -> None:
    put(client, "lockme")
    first, second = lock(client, "lockme", "shared"), lock(client, "lockme", "shared")
    assert first[0] == second[0] == 200
    assert lock(client, "lockme")[0] == 423  # no exclusive lock beside them
    assert put(client, "lockme") == 423
    assert put(client, "lockme", If=f"(<{second[1]}>)") == 200  # one holder's token is enough


def test_conditional_puts_as_litmus_sends_them(client: FlaskClient) -> None:
    put(client, "lockme")
    _, token = lock(client, "lockme")
    etag = client.head(f"{DATA}/lockme", headers=bearer("developer")).headers["ETag"]
    bad = etag[:-3] + chr(ord(etag[-3]) + 1) + etag[-2:]
    assert put(client, "lockme", If=f"(<{token}> [{etag}])") == 200  # cond_put
    etag = client.head(f"{DATA}/lockme", headers=bearer("developer")).headers["ETag"]
    assert put(client, "lockme", If=f"(<DAV:no-lock> [{etag}])") == 412  # fail_cond_put
    assert put(client, "lockme", If=f"(<{token}>) (Not <DAV:no-lock>)") == 200  # cond_put_with_not
    assert put(client, "lockme", If=f"(<{token}x>) (Not <DAV:no-lock>)") == 423  # cond_put_corrupt_token
    etag = client.head(f"{DATA}/lockme", headers=bearer("developer")).headers["ETag"]
    complex_if = f"(<{token}> [{etag}]) (Not <DAV:no-lock> [{etag}])"
    assert put(client, "lockme", If=complex_if) == 200  # complex_cond_put
    bad = etag[:-3] + "x" + etag[-2:]
    assert put(client, "lockme", If=f"(<{token}> [{bad}]) (Not <DAV:no-lock> [{bad}])") == 412
    assert put(client, "lockme", If="(<DAV:no-lock>)") == 412  # fail_cond_put_unlocked's header
    assert put(client, "lockme", If="(<broken") == 400


def test_refresh_restarts_the_timeout(client: FlaskClient) -> None:
    put(client, "lockme")
    _, token = lock(client, "lockme")
    headers = {**bearer("developer"), "If": f"(<{token}>)", "Timeout": "Second-100"}
    answer = client.open(f"{DATA}/lockme", method="LOCK", headers=headers)
    assert answer.status_code == 200
    assert b"Second-100" in answer.data or b"Second-99" in answer.data
    bogus = {**bearer("developer"), "If": "(<opaquelocktoken:nope>)"}
    assert client.open(f"{DATA}/lockme", method="LOCK", headers=bogus).status_code == 412


def test_unlock(client: FlaskClient) -> None:
    put(client, "lockme")
    _, token = lock(client, "lockme")
    unlock = {**bearer("developer"), "Lock-Token": "<opaquelocktoken:foobar>"}
    assert client.open(f"{DATA}/lockme", method="UNLOCK", headers=unlock).status_code == 409
    assert client.open(f"{DATA}/lockme", method="UNLOCK", headers=bearer("developer")).status_code == 400
    other = {**bearer("maintainer"), "Lock-Token": f"<{token}>"}
    assert client.open(f"{DATA}/lockme", method="UNLOCK", headers=other).status_code == 403  # not theirs
    mine = {**bearer("developer"), "Lock-Token": f"<{token}>"}
    assert client.open(f"{DATA}/lockme", method="UNLOCK", headers=mine).status_code == 204
    assert put(client, "lockme") == 200


def test_a_depth_infinity_lock_covers_a_collection(client: FlaskClient) -> None:
    assert client.open(f"{DATA}/lockcoll", method="MKCOL", headers=bearer("developer")).status_code == 201
    status, token = lock(client, "lockcoll/", depth="infinity")
    assert status == 200
    assert put(client, "lockcoll/lockme.txt") == 423  # a new member is a change of the collection
    assert put(client, "lockcoll/lockme.txt", If=f"(<{token}>)") == 201
    assert put(client, "lockcoll/lockme.txt") == 423
    indirect = {**bearer("developer"), "If": f"(<{token}>)"}  # refreshed through a member
    assert client.open(f"{DATA}/lockcoll/lockme.txt", method="LOCK", headers=indirect).status_code == 200
    assert lock(client, "lockcoll/lockme.txt")[0] == 423


def test_delete_of_a_collection_with_a_locked_member_is_423(client: FlaskClient) -> None:
    put(client, "c/member")
    lock(client, "c/member")
    assert client.delete(f"{DATA}/c", headers=bearer("maintainer")).status_code == 423


def test_lock_on_an_unmapped_url_makes_an_empty_resource(client: FlaskClient) -> None:
    status, token = lock(client, "unmapped_url")
    assert status == 201
    head = client.head(f"{DATA}/unmapped_url", headers=bearer("developer"))
    assert head.status_code == 200 and head.headers["Content-Length"] == "0"
    assert put(client, "unmapped_url", b"finder's bytes", If=f"(<{token}>)") == 200


def test_expired_locks_are_ignored_and_swept(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    client = app.test_client()
    put(client, "lockme")
    _, token = lock(client, "lockme")
    locks = app.extensions["data_registry"].locks
    store = locks._store
    past = datetime.now(UTC) - timedelta(seconds=1)
    with store._writer.begin() as conn:
        from sqlalchemy import update

        from app.db.dav_locks import _LOCKS

        conn.execute(update(_LOCKS).values(expires_at=past))
    assert put(client, "lockme") == 200  # expired: no longer in force
    assert lock(client, "lockme")[0] == 200  # taking a new lock swept the old one
    assert store.find([token]) == []


def test_readers_and_anonymous_cannot_lock(client: FlaskClient) -> None:
    put(client, "lockme")
    reporter = {**bearer("reporter"), "Depth": "0"}
    assert client.open(f"{DATA}/lockme", method="LOCK", data=lockinfo(), headers=reporter).status_code == 403
    assert client.open(f"{DATA}/lockme", method="LOCK", data=lockinfo()).status_code == 401


def test_malformed_lock_bodies_are_400(client: FlaskClient) -> None:
    put(client, "lockme")
    for body in (b"<nope", b'<D:lockinfo xmlns:D="DAV:"/>', b'<D:propfind xmlns:D="DAV:"/>'):
        answer = client.open(f"{DATA}/lockme", method="LOCK", data=body, headers=bearer("developer"))
        assert answer.status_code == 400, body


def test_timeouts_are_capped() -> None:
    assert granted_timeout("Second-100") == 100
    assert granted_timeout("Infinite, Second-4100000000") == 3600
    assert granted_timeout("Second-99999999") == 3600
    assert granted_timeout(None) == 3600
    assert granted_timeout("garbage") == 3600


def test_if_header_parsing() -> None:
    parsed = parse_if('<http://h/x> (<urn:a> ["e"]) (Not <DAV:no-lock>)', lambda url: "x")
    assert parsed.tokens == {"urn:a"}
    assert parsed.holds("x", {"urn:a"}, '"e"')
    assert parsed.holds("x", set(), '"e"')  # the second list: Not a token no lock has
    assert not parse_if("(<urn:a>)").holds("y", set(), None)
    assert parse_if("<http://elsewhere/> (<urn:a>)", lambda url: None).holds("y", set(), None)  # not for y
    md5 = hashlib.md5(b"x").hexdigest()
    assert parse_if(f'(["{md5}"])').holds("y", set(), f'"{md5}"')
