"""WebDAV request bodies in: PROPFIND (`allprop`, `propname`, `prop`) and PROPPATCH (`set`/`remove` in
document order), parsed with no DTD and no entity ever expanded (a body that declares one is 400)."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree import ElementTree
from xml.parsers import expat
from xml.sax.saxutils import escape

from app.errors import BadRequest

DAV = "DAV:"
PropName = tuple[str, str]  # (namespace URI, local name); "" for no namespace
NAME_LIMIT, NAMESPACE_LIMIT = 255, 512  # what the dead-property table holds


class _Declared(Exception):
    """A DTD or an entity declaration: refused before anything is built from the body."""


def _refuse(*_: object) -> None:
    raise _Declared


def parse_xml(body: bytes, what: str) -> ElementTree.Element:
    """The body's root element; 400 when it is not well-formed XML or carries a DOCTYPE (no entity
    expansion, no external entities: the classic XML attacks need a DTD)."""
    check = expat.ParserCreate()
    check.StartDoctypeDeclHandler = _refuse
    check.EntityDeclHandler = _refuse
    try:
        check.Parse(body, True)
        return ElementTree.fromstring(body)  # noqa: S314 (the DTD check above: no entity can be declared)
    except _Declared:
        raise BadRequest(f"{what} must not contain a DOCTYPE or entity declarations") from None
    except (expat.ExpatError, ElementTree.ParseError) as e:
        raise BadRequest(f"{what} is not well-formed XML: {e}") from None


def split(tag: str) -> PropName:
    """ElementTree's `{namespace}name` as (namespace, name)."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def inner_xml(element: ElementTree.Element) -> str:
    """An element's content as XML text: its text and children, each child declaring the namespaces it
    uses, so the value means the same wherever it is written back."""
    parts = [escape(element.text or "")]
    parts += [ElementTree.tostring(child, encoding="unicode") for child in element]
    return "".join(parts)


@dataclass(frozen=True)
class Propfind:
    """What a PROPFIND asks for: every property (`allprop`, also an empty body), their names only
    (`propname`), or the named ones (`prop`)."""

    kind: str  # allprop | propname | prop
    names: list[PropName] = field(default_factory=list)


ALLPROP = Propfind("allprop")


def parse_propfind(body: bytes) -> Propfind:
    """The PROPFIND body (RFC 4918 14.20); an empty body is allprop."""
    if not body.strip():
        return ALLPROP
    root = parse_xml(body, "The PROPFIND body")
    if root.tag != f"{{{DAV}}}propfind":
        raise BadRequest("The PROPFIND body must be a DAV:propfind element")
    for child in root:
        kind = split(child.tag)
        if kind == (DAV, "allprop"):
            return ALLPROP  # an <include> names live properties allprop already lists here
        if kind == (DAV, "propname"):
            return Propfind("propname")
        if kind == (DAV, "prop"):
            return Propfind("prop", [split(prop.tag) for prop in child])
    raise BadRequest("The PROPFIND body must hold allprop, propname or prop")


@dataclass(frozen=True)
class Change:
    """One instruction of a PROPPATCH: set the property to `value` (XML text), or remove it (None)."""

    name: PropName
    value: str | None


def parse_proppatch(body: bytes) -> list[Change]:
    """The PROPPATCH body (RFC 4918 14.19): its set and remove instructions in document order."""
    if not body.strip():
        raise BadRequest("PROPPATCH needs a DAV:propertyupdate body")
    root = parse_xml(body, "The PROPPATCH body")
    if root.tag != f"{{{DAV}}}propertyupdate":
        raise BadRequest("The PROPPATCH body must be a DAV:propertyupdate element")
    changes = []
    for instruction in root:
        action = split(instruction.tag)
        if action not in ((DAV, "set"), (DAV, "remove")):
            continue  # RFC 4918 17: unknown elements are ignored
        for prop in instruction.findall(f"{{{DAV}}}prop"):
            for element in prop:
                value = inner_xml(element) if action == (DAV, "set") else None
                changes.append(Change(split(element.tag), value))
    if not changes:
        raise BadRequest("The PROPPATCH body names no property to set or remove")
    return changes
