"""Who gets a page: the one rule that tells a person's browser (an HTML page: the data page, an object's
page, an error page) from every client that must keep getting what it gets today (DVC's http and webdav
remotes, WebDAV mounts, curl, requests, a script's fetch(), the JSON API)."""

from __future__ import annotations

from flask import Request

# A request carrying one of these is a client with a token, never a page view (DESIGN 3.3).
CREDENTIAL_HEADERS = ("Authorization", "Private-Token", "Job-Token", "Deploy-Token")
_JSON_ONLY = ("/api/",)  # the JSON API answers JSON whoever asks
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def prefers_html(request: Request) -> bool:
    """A browser navigating: `text/html` named in Accept with a higher quality than JSON gets (browsers
    send `text/html,…,*/*;q=0.8`; DVC, curl, requests and fetch() send `*/*` or nothing, which never
    names it), no token header, a GET or HEAD (or a form a page posted), and not the JSON API."""
    if request.method not in ("GET", "HEAD") and not (
        request.method == "POST" and request.mimetype in _FORMS
    ):
        return False  # PUT, PROPFIND, MKCOL… (and DVC's POST uploads): clients, whatever they accept
    if any(name in request.headers for name in CREDENTIAL_HEADERS):
        return False
    if request.path.startswith(_JSON_ONLY):
        return False
    accept = request.accept_mimetypes
    html = max((q for value, q in accept if value.lower() == "text/html"), default=0)
    return html > 0 and html > accept.quality("application/json")
