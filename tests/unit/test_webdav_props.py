"""WebDAV properties: PROPFIND bodies (allprop, propname, prop; malformed and DTD bodies refused), the
live properties (oc:checksums as rclone reads it), PROPPATCH dead properties and modification times."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import bearer

BASE = "/ml/vision/-/data/props"
D, OC = "{DAV:}", "{http://owncloud.org/ns}"
AUTH = bearer("developer")


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    client = make_app().test_client()
    assert client.put(f"{BASE}/notes.txt", data=b"hello", headers=AUTH).status_code == 201
    return client


def dav(client: FlaskClient, method: str, path: str, body: str | bytes = b"", **headers: str) -> TestResponse:
    return client.open(path, method=method, data=body, headers={**AUTH, **headers})


def propstats(response: TestResponse, href: str) -> dict[str, ElementTree.Element]:
    """The prop elements of one response, by the status of their propstat."""
    assert response.status_code == 207, response.status
    for item in ElementTree.fromstring(response.data).iter(f"{D}response"):
        if item.findtext(f"{D}href") == href:
            return {
                (ps.findtext(f"{D}status") or "").split(" ", 1)[1]: ps.find(f"{D}prop")  # type: ignore[misc]
                for ps in item.iter(f"{D}propstat")
            }
    raise AssertionError(f"no response for {href}")


def propfind_body(*props: str, ns: str = "") -> str:
    return (
        f'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" {ns}><D:prop>{"".join(props)}</D:prop></D:propfind>'
    )


def test_an_empty_body_is_allprop(client: FlaskClient) -> None:
    answer = propstats(dav(client, "PROPFIND", f"{BASE}/notes.txt", Depth="0"), f"{BASE}/notes.txt")
    prop = answer["200 OK"]
    assert prop.findtext(f"{D}getcontentlength") == "5"
    assert prop.findtext(f"{D}getetag") == f'"{hashlib.md5(b"hello").hexdigest()}"'
    assert prop.findtext(f"{D}getcontenttype") == "text/plain"
    assert prop.findtext(f"{D}getlastmodified", "").endswith(" GMT")
    assert prop.find(f"{D}resourcetype") is not None and prop.find(f"{D}resourcetype/{D}collection") is None
    explicit = dav(client, "PROPFIND", f"{BASE}/notes.txt", '<propfind xmlns="DAV:"><allprop/></propfind>')
    assert set(propstats(explicit, f"{BASE}/notes.txt")) == {"200 OK"}


def test_prop_answers_only_what_is_asked_and_404s_the_unknown(client: FlaskClient) -> None:
    """rclone's owncloud vendor asks exactly this; it reads the md5 from oc:checksums."""
    body = propfind_body(
        "<D:displayname/><D:getlastmodified/><D:getcontentlength/><D:resourcetype/>",
        "<oc:checksums/><oc:permissions/><x:color xmlns:x='urn:odd'/>",
        ns='xmlns:oc="http://owncloud.org/ns"',
    )
    answer = propstats(dav(client, "PROPFIND", f"{BASE}/", body, Depth="1"), f"{BASE}/notes.txt")
    found = answer["200 OK"]
    assert [child.tag for child in found] == [
        f"{D}displayname",
        f"{D}getlastmodified",
        f"{D}getcontentlength",
        f"{D}resourcetype",
        f"{OC}checksums",
    ]
    assert found.findtext(f"{OC}checksums/{OC}checksum") == f"MD5:{hashlib.md5(b'hello').hexdigest()}"
    assert found.findtext(f"{D}displayname") == "notes.txt"
    assert [child.tag for child in answer["404 Not Found"]] == [f"{OC}permissions", "{urn:odd}color"]
    collection = propstats(dav(client, "PROPFIND", f"{BASE}/", body, Depth="0"), f"{BASE}/")
    assert collection["200 OK"].find(f"{D}resourcetype/{D}collection") is not None
    assert collection["404 Not Found"].find(f"{OC}checksums") is not None  # no md5 for a collection


def test_propname_lists_names_without_values(client: FlaskClient) -> None:
    body = '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
    found = propstats(dav(client, "PROPFIND", f"{BASE}/notes.txt", body), f"{BASE}/notes.txt")["200 OK"]
    names = {child.tag for child in found}
    assert {f"{D}getetag", f"{D}supportedlock", f"{OC}checksums", f"{D}getcontenttype"} <= names
    assert all(len(child) == 0 and not child.text for child in found)


def test_supportedlock_lists_exclusive_and_shared_write(client: FlaskClient) -> None:
    answer = dav(client, "PROPFIND", f"{BASE}/notes.txt", propfind_body("<D:supportedlock/>"))
    entries = propstats(answer, f"{BASE}/notes.txt")["200 OK"].findall(f"{D}supportedlock/{D}lockentry")
    assert sorted(e.find(f"{D}lockscope")[0].tag for e in entries) == [f"{D}exclusive", f"{D}shared"]  # type: ignore[index]


@pytest.mark.parametrize(
    "body",
    [
        "<propfind xmlns='DAV:'><prop>",  # not well-formed
        "<?xml version='1.0'?><!DOCTYPE lol [<!ENTITY a 'aaaa'>]><propfind xmlns='DAV:'><prop/></propfind>",
        "<!DOCTYPE x SYSTEM 'file:///etc/passwd'><propfind xmlns='DAV:'><allprop/></propfind>",
        "<propfind><allprop/></propfind>",  # not in DAV:
        "<D:propfind xmlns:D='DAV:'><D:nonsense/></D:propfind>",
    ],
)
def test_bad_propfind_bodies_are_400(client: FlaskClient, body: str) -> None:
    answer = dav(client, "PROPFIND", f"{BASE}/notes.txt", body)
    assert answer.status_code == 400, answer.status


def test_a_bad_depth_is_400(client: FlaskClient) -> None:
    assert dav(client, "PROPFIND", f"{BASE}/", Depth="2").status_code == 400


def proppatch(client: FlaskClient, path: str, instructions: str, ns: str = "") -> TestResponse:
    head = '<?xml version="1.0" encoding="utf-8"?>'
    body = f'{head}<D:propertyupdate xmlns:D="DAV:" {ns}>{instructions}</D:propertyupdate>'
    return dav(client, "PROPPATCH", path, body.encode())


ODD = 'xmlns:z="http://example.com/odd%20ns?&amp;x"'


def test_dead_properties_are_kept_listed_and_removed(client: FlaskClient) -> None:
    value = "<z:inner a='1'>x &lt; y <b xmlns='urn:b'>ü€𝄞</b></z:inner> tail"
    set_them = (
        f"<D:set><D:prop><z:color>{value}</z:color><plain xmlns=''>no namespace</plain>"
        f"<z:big>{'v' * 60000}</z:big></D:prop></D:set>"
    )
    answer = proppatch(client, f"{BASE}/notes.txt", set_them, ODD)
    assert list(propstats(answer, f"{BASE}/notes.txt")) == ["200 OK"]
    ask = propfind_body("<z:color/><plain xmlns=''/><z:big/>", ns=ODD.replace("&amp;", "&amp;"))
    found = propstats(dav(client, "PROPFIND", f"{BASE}/notes.txt", ask), f"{BASE}/notes.txt")["200 OK"]
    color = found.find("{http://example.com/odd%20ns?&x}color")
    assert color is not None and not color.text
    inner = color.find("{http://example.com/odd%20ns?&x}inner")
    assert inner is not None and inner.get("a") == "1" and inner.text == "x < y "
    assert inner.findtext("{urn:b}b") == "ü€𝄞" and inner.tail == " tail"
    assert found.findtext("plain") == "no namespace"
    assert found.findtext("{http://example.com/odd%20ns?&x}big") == "v" * 60000
    allprop = propstats(dav(client, "PROPFIND", f"{BASE}/", Depth="1"), f"{BASE}/notes.txt")["200 OK"]
    assert allprop.findtext("plain") == "no namespace"  # dead properties are in allprop

    # set and remove in document order: removed, set again, then removed for good
    again = "<D:remove><D:prop><plain/></D:prop></D:remove><D:set><D:prop><plain>2</plain></D:prop></D:set>"
    again += "<D:remove><D:prop><z:color/></D:prop></D:remove>"
    assert list(propstats(proppatch(client, f"{BASE}/notes.txt", again, ODD), f"{BASE}/notes.txt")) == [
        "200 OK"
    ]
    answer = propstats(dav(client, "PROPFIND", f"{BASE}/notes.txt", ask), f"{BASE}/notes.txt")
    assert answer["200 OK"].findtext("plain") == "2"
    assert answer["404 Not Found"].find("{http://example.com/odd%20ns?&x}color") is not None

    # they go with the object
    assert client.delete(f"{BASE}/notes.txt", headers=bearer("maintainer")).status_code == 204
    assert client.put(f"{BASE}/notes.txt", data=b"new", headers=AUTH).status_code == 201
    answer = propstats(dav(client, "PROPFIND", f"{BASE}/notes.txt", ask), f"{BASE}/notes.txt")
    assert "200 OK" not in answer


def test_protected_and_oversized_properties_fail_all_or_nothing(client: FlaskClient) -> None:
    change = "<D:set><D:prop><D:getetag>x</D:getetag><z:ok>1</z:ok></D:prop></D:set>"
    answer = propstats(proppatch(client, f"{BASE}/notes.txt", change, ODD), f"{BASE}/notes.txt")
    assert answer["403 Forbidden"].find(f"{D}getetag") is not None
    assert answer["424 Failed Dependency"].find("{http://example.com/odd%20ns?&x}ok") is not None
    too_big = f"<D:set><D:prop><z:huge>{'x' * (64 * 1024 + 1)}</z:huge></D:prop></D:set>"
    answer = propstats(proppatch(client, f"{BASE}/notes.txt", too_big, ODD), f"{BASE}/notes.txt")
    assert [status[:3] for status in answer] == ["413"]
    many = "".join(f"<z:p{i}>{'y' * 60000}</z:p{i}>" for i in range(18))  # 1.08 MB in all
    answer = propstats(
        proppatch(client, f"{BASE}/notes.txt", f"<D:set><D:prop>{many}</D:prop></D:set>", ODD),
        f"{BASE}/notes.txt",
    )
    assert list(answer) == ["507 Insufficient Storage"]
    ask = propfind_body("<z:ok/><z:p0/>", ns=ODD)
    assert "200 OK" not in propstats(dav(client, "PROPFIND", f"{BASE}/notes.txt", ask), f"{BASE}/notes.txt")


def test_proppatch_refusals(client: FlaskClient) -> None:
    change = "<D:set><D:prop><z:a>1</z:a></D:prop></D:set>"
    assert proppatch(client, f"{BASE}/missing.txt", change, ODD).status_code == 404
    assert (
        dav(client, "PROPPATCH", f"{BASE}/notes.txt", b"<D:propertyupdate xmlns:D='DAV:'>").status_code == 400
    )
    assert dav(client, "PROPPATCH", f"{BASE}/notes.txt", b"").status_code == 400
    reporter = client.open(f"{BASE}/notes.txt", method="PROPPATCH", data=b"<x/>", headers=bearer("reporter"))
    assert reporter.status_code in (400, 403)
    body = f'<D:propertyupdate xmlns:D="DAV:" {ODD}>{change}</D:propertyupdate>'
    reporter = client.open(f"{BASE}/notes.txt", method="PROPPATCH", data=body, headers=bearer("reporter"))
    assert reporter.status_code == 403


def modified(client: FlaskClient, path: str) -> str:
    answer = dav(client, "PROPFIND", f"{BASE}/", propfind_body("<D:getlastmodified/>"), Depth="1")
    return propstats(answer, path)["200 OK"].findtext(f"{D}getlastmodified") or ""


def test_x_oc_mtime_is_kept_until_the_next_put(client: FlaskClient) -> None:
    """rclone's owncloud/nextcloud vendors send X-OC-Mtime and expect `X-OC-Mtime: accepted`."""
    put = client.put(f"{BASE}/sync.bin", data=b"one", headers={**AUTH, "X-OC-Mtime": "1500000000"})
    assert put.status_code == 201 and put.headers["X-OC-Mtime"] == "accepted"
    assert modified(client, f"{BASE}/sync.bin") == "Fri, 14 Jul 2017 02:40:00 GMT"
    same = client.put(f"{BASE}/sync.bin", data=b"one", headers={**AUTH, "X-OC-Mtime": "1600000000"})
    assert same.headers["X-OC-Mtime"] == "accepted"
    assert modified(client, f"{BASE}/sync.bin") == "Sun, 13 Sep 2020 12:26:40 GMT"
    plain = client.put(f"{BASE}/sync.bin", data=b"one", headers=AUTH)  # a PUT without one: upload time
    assert "X-OC-Mtime" not in plain.headers
    assert not modified(client, f"{BASE}/sync.bin").endswith("2020 12:26:40 GMT")
    bad = client.put(f"{BASE}/other.bin", data=b"x", headers={**AUTH, "X-OC-Mtime": "soon"})
    assert bad.status_code == 201 and "X-OC-Mtime" not in bad.headers


def test_a_replaced_object_shows_its_upload_time(client: FlaskClient) -> None:
    client.put(f"{BASE}/r.bin", data=b"one", headers={**AUTH, "X-OC-Mtime": "1500000000"})
    replaced = client.put(f"{BASE}/r.bin?overwrite=true", data=b"two", headers=AUTH)
    assert replaced.status_code in (200, 201)
    assert not modified(client, f"{BASE}/r.bin").endswith("2017 02:40:00 GMT")


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ("<D:getlastmodified>Fri, 14 Jul 2017 02:40:00 GMT</D:getlastmodified>", None),
        ("<lastmodified xmlns='DAV:'>1500000000</lastmodified>", None),  # rclone's owncloud SetModTime
        (
            "<w:Win32LastModifiedTime xmlns:w='urn:schemas-microsoft-com:'>Fri, 14 Jul 2017 02:40:00 GMT"
            "</w:Win32LastModifiedTime>",
            None,
        ),
    ],
)
def test_proppatch_sets_the_modification_time(client: FlaskClient, prop: str, value: None) -> None:
    checksum = (
        f"<oc:checksums><oc:checksum>MD5:{hashlib.md5(b'hello').hexdigest()}</oc:checksum></oc:checksums>"
    )
    change = f"<D:set><D:prop>{prop}{checksum}</D:prop></D:set>"
    answer = proppatch(client, f"{BASE}/notes.txt", change, 'xmlns:oc="http://owncloud.org/ns"')
    assert list(propstats(answer, f"{BASE}/notes.txt")) == ["200 OK"]
    assert modified(client, f"{BASE}/notes.txt") == "Fri, 14 Jul 2017 02:40:00 GMT"
    bad = proppatch(
        client,
        f"{BASE}/notes.txt",
        "<D:set><D:prop><D:getlastmodified>later</D:getlastmodified></D:prop></D:set>",
    )
    assert list(propstats(bad, f"{BASE}/notes.txt")) == ["400 Bad Request"]
