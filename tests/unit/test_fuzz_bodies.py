"""Every JSON body the app parses, fuzzed (the API's batch existence, restore, upload sessions and quotas,
GitLab's hook payloads and their delivery ids) with the edge cases of tests/hostile.py; and the bugs the
fuzzing found, each pinned by a test of its own."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import TOKENS, bearer
from tests.hostile import (
    CAFE_NFC,
    CAFE_NFD,
    ENCODINGS,
    HOOK_SECRET,
    check_answer,
    edge_text,
    encoded,
    fuzzing,
    json_values,
    leaks,
)

API = "/api/v1/projects/101"
SEEDED = b"an object that must survive the fuzzing"
SEEDED_MD5 = hashlib.md5(SEEDED).hexdigest()
SEEDED_PATH = f"dvc/files/md5/{SEEDED_MD5[:2]}/{SEEDED_MD5[2:]}"
HOOK_EVENTS = [
    "project_destroy",
    "project_rename",
    "project_transfer",
    "group_rename",
    "user_rename",
    "push",
    "merge_request",
]
HOOK_FIELDS = [
    "event_name",
    "project_id",
    "path_with_namespace",
    "old_path_with_namespace",
    "full_path",
    "old_full_path",
    "username",
    "old_username",
    "object_kind",
    "after",
    "before",
    "ref",
    "object_attributes",
]
# method, URL, who asks (None: the hook secret), and the fields its body may have
BODIES: dict[str, tuple[str, str, str | None, list[str]]] = {
    "exists": ("POST", f"{API}/objects/exists", "developer", ["paths", "md5s"]),
    "restore": ("POST", f"{API}/trash/restore", "maintainer", ["paths"]),
    "uploads": ("POST", f"{API}/uploads", "developer", ["path", "size", "md5", "overwrite"]),
    "purge": ("POST", "/api/v1/projects/102/trash/purge", "maintainer", []),  # not 101: its trash stays
    "quota": ("PUT", "/api/v1/admin/projects/102/quota", "admin", ["quota"]),
    "hook": ("POST", "/-/hooks/gitlab", None, HOOK_FIELDS),
}


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    client = make_app(
        webhook_secret=HOOK_SECRET,
        default_quota="1GiB",
        gitlab_status_token=TOKENS["admin"],  # checks on
    ).test_client()
    stored = client.put(f"/ml/vision/-/data/{SEEDED_PATH}", data=SEEDED, headers=bearer("developer"))
    assert stored.status_code == 201
    return client


def send(client: FlaskClient, name: str, body: bytes, content_type: str, **headers: str) -> Any:
    method, url, role, _ = BODIES[name]
    headers |= {"Content-Type": content_type}
    headers |= {"X-Gitlab-Token": HOOK_SECRET} if role is None else bearer(role)
    return client.open(url, method=method, data=body, headers=headers)


def answered(response: Any, what: str) -> None:
    reason = response.status.partition(" ")[2]
    check_answer(response.status_code, reason, response.get_data(), response.headers, what=what)


def field_value() -> st.SearchStrategy[object]:
    return st.one_of(json_values(), st.lists(edge_text(), max_size=3), edge_text())


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, object, str, str | None]:
    """(endpoint, the value sent, how it is encoded, an Idempotency-Key for hooks)."""
    name = draw(st.sampled_from(sorted(BODIES)))
    fields = BODIES[name][3]
    keys = st.sampled_from(fields) | edge_text() if fields else edge_text()
    value: Any = draw(st.dictionaries(keys, field_value(), max_size=5) | json_values())
    if name == "hook" and isinstance(value, dict):
        value["event_name"] = draw(st.sampled_from(HOOK_EVENTS) | edge_text())
        if value.get("project_id") == 101:  # the seeded project stays; any other may be renamed, deleted
            value["project_id"] = 4242
        if draw(st.booleans()):  # a push's or a merge request's own fields, near-valid or hostile
            sha = st.sampled_from(["0" * 40, "a" * 40, "b" * 64, "A" * 40]) | edge_text()
            value["after"] = draw(sha)
            mr_fields = st.sampled_from(["action", "source_project_id", "source_branch", "last_commit"])
            commit = st.fixed_dictionaries({"id": sha}) | field_value()
            value["object_attributes"] = draw(
                st.dictionaries(mr_fields, field_value() | commit | st.sampled_from(["open", "update", 4242]))
            )
    key = draw(st.none() | edge_text()) if name == "hook" else None
    return name, value, draw(st.sampled_from(ENCODINGS)), key


def wire_header(value: str) -> str:
    """A header value as WSGI hands it over: its UTF-8 bytes in a latin-1 string, on one line."""
    return value.encode("utf-8", "surrogatepass").decode("latin-1").replace("\r", "").replace("\n", "")


@fuzzing(examples=150)
@given(case=bodies())
def test_fuzzed_bodies(client: FlaskClient, caplog: pytest.LogCaptureFixture, case: Any) -> None:
    """No 5xx, the error envelope, no secret in an answer or the log, and what a 201 says it stored is
    what was sent; the seeded object stays as it was."""
    name, value, how, key = case
    caplog.clear()
    caplog.set_level(logging.INFO)
    body, content_type = encoded(value, how)
    extra = {} if key is None else {"Idempotency-Key": wire_header(key)}
    response = send(client, name, body, content_type, **extra)
    answered(response, f"{name} {how} {body[:200]!r}")
    if name == "uploads" and response.status_code == 201:
        assert isinstance(value, dict) and response.json["path"] == value["path"], response.json
    refused = how not in ("JSON", "duplicate key") or (isinstance(value, dict) and bool(value))
    # purge reads no body; hooks take GitLab's JSON whatever its Content-Type says
    if how != "JSON" and refused and name != "purge" and (name, how) != ("hook", "text/plain"):
        assert response.status_code == 400, (how, response.status)
    leaks(caplog.text, what=name)
    assert "Traceback" not in caplog.text, caplog.text[-2000:]
    head = client.head(f"/-/projects/101/data/{SEEDED_PATH}", headers=bearer("reporter"))
    assert head.status_code == 200 and head.headers["X-Checksum-MD5"] == SEEDED_MD5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("exists", {"paths": ["\ud800"]}),
        ("exists", {"paths": ["a\ud83dz"]}),
        ("restore", {"paths": ["\udfff"]}),
        ("uploads", {"path": "data/\ud800", "size": 3}),
        ("hook", {"event_name": "project_rename", "project_id": 102, "path_with_namespace": "ml/\ud800"}),
        ("hook", {"event_name": "group_rename", "full_path": "\ud800", "old_full_path": "ml"}),
        ("hook", {"event_name": "user_rename", "username": "\udfff", "old_username": "someone"}),
    ],
)
def test_a_lone_surrogate_in_json_is_a_400(client: FlaskClient, name: str, value: object) -> None:
    """JSON writes one as "\\ud800"; Python reads it into a string that has no UTF-8 (it was a 500: the
    database driver, or the path check, failed to encode it)."""
    response = send(client, name, json.dumps(value).encode(), "application/json")
    assert response.status_code == 400, response.status
    assert "surrogate" in response.status or "not valid UTF-8" in response.status, response.status
    answered(response, name)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"paths": ["a"], "paths": ["b"]}', 'duplicate key "paths"'),
        (b'{"paths": [NaN]}', "NaN is not a JSON number"),
        (b'{"md5s": Infinity}', "Infinity is not a JSON number"),
        ('{"paths": ["a"]}'.encode("utf-16"), "not UTF-8"),
        (b'{"paths": ["\xed\xa0\x80"]}', "not UTF-8"),  # a surrogate written in UTF-8 bytes
        (b"\xef\xbb\xbf{}", "BOM"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    ],
)
def test_only_strict_json_is_read(client: FlaskClient, body: bytes, why: str) -> None:
    """A body other parsers read differently (a duplicate key: first or last?) or not at all is refused,
    saying why (Python's json took all of these but the last)."""
    response = send(client, "exists", body, "application/json")
    assert response.status_code == 400 and why in response.status, response.status
    hook = send(client, "hook", body, "application/json")
    assert hook.status_code == 400 and why in hook.status and "Hook payload" in hook.status, hook.status


def test_a_body_not_sent_as_json_is_a_400(client: FlaskClient) -> None:
    """It was read as no body at all: batch existence answered 200 with nothing, an upload session
    "Missing data for required field" about the fields the client did send."""
    for name, body in [("exists", b'{"paths": ["x"]}'), ("uploads", b'{"path": "x", "size": 1}')]:
        response = send(client, name, body, "text/plain")
        assert response.status_code == 400 and "application/json" in response.status, response.status
        answered(response, name)
    empty = send(client, "exists", b"", "text/plain")  # no body: the defaults, as before
    assert empty.status_code == 200 and empty.json == {"paths": {}, "md5s": {}}


@pytest.mark.parametrize("overwrite", [1, 0, "yes", "false", "on", None])
def test_overwrite_is_true_or_false(client: FlaskClient, overwrite: object) -> None:
    """marshmallow's Boolean took 1, "yes", "on" and "false" for the flag that replaces an object."""
    body = json.dumps({"path": "data/x", "size": 3, "overwrite": overwrite}).encode()
    response = send(client, "uploads", body, "application/json")
    assert response.status_code == 400 and "overwrite" in response.status, response.status


def test_hook_paths_fit_the_index(client: FlaskClient) -> None:
    """A path longer than the index keeps (1,024) was stored on SQLite and a 500 on PostgreSQL; a control
    character in a GitLab path, an empty one, an event name past 64 characters were stored as given."""
    for value in ["x" * 1025, "ml/a\nb", ""]:
        payload = {"event_name": "project_rename", "project_id": 102, "path_with_namespace": value}
        response = send(client, "hook", json.dumps(payload).encode(), "application/json")
        assert response.status_code == 400 and "path_with_namespace" in response.status, response.status
    long_name = {"event_name": "e" * 65, "project_id": 102}
    response = send(client, "hook", json.dumps(long_name).encode(), "application/json")
    assert response.status_code == 400 and "event_name" in response.status, response.status


def test_hook_delivery_ids_are_kept_whole(client: FlaskClient) -> None:
    """Two deliveries whose Idempotency-Keys share their first 128 characters are two deliveries (the
    key was cut to the column's 128: the second was taken for a resend of the first and dropped); a
    NUL, which PostgreSQL cannot store, is fine too."""
    rename = {"event_name": "project_rename", "project_id": 102, "path_with_namespace": "ml/renamed"}
    body = json.dumps(rename).encode()
    outcomes = []
    for key in ["k" * 128 + "-first", "k" * 128 + "-second", "k" * 128 + "-second", "a\x00b"]:
        response = send(client, "hook", body, "application/json", **{"Idempotency-Key": key})
        assert response.status_code == 200, response.status
        outcomes.append(response.json["outcome"])
    assert outcomes == ["path updated", "path updated", "duplicate", "path updated"]


def test_normalization_forms_are_two_objects(client: FlaskClient) -> None:
    """The registry keeps paths byte for byte, as buckets do: "café" in NFC and in NFD are two objects,
    each with its own bytes (neither replaces nor shadows the other), in an upload session too."""
    for form, path in (("NFC", CAFE_NFC), ("NFD", CAFE_NFD)):
        stored = client.put(f"/ml/vision/-/data/nf/{path}", data=form.encode(), headers=bearer("developer"))
        assert stored.status_code == 201 and stored.json["path"] == f"nf/{path}"
    for form, path in (("NFC", CAFE_NFC), ("NFD", CAFE_NFD)):
        head = client.head(f"/ml/vision/-/data/nf/{path}", headers=bearer("reporter"))
        assert head.headers["X-Checksum-MD5"] == hashlib.md5(form.encode()).hexdigest()
    listed = client.get(f"{API}/objects", query_string={"prefix": "nf/"}, headers=bearer("reporter")).json
    assert sorted(o["path"] for o in listed["objects"]) == sorted([f"nf/{CAFE_NFC}", f"nf/{CAFE_NFD}"])
    body = json.dumps({"path": f"nf2/{CAFE_NFD}", "size": 3}).encode()
    session = send(client, "uploads", body, "application/json")
    assert session.status_code == 201 and session.json["path"] == f"nf2/{CAFE_NFD}"
