"""Errors as pages for a person's browser (negotiation.prefers_html): what happened in one line they can
act on, the status, and where to go next: sign in (again), the project's data, home. The status line and
headers are the JSON answer's; only the body differs."""

from __future__ import annotations

from urllib.parse import quote

from flask import g, request

from app.errors import RegistryError
from app.web.sessions import current_session, message, sign_in_expired, signin_service

_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Not supported here",
    409: "Conflict",
    412: "Changed meanwhile",
    413: "Too large",
    429: "Too many requests",
    500: "Internal error",
    503: "Temporarily unavailable",
}
_UNAVAILABLE = {
    "gitlab_unavailable": "GitLab is unreachable",
    "storage_unavailable": "Storage is unreachable",
    "database_unavailable": "The index database is unreachable",
}
# Refusals signing in can lift: an anonymous visitor of a project that is not public sees one of these.
_SIGN_IN_LIFTS = {401, 403}
_HIDDEN_PROJECT = {"project_not_found"}


def error_page(status: int, code: str, text: str, headers: dict[str, str]) -> str:
    """The page of an error answer, for a browser."""
    signed_in = _session_or_none()
    project = _project()
    title = _UNAVAILABLE.get(code) or _TITLES.get(status, "Error")
    offer_sign_in = False
    if signin_service() is not None and (status in _SIGN_IN_LIFTS or code in _HIDDEN_PROJECT):
        if sign_in_expired():
            title, text, offer_sign_in = "Your sign-in has expired", "Sign in again to see this page.", True
        elif not signed_in:
            name = _project_name() or "this project"
            title, offer_sign_in = "Sign in to see this", True
            text = f"Sign in with GitLab to see this page: {name} is not public, or it does not exist."
        elif status == 401:  # GitLab no longer takes the session's token (revoked, say)
            title, text, offer_sign_in = "Sign in again", f"GitLab refused your sign-in: {text}", True
    if status == 404 and request.url_rule is None:
        text = f"There is no page at {request.path}: check the address."
        project = _guessed_project()
    if code in _HIDDEN_PROJECT or (project and project[1] == request.script_root + request.path):
        project = None  # no link to a project that may not exist, or to this very page
    page, _ = message(
        title,
        text,
        status,
        offer_sign_in=offer_sign_in,
        project=project,
        code=code,
        retry_after=headers.get("Retry-After"),
    )
    return page


def _session_or_none() -> bool:
    """Whether a session signed this browser in; the database or GitLab may be what failed, and then
    the page shows signed out rather than failing in turn."""
    try:
        return current_session() is not None
    except RegistryError:
        g.browser_session = None
        return False


def _project_name() -> str | None:
    """The project this URL is under, as the URL names it."""
    args = request.view_args or {}
    if "project_path" in args:
        return str(args["project_path"]).strip("/")
    return f"project {args['project_id']}" if "project_id" in args else None


def _project() -> tuple[str, str] | None:
    """The project this URL is under: a link to its data page."""
    args, name = request.view_args or {}, _project_name()
    if name is None:
        return None
    where = f"-/projects/{args['project_id']}" if "project_id" in args else f"{quote(name)}/-"
    return f"The data of {name}", f"{request.script_root}/{where}/data/"


def _guessed_project() -> tuple[str, str] | None:
    """`/group/project` typed without `/-/data/`: offer that project's data page."""
    path = request.path.strip("/")
    if "/" not in path or "/-/" in f"/{path}/" or "." in path.rpartition("/")[2]:
        return None
    return f"The data of {path}, if it is a project", f"{request.script_root}/{quote(path)}/-/data/"
