"""WebDAV multistatus documents out: PROPFIND answers streamed from templates (the empty-body listing DVC
sends thousands of times takes the fast path) and PROPPATCH results."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from http import HTTPStatus
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from app.dav import Entry, Found
from app.model.paths import content_type
from app.web.conditional import http_date
from app.web.dav_xml import DAV, Propfind, PropName

OC = (
    "http://owncloud.org/ns"  # ownCloud's namespace: rclone's owncloud/nextcloud vendors read checksums there
)
_NEEDS_NO_QUOTING = re.compile(r"[A-Za-z0-9_.~/-]*").fullmatch  # what quote() leaves as it is
_PHRASES = {200: "OK", 404: "Not Found"}  # the propstats of every listing entry
_FLUSH_EVERY = 200  # responses per chunk of a streamed multistatus
HEAD = f'<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:" xmlns:oc="{OC}">'
TAIL = "</D:multistatus>"
_OK = "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
_ALL_COLLECTION = (
    "<D:response><D:href>{href}</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype>"
    "<D:getcontentlength>0</D:getcontentlength>{modified}{dead}</D:prop>" + _OK
)
_PLAIN_COLLECTION_HEAD, _PLAIN_COLLECTION_TAIL = _ALL_COLLECTION.format(
    href="\0", modified="", dead=""
).split("\0")
SUPPORTED_LOCK = (
    "<D:supportedlock>"
    "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
    "<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
    "</D:supportedlock>"
)


@lru_cache(maxsize=4096)
def _type_of(suffix: str) -> str:
    return content_type(f"x{suffix}")


def _content_type(path: str) -> str:
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return _type_of(name[dot:].lower()) if dot > 0 else "application/octet-stream"


def _http_date(entry: Entry) -> str | None:
    return None if entry.modified is None else http_date(entry.modified)


def _element(name: PropName, value: str | None) -> str:
    """<prefix:name xmlns:prefix="namespace">value</…>, or an empty element when value is None."""
    namespace, local = name
    if namespace == DAV:
        tag, declare = f"D:{local}", ""
    elif namespace == OC:
        tag, declare = f"oc:{local}", ""
    elif namespace:
        tag, declare = f"x:{local}", f" xmlns:x={quoteattr(namespace)}"
    else:
        tag, declare = local, ""  # no namespace: the document declares no default one
    return f"<{tag}{declare}/>" if value is None else f"<{tag}{declare}>{value}</{tag}>"


def _checksums(entry: Entry) -> str | None:
    if entry.info is None:
        return None
    return f"<oc:checksum>MD5:{entry.info.md5}</oc:checksum>"


# The live properties: each gives the value (XML text), or None where the resource has none.
_LIVE: dict[PropName, Callable[[Entry], str | None]] = {
    (DAV, "resourcetype"): lambda e: "<D:collection/>" if e.info is None else "",
    (DAV, "getcontentlength"): lambda e: "0" if e.info is None else str(e.info.size),
    (DAV, "getetag"): lambda e: None if e.info is None else f"&quot;{e.info.md5}&quot;",
    (DAV, "getlastmodified"): _http_date,
    (DAV, "getcontenttype"): lambda e: None if e.info is None else _content_type(e.path),
    (DAV, "creationdate"): lambda e: None if e.info is None else e.info.created_at.isoformat(),
    (DAV, "displayname"): lambda e: escape(e.path.rpartition("/")[2]),
    (DAV, "supportedlock"): lambda e: SUPPORTED_LOCK[len("<D:supportedlock>") : -len("</D:supportedlock>")],
    (DAV, "lockdiscovery"): lambda e: "",
    (OC, "checksums"): _checksums,
}
PROTECTED = frozenset(_LIVE) - {(DAV, "getlastmodified")}  # computed: PROPPATCH answers 403


def href(path: str, collection: bool) -> str:
    """A percent-encoded absolute href; collections end with a slash."""
    path += "/" if collection else ""
    return path if _NEEDS_NO_QUOTING(path) else quote(path, safe="/")


def multistatus(base: str, found: Found, ask: Propfind) -> Iterator[bytes]:
    """The PROPFIND answer, a chunk per _FLUSH_EVERY responses. `base` is the requested path as the
    client addressed it (mount prefix included, no trailing slash); members' hrefs extend it."""
    render = _allprop if ask.kind == "allprop" else _renderer(ask)
    chunk = [HEAD, render(base, found.entry)]
    skip = len(found.entry.path) + 1 if found.entry.path else 0
    for count, member in enumerate(found.members, start=1):
        chunk.append(render(f"{base}/{member.path[skip:]}", member))
        if count % _FLUSH_EVERY == 0:
            yield "".join(chunk).encode()
            chunk = []
    chunk.append(TAIL)
    yield "".join(chunk).encode()


def _dead(entry: Entry) -> str:
    return "".join(_element((ns, name), value) for ns, name, value in entry.properties or ())


def _allprop(base: str, entry: Entry) -> str:
    """The empty-body answer: resourcetype, getcontentlength, getetag, getlastmodified, getcontenttype
    and the dead properties (the other live ones are listed when named)."""
    info = entry.info
    if info is None:
        if entry.modified is None and not entry.properties:  # DVC's listings: 256 of these at a time
            return _PLAIN_COLLECTION_HEAD + href(base, collection=True) + _PLAIN_COLLECTION_TAIL
        modified = _http_date(entry)
        return _ALL_COLLECTION.format(
            href=href(base, collection=True),
            modified="" if modified is None else f"<D:getlastmodified>{modified}</D:getlastmodified>",
            dead=_dead(entry),
        )
    dead = _dead(entry) if entry.properties else ""
    return (  # an f-string: str.format was a fifth of a 100,000-entry listing
        f"<D:response><D:href>{href(base, collection=False)}</D:href><D:propstat><D:prop><D:resourcetype/>"
        f"<D:getcontentlength>{info.size}</D:getcontentlength><D:getetag>&quot;{info.md5}&quot;</D:getetag>"
        f"<D:getlastmodified>{_http_date(entry)}</D:getlastmodified>"
        f"<D:getcontenttype>{_content_type(entry.path)}</D:getcontenttype>{dead}</D:prop>{_OK}"
    )


def _renderer(ask: Propfind) -> Callable[[str, Entry], str]:
    """The response of each entry for a `prop` body, its elements' tags made once (rclone names seven
    properties for each of a listing's entries); `propname` goes through _asked."""
    if ask.kind != "prop":
        return lambda base, entry: _asked(base, entry, ask)
    plan: list[tuple[PropName, Callable[[Entry], str | None] | None, str, str, str]] = []
    for name in ask.names:
        opening, closing = _element(name, "\0").split("\0")
        plan.append((name, _LIVE.get(name), opening, closing, _element(name, None)))

    def render(base: str, entry: Entry) -> str:
        dead = {(ns, name): value for ns, name, value in entry.properties} if entry.properties else {}
        found: list[str] = []
        missing: list[str] = []
        for name, live, opening, closing, empty in plan:
            value = live(entry) if live is not None else dead.get(name)
            if value is None:
                missing.append(empty)
            else:
                found.append(opening + value + closing)
        return response(href(base, collection=entry.info is None), [(200, found), (404, missing)])

    return render


def _asked(base: str, entry: Entry, ask: Propfind) -> str:
    """A response for `prop` (values, a 404 propstat for those the resource lacks) or `propname`."""
    dead = {(ns, name): value for ns, name, value in entry.properties or ()}
    found: list[str] = []
    missing: list[str] = []
    if ask.kind == "propname":
        names = [n for n, live in _LIVE.items() if live(entry) is not None] + list(dead)
        found = [_element(name, None) for name in names]
    for name in ask.names:
        live = _LIVE.get(name)
        value = live(entry) if live is not None else dead.get(name)
        if value is None:
            missing.append(_element(name, None))
        else:
            found.append(_element(name, value))
    return response(href(base, collection=entry.info is None), [(200, found), (404, missing)])


def response(target: str, propstats: list[tuple[int, list[str]]], description: str = "") -> str:
    """One <D:response> with a propstat per status that has properties."""
    parts = [f"<D:response><D:href>{target}</D:href>"]
    for status, props in propstats:
        if props:
            phrase = _PHRASES.get(status) or HTTPStatus(status).phrase
            parts.append(f"<D:propstat><D:prop>{''.join(props)}</D:prop>")
            parts.append(f"<D:status>HTTP/1.1 {status} {phrase}</D:status></D:propstat>")
    if description:
        parts.append(f"<D:responsedescription>{escape(description)}</D:responsedescription>")
    parts.append("</D:response>")
    return "".join(parts)
