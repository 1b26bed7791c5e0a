"""The HTTP session of every client-side command: a credential goes only to the origin (scheme, host,
port) the user named. A redirect to another origin is followed without one, and no cookie is kept.
Retries, when a command wants them, are urllib3's on the session's adapter (app/client/retry.py)."""

from __future__ import annotations

from http.cookiejar import Cookie, CookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import Request

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from app.client.errors import NoAnswer

# Every header that carries a credential somewhere: requests' own redirect rule strips Authorization
# only, and GitLab takes its tokens in headers of its own.
CREDENTIAL_HEADERS = ("Authorization", "Private-Token", "Job-Token", "Deploy-Token", "Cookie")
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def origin(url: str) -> Origin:
    """(scheme, host, port) of a URL, the default port filled in: `https://g` and `https://g:443` are one."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs share scheme, host and port (http and https are two origins, whatever the port)."""
    return origin(url) == origin(other)


def show_origin(url: str) -> str:
    """An origin as people read it, the port always written: `https://g:443`."""
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


def left_origin(response: requests.Response) -> str | None:
    """The other origin a response was redirected to (so it was asked without the credential), else None."""
    asked = response.history[0].request.url if response.history else None
    if asked and response.url and not same_origin(str(asked), response.url):
        return show_origin(response.url)
    return None


def next_page(response: requests.Response) -> str | None:
    """The `Link: rel="next"` URL of a paged answer (resolved against the page's own URL), or None."""
    found = response.links.get("next", {}).get("url")
    return urljoin(response.url, found) if found else None


class _NoCookies(CookiePolicy):
    """The client commands authenticate with tokens only: a cookie is never kept nor sent."""

    netscape, rfc2965, hide_cookie2 = True, False, False

    def set_ok(self, cookie: Cookie, request: Request) -> bool:
        return False

    def return_ok(self, cookie: Cookie, request: Request) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: Request) -> bool:
        return False

    def path_return_ok(self, path: str, request: Request) -> bool:
        return False


class ClientSession(requests.Session):
    """A requests.Session whose redirects drop every credential header (not only Authorization) when the
    origin changes (http to https and another port included), and that read no .netrc on a redirect."""

    def __init__(self) -> None:
        super().__init__()
        self.cookies.set_policy(_NoCookies())

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        # Cookies a redirecting answer set went into the request's own jar: drop them on every hop.
        prepared_request.headers.pop("Cookie", None)
        before, after = response.request.url, prepared_request.url
        if before and after and same_origin(str(before), str(after)):
            return  # once dropped, a credential stays dropped: a hop back to the origin gets none either
        for name in CREDENTIAL_HEADERS:
            prepared_request.headers.pop(name, None)


def client_session(retry: Retry | None = None) -> requests.Session:
    """The session every client-side command (import, doctor, upload, download) talks through; with
    `retry`, its requests are retried by urllib3 as that policy says."""
    session = ClientSession()
    if retry is not None:
        for scheme in ("http://", "https://"):
            session.mount(scheme, HTTPAdapter(max_retries=retry))
    return session


def ask(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    """One request (retried as the session's adapter says); a server that never answered is a NoAnswer."""
    kwargs.setdefault("timeout", 60)
    try:
        return session.request(method, url, **kwargs)
    except (requests.ConnectionError, requests.Timeout) as e:
        raise NoAnswer(f"{urlsplit(url).netloc} does not answer ({e.__class__.__name__})") from None


def error_message(response: requests.Response) -> str:
    """The registry's error message in a response, else its status line."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.reason}"
