"""The browser side of sign-in with GitLab: `/-/auth/sign_in`, `/-/auth/callback`, `/-/auth/sign_out`,
the session and sign-in cookies, and the signed-in session of the current request. Its blueprint also
binds every request's client address for the Authorizer (credentials.bind_client)."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import urlsplit

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.errors import InvalidCredential
from app.model.identity import BrowserSession
from app.signin import SignIn
from app.web.context import services
from app.web.credentials import bind_client, unbind_client

bp = Blueprint(
    "sessions", __name__, template_folder="templates", static_folder="static", static_url_path="/-/ui"
)
# App-wide, on a blueprint every app registers: who is asking is known before any view runs.
bp.before_app_request(bind_client)
bp.teardown_app_request(unbind_client)
SESSION_COOKIE, SIGN_IN_COOKIE = "registry_session", "registry_sign_in"
_STATUSES = {s.value for s in HTTPStatus}
FORGED = "The form was not sent by this page (CSRF token missing or wrong): reload the page and try again."


def safe_return_to(value: str | None) -> str:
    """A path of this registry to go back to after signing in; "/" for anything else (other hosts,
    scheme-relative `//host`, backslashes, control characters), so sign-in is never an open redirect."""
    if not value or len(value) > 2048 or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


def _base_url() -> str:
    public = services().settings.public_url
    return public if public else request.host_url.rstrip("/") + request.script_root


def _secure() -> bool:
    return _base_url().startswith("https://") or request.is_secure


def _cookie_path() -> str:
    return (urlsplit(_base_url()).path or "").rstrip("/") + "/"


def signin_service() -> SignIn | None:
    return services().signin


def current_session() -> BrowserSession | None:
    """The signed-in session of this request (its access token refreshed when due), once per request."""
    if "browser_session" not in g:
        signin = signin_service()
        g.browser_session = signin.session(request.cookies.get(SESSION_COOKIE)) if signin else None
    session: BrowserSession | None = g.browser_session
    return session


def form_is_ours(session: BrowserSession | None) -> bool:
    """Whether the posted form carries the session's CSRF token (a token that is not ASCII is not ours,
    and hmac cannot compare it)."""
    token = request.form.get("csrf_token", "")
    return session is not None and token.isascii() and SignIn.csrf_ok(session, token)


def sign_in_expired() -> bool:
    """This browser was signed in and is no longer: its session cookie names no session (expired, signed
    out elsewhere, or GitLab no longer refreshes its token)."""
    return bool(request.cookies.get(SESSION_COOKIE)) and current_session() is None


def sign_in_url() -> str:
    """Where to sign in and come back to this page (the sign-in pages themselves come back home)."""
    here = request.full_path.rstrip("?")
    return url_for("sessions.sign_in", return_to="/" if here.startswith("/-/auth/") else here)


def message(
    title: str,
    text: str,
    status: int,
    *,
    offer_sign_in: bool = False,
    project: tuple[str, str] | None = None,
    code: str | None = None,
    retry_after: str | None = None,
) -> tuple[str, int]:
    """A page that says what happened in one line, the status, and where to go next: sign in (again)
    when `offer_sign_in` and sign-in is on, the project's data (`project`: its name and URL), home."""
    sign_in = sign_in_url() if offer_sign_in and signin_service() is not None else None
    return render_template(
        "message.html",
        title=title,
        text=text,
        status=status,
        reason=HTTPStatus(status).phrase if status in _STATUSES else "",
        code=code,
        retry_after=retry_after,
        sign_in_url=sign_in,
        project=project,
        session=current_session(),
        sign_in_enabled=signin_service() is not None,
    ), status


@bp.get("/-/auth/sign_in")
def sign_in() -> ResponseReturnValue:
    """Off to GitLab to sign in; back to `return_to` (a path of ours) afterwards."""
    signin = signin_service()
    if signin is None:
        return message("Sign-in is off", "The admin has not set REGISTRY_OAUTH_CLIENT_ID.", 404)
    url, pending = signin.begin(
        safe_return_to(request.args.get("return_to")), _base_url() + "/-/auth/callback"
    )
    response = redirect(url)
    response.set_cookie(
        SIGN_IN_COOKIE,
        pending,
        max_age=600,
        httponly=True,
        secure=_secure(),
        samesite="Lax",
        path=_cookie_path() + "-/auth/",
    )
    return response


@bp.get("/-/auth/callback")
def callback() -> ResponseReturnValue:
    """GitLab's redirect back: check the state against this browser, exchange the code, start a session."""
    signin = signin_service()
    if signin is None:
        return message("Sign-in is off", "The admin has not set REGISTRY_OAUTH_CLIENT_ID.", 404)
    if request.args.get("error"):
        denied = f"GitLab did not sign you in ({request.args['error'][:100]})."
        return message("Not signed in", denied, 400, offer_sign_in=True)
    state = request.args.get("state", "")
    try:
        cookie, return_to = signin.finish(
            state if state.isascii() else "",  # ours is ASCII; hmac cannot compare other strings
            request.args.get("code", ""),
            request.cookies.get(SIGN_IN_COOKIE, ""),
            _base_url() + "/-/auth/callback",
        )
    except InvalidCredential as e:
        return message("Not signed in", e.message, 400, offer_sign_in=True)
    response = redirect(request.script_root + return_to)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=services().settings.session_ttl,
        httponly=True,
        secure=_secure(),
        samesite="Lax",
        path=_cookie_path(),
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=_cookie_path() + "-/auth/")
    return response


@bp.post("/-/auth/sign_out")
def sign_out() -> ResponseReturnValue:
    """End the session (a form with the session's CSRF token)."""
    session, signin = current_session(), signin_service()
    if session is None or signin is None:
        return redirect(url_for("ui.landing"))
    if not form_is_ours(session):
        return message("Refused", FORGED, 403)
    signin.sign_out(request.cookies.get(SESSION_COOKIE))
    response = redirect(url_for("ui.landing"))
    response.delete_cookie(SESSION_COOKIE, path=_cookie_path())
    return response
