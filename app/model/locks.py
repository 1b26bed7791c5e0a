"""WebDAV write locks as values, and the `If` request header (RFC 4918 10.4) parsed and evaluated with no
I/O: which lock tokens a request submits, and whether its conditions hold for a resource."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote, urlsplit

from app.errors import BadRequest

MAX_IF_HEADER = 8192  # bytes; a header line of GitLab's nginx is at most 8 KiB anyway


@dataclass(frozen=True)
class DavLock:
    """One lock: a path ("" for the data root) and, when infinite, everything under it."""

    token: str  # opaquelocktoken:<uuid>
    project_id: int
    path: str
    exclusive: bool
    infinite: bool
    owner: str  # the <D:owner> content the client sent, as XML ("" for none)
    principal: str  # who took it
    timeout: int  # seconds granted
    expires_at: datetime

    def covers(self, path: str) -> bool:
        """Whether the lock applies to the resource at path."""
        if path == self.path:
            return True
        return self.infinite and (self.path == "" or path.startswith(self.path + "/"))

    def conflicts(self, exclusive: bool) -> bool:
        """Whether a new lock of that scope cannot coexist with this one."""
        return exclusive or self.exclusive


@dataclass(frozen=True)
class Condition:
    """One condition of a list: a state token (`<...>`) or an entity tag (`[...]`), maybe negated."""

    negated: bool
    token: str | None = None
    etag: str | None = None

    def holds(self, tokens: set[str], etag: str | None) -> bool:
        """Against the resource's lock tokens and current entity tag (None: no such resource)."""
        if self.token is not None:
            matched = self.token in tokens
        else:
            matched = etag is not None and _strong(self.etag or "") == _strong(etag)
        return matched != self.negated


@dataclass(frozen=True)
class IfHeader:
    """The lists of an If header by the resource each is for (None: the request's own URL)."""

    lists: tuple[tuple[str | None, tuple[Condition, ...]], ...] = ()

    @property
    def tokens(self) -> set[str]:
        """Every state token the header names: the lock tokens the request submits."""
        return {c.token for _, conds in self.lists for c in conds if c.token is not None and not c.negated}

    def applies_to(self, path: str) -> bool:
        """Whether some list is for that resource (a header naming only other resources is ignored)."""
        return any(resource is None or resource == path for resource, _ in self.lists)

    def holds(self, path: str, tokens: set[str], etag: str | None) -> bool:
        """True when no list is for path, or one of the lists for it has all its conditions true."""
        lists = [conds for resource, conds in self.lists if resource is None or resource == path]
        return not lists or any(all(c.holds(tokens, etag) for c in conds) for conds in lists)


_TOKEN = re.compile(r"\s*(?:(<[^>]*>)|(\[[^\]]*\])|(\()|(\))|(Not)\b)", re.IGNORECASE)


def parse_if(value: str | None, resource_path: object = None) -> IfHeader:
    """The header's lists; `resource_path(url) -> path or None` maps a tag to a data path (None: another
    project or host, then its lists are kept under a name no path has). BadRequest when malformed."""
    if not value:
        return IfHeader()
    if len(value) > MAX_IF_HEADER:
        raise BadRequest("Malformed If header: too long")
    items, pos, value = [], 0, value.strip()
    while pos < len(value):
        match = _TOKEN.match(value, pos)
        if match is None:
            raise BadRequest(f"Malformed If header at character {pos + 1}")
        items.append(match)
        pos = match.end()
    lists: list[tuple[str | None, tuple[Condition, ...]]] = []
    resource: str | None = None
    tagged: bool | None = None
    i = 0
    while i < len(items):
        tag, _, opening, _, _ = items[i].groups()
        if tag is not None:
            if tagged is False:
                raise BadRequest("Malformed If header: tagged and untagged lists mixed")
            tagged, resource = True, _resolve(tag[1:-1], resource_path)
            i += 1
            continue
        if opening is None:
            raise BadRequest("Malformed If header: a list must start with '('")
        if tagged is None:
            tagged = False
        conditions, i = _conditions(items, i + 1)
        lists.append((resource, tuple(conditions)))
    return IfHeader(tuple(lists))


def _conditions(items: list[re.Match[str]], i: int) -> tuple[list[Condition], int]:
    conditions: list[Condition] = []
    negated = False
    while i < len(items):
        token, etag, opening, closing, negation = items[i].groups()
        i += 1
        if closing is not None:
            if not conditions:
                raise BadRequest("Malformed If header: an empty list")
            return conditions, i
        if negation is not None and not negated:
            negated = True
        elif token is not None:
            conditions.append(Condition(negated, token=token[1:-1].strip()))
            negated = False
        elif etag is not None:
            conditions.append(Condition(negated, etag=etag[1:-1].strip()))
            negated = False
        else:
            raise BadRequest("Malformed If header: unexpected " + (opening or negation or "token"))
    raise BadRequest("Malformed If header: a list is not closed")


def _resolve(url: str, resource_path: object) -> str:
    if callable(resource_path):
        found = resource_path(url)
        if isinstance(found, str):
            return found
    return "\x00" + url  # no data path holds a control character


def url_path(url: str) -> str:
    """The percent-decoded path of an absolute URL or absolute path."""
    return unquote(urlsplit(url).path)


def _strong(etag: str) -> str:
    return etag.strip().removeprefix("W/")
