"""HTTP semantics on the data plane (RFC 9110), one test per rule: validators on every answer, 304 and 412
from conditional GET/HEAD (before any redirect), If-Range never splices, a multi-range request gets
multipart/byteranges, a partial PUT is refused, Content-Type by name, `OPTIONS *`; in proxy mode, in
redirect mode and on the local backend's signed URLs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from email.utils import format_datetime, parsedate_to_datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import bearer

DATA = "/ml/vision/-/data"
BODY = bytes(range(256)) * 40  # 10,240 bytes
MD5 = hashlib.md5(BODY).hexdigest()
PATH = f"{DATA}/tables/train.csv"


@pytest.fixture(params=["redirect", "proxy"])
def client(request: pytest.FixtureRequest, make_app: Callable[..., Flask]) -> FlaskClient:
    client = make_app(download_mode=request.param).test_client()
    assert client.put(PATH, data=BODY, headers=bearer("developer")).status_code == 201
    return client


def get(client: FlaskClient, **headers: str) -> object:
    """A GET of the object as a client sees it, through the redirect (with the same headers) if any."""
    return client.get(PATH, headers={**bearer("reporter"), **headers}, follow_redirects=True)


def last_modified(client: FlaskClient) -> str:
    head = client.head(PATH, headers=bearer("reporter"))
    value: str = head.headers["Last-Modified"]
    return value


def test_validators_and_content_type_on_every_answer(client: FlaskClient) -> None:
    head = client.head(PATH, headers=bearer("reporter"))
    assert head.headers["ETag"] == f'"{MD5}"' and head.headers["Content-Type"].startswith("text/csv")
    assert parsedate_to_datetime(head.headers["Last-Modified"]).tzinfo is not None
    for answer in (get(client), get(client, Range="bytes=0-9")):
        assert answer.status_code in (200, 206)  # type: ignore[attr-defined]
        assert answer.headers["ETag"] and answer.headers["Last-Modified"]  # type: ignore[attr-defined]
        assert answer.headers["Content-Type"].startswith("text/csv")  # type: ignore[attr-defined]


def test_if_none_match_answers_304(client: FlaskClient) -> None:
    for tag in (f'"{MD5}"', f'W/"{MD5}"', f'"other", "{MD5}"', "*"):  # weak comparison
        answer = client.get(PATH, headers={**bearer("reporter"), "If-None-Match": tag})
        assert answer.status_code == 304 and "Location" not in answer.headers  # no redirect first
        assert answer.headers["ETag"] == f'"{MD5}"' and answer.data == b""
        assert client.head(PATH, headers={**bearer("reporter"), "If-None-Match": tag}).status_code == 304
    assert client.get(PATH, headers={**bearer("reporter"), "If-None-Match": '"other"'}).status_code in (
        200,
        302,
    )


def test_if_modified_since_answers_304_unless_if_none_match_is_there(client: FlaskClient) -> None:
    since = last_modified(client)
    answer = client.get(PATH, headers={**bearer("reporter"), "If-Modified-Since": since})
    assert answer.status_code == 304
    earlier = format_datetime(parsedate_to_datetime(since).replace(year=2000), usegmt=True)
    assert client.get(PATH, headers={**bearer("reporter"), "If-Modified-Since": earlier}).status_code in (
        200,
        302,
    )
    ignored = client.get(
        PATH, headers={**bearer("reporter"), "If-Modified-Since": since, "If-None-Match": '"other"'}
    )
    assert ignored.status_code in (200, 302)  # RFC 9110 13.1.3: If-None-Match decides


def test_if_match_on_get_answers_412(client: FlaskClient) -> None:
    answer = client.get(PATH, headers={**bearer("reporter"), "If-Match": '"other"'})
    assert answer.status_code == 412
    assert client.get(PATH, headers={**bearer("reporter"), "If-Match": f'"{MD5}"'}).status_code in (200, 302)


@pytest.mark.parametrize("validator", ["etag", "date"])
def test_a_stale_if_range_gets_the_whole_body_never_a_splice(client: FlaskClient, validator: str) -> None:
    current = f'"{MD5}"' if validator == "etag" else last_modified(client)
    fresh = get(client, Range="bytes=100-199", **{"If-Range": current})
    if fresh.status_code == 200:  # type: ignore[attr-defined]
        # redirect mode: the signed URL answers by its own validators (as a bucket's do), and a tag it
        # did not issue gets the whole body there: never a splice
        assert fresh.data == BODY and "blobs" in fresh.request.path  # type: ignore[attr-defined]
    else:
        assert fresh.status_code == 206 and fresh.data == BODY[100:200]  # type: ignore[attr-defined]
    stale = '"an older version"' if validator == "etag" else "Sat, 01 Jan 2000 00:00:00 GMT"
    whole = get(client, Range="bytes=100-199", **{"If-Range": stale})
    assert whole.status_code == 200 and whole.data == BODY  # type: ignore[attr-defined]
    weak = get(client, Range="bytes=100-199", **{"If-Range": f'W/"{MD5}"'})  # never strong enough
    assert weak.status_code == 200 and weak.data == BODY  # type: ignore[attr-defined]


def test_a_stale_if_range_is_answered_here_not_redirected(make_app: Callable[..., Flask]) -> None:
    client = make_app(download_mode="redirect").test_client()
    client.put(PATH, data=BODY, headers=bearer("developer"))
    ranged = {**bearer("reporter"), "Range": "bytes=0-9"}
    assert client.get(PATH, headers={**ranged, "If-Range": f'"{MD5}"'}).status_code == 302
    stale = client.get(PATH, headers={**ranged, "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.data == BODY


def test_several_ranges_get_multipart_byteranges(client: FlaskClient) -> None:
    answer = get(client, Range="bytes=0-1,5-9,-3")
    assert answer.status_code == 206  # type: ignore[attr-defined]  # was 416
    kind = answer.headers["Content-Type"]  # type: ignore[attr-defined]
    boundary = re.fullmatch(r"multipart/byteranges; boundary=(\w+)", kind)
    assert boundary is not None
    data: bytes = answer.data  # type: ignore[attr-defined]
    assert int(answer.headers["Content-Length"]) == len(data)  # type: ignore[attr-defined]
    parts = data.split(f"--{boundary[1]}".encode())
    assert parts[-1] == b"--\r\n" and len(parts) == 5
    ranges = [(0, 2), (5, 10), (len(BODY) - 3, len(BODY))]
    for part, (start, stop) in zip(parts[1:4], ranges, strict=True):
        head, _, body = part.partition(b"\r\n\r\n")
        assert f"Content-Range: bytes {start}-{stop - 1}/{len(BODY)}".encode() in head
        assert b"Content-Type: text/csv" in head
        assert body == BODY[start:stop] + b"\r\n"
    overlapping = get(client, Range="bytes=0-99,50-149")  # RFC 9110 14.2: the whole body instead
    assert overlapping.status_code == 200 and overlapping.data == BODY  # type: ignore[attr-defined]
    unsatisfiable = get(client, Range="bytes=20000-20001")
    assert unsatisfiable.status_code == 416  # type: ignore[attr-defined]


def test_a_put_with_content_range_is_refused(client: FlaskClient) -> None:
    """RFC 9110 14.5: a partial PUT must not be stored as the whole object (it was)."""
    path = f"{DATA}/partial.bin"
    headers = {**bearer("developer"), "Content-Range": "bytes 0-4/10"}
    refused = client.put(path, data=b"12345", headers=headers)
    assert refused.status_code == 400 and "Content-Range" in refused.status
    assert client.head(path, headers=bearer("reporter")).status_code == 404


def test_the_signed_url_answers_carry_validators_and_honour_conditions(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(download_mode="redirect").test_client()
    client.put(PATH, data=BODY, headers=bearer("developer"))
    url = client.get(PATH, headers=bearer("reporter")).headers["Location"]
    whole = client.get(url)
    tag, modified = whole.headers["ETag"], whole.headers["Last-Modified"]
    assert (
        whole.status_code == 200 and tag and modified and whole.headers["Content-Type"].startswith("text/csv")
    )
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    part = client.get(url, headers={"Range": "bytes=0-9", "If-Range": tag})
    assert part.status_code == 206 and part.data == BODY[:10] and part.headers["ETag"] == tag
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.data == BODY


def test_options_star_names_what_the_server_supports(make_app: Callable[..., Flask]) -> None:
    """`OPTIONS *` matches no route (its target is no path): it was 404."""
    answer = make_app().test_client().open("/", method="OPTIONS", environ_overrides={"PATH_INFO": "*"})
    assert answer.status_code == 200 and "PUT" in answer.headers["Allow"] and answer.headers["DAV"]


def test_http_dates_are_imf_fixdates_in_gmt() -> None:
    """http_date formats by hand (it is in every entry of a listing): the same text email.utils makes,
    for every weekday and month, a zone other than UTC, and a naive time taken as UTC."""
    from datetime import UTC, datetime, timedelta, timezone

    from app.web.conditional import http_date

    moment = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    for days in range(0, 400, 7):
        for hours in (0, 5, 13):
            when = moment + timedelta(days=days, hours=hours)
            assert http_date(when) == format_datetime(when.replace(microsecond=0), usegmt=True)
            east = when.astimezone(timezone(timedelta(hours=5, minutes=30)))
            assert http_date(east) == http_date(when)
    assert http_date(moment.replace(tzinfo=None)) == "Thu, 29 Feb 2024 23:59:59 GMT"
