"""Before any view: the request's path is UTF-8 and its query string UTF-8 text without NUL (raw or
percent-encoded), or the request is a 400. WSGI hands both over as bytes in latin-1 strings: werkzeug
fails on a raw byte that is no UTF-8 in the query string (a 500), turns percent-encoded ones into U+FFFD
(which names another object), and passes a NUL on to a database that cannot store one."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from flask import Flask, request

from app.errors import BadRequest, InvalidPath


def _utf8_bytes(wsgi_text: str, *, percent_encoded: bool) -> bytes | None:
    """The bytes a WSGI string stands for (percent-decoded), None when they are not UTF-8."""
    try:
        raw = wsgi_text.encode("latin-1")
        raw = unquote_to_bytes(raw) if percent_encoded else raw
        raw.decode("utf-8")
    except UnicodeError:
        return None
    return raw


def check_request_text() -> None:
    """InvalidPath for a path, BadRequest for a query string, that is not UTF-8 text."""
    environ = request.environ
    path = environ.get("PATH_INFO", "")  # the server percent-decoded it
    if not path.isascii() and _utf8_bytes(path, percent_encoded=False) is None:
        raise InvalidPath("Invalid path: not valid UTF-8")
    query = environ.get("QUERY_STRING", "")
    if query:
        decoded = _utf8_bytes(query, percent_encoded=True)
        if decoded is None:
            raise BadRequest("Invalid query string: not valid UTF-8")
        if b"\x00" in decoded:
            raise BadRequest("Invalid query string: contains a NUL character")


def register(app: Flask) -> None:
    app.before_request(check_request_text)
