"""Conditional requests over an object's versions (RFC 9110 13.1): entity-tag lists as If-Match and
If-None-Match carry them, compared with the md5 that is every object's ETag, and the condition a write
must meet, checked before the body is read and again under the project's lock."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import BadRequest, PreconditionFailed
from app.model.objects import ObjectInfo

_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')
_BARE = re.compile(r"\s*([0-9a-fA-F]{32})\s*(?:,|$)")  # an md5 sent without its quotes (lenient)


@dataclass(frozen=True)
class EntityTags:
    """An If-Match / If-None-Match field value: `*`, or a list of (weak, opaque-tag)."""

    any: bool = False
    tags: tuple[tuple[bool, str], ...] = ()

    @classmethod
    def parse(cls, field: str, value: str) -> EntityTags:
        """The list a field carries; 400 naming the field when it is not `*` or entity tags."""
        if value.strip() == "*":
            return cls(any=True)
        tags, at = [], 0
        while at < len(value):
            match = _TAG.match(value, at) or _BARE.match(value, at)
            if match is None or match.end() == at:
                raise BadRequest(f"Invalid {field}: expected * or a list of quoted entity tags")
            tags.append(
                (bool(match.group(1)), match.group(2)) if match.re is _TAG else (False, match.group(1))
            )
            at = match.end()
        if not tags:
            raise BadRequest(f"Invalid {field}: expected * or a list of quoted entity tags")
        return cls(tags=tuple(tags))

    def matches(self, md5: str | None, *, weak: bool) -> bool:
        """Whether the version with that md5 (None: no object) is one of these: `*` matches any object;
        strong comparison (If-Match, If-Range) never matches a weak tag, weak comparison ignores W/."""
        if md5 is None:
            return False
        if self.any:
            return True
        return any(tag == md5 and (weak or not is_weak) for is_weak, tag in self.tags)


@dataclass(frozen=True)
class WriteCondition:
    """What the version at a path must be for a write to go ahead: If-Match (that version, or any with
    `*`) and If-None-Match (none of those; `*`: no object at all, create only)."""

    if_match: EntityTags | None = None
    if_none_match: EntityTags | None = None

    @property
    def applies(self) -> bool:
        return self.if_match is not None or self.if_none_match is not None

    def check(self, path: str, current: ObjectInfo | None) -> None:
        """PreconditionFailed (412) when the version at path (None: none) does not meet the condition."""
        md5 = None if current is None else current.md5
        if self.if_match is not None and not self.if_match.matches(md5, weak=False):
            what = "there is no object" if current is None else f"the object is version {current.etag}"
            raise PreconditionFailed(f"Precondition failed (If-Match): at {path} {what}")
        if self.if_none_match is not None and self.if_none_match.matches(md5, weak=True):
            raise PreconditionFailed(
                f"Precondition failed (If-None-Match): an object exists at {path}"
                + ("" if self.if_none_match.any else f" (version {current.etag if current else ''})")
            )


UNCONDITIONAL = WriteCondition()
