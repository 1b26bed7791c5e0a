"""The browser UI's pages: `/`, what this is, sign-in, and the signed-in user's projects with data; the
favicon browsers ask for at `/favicon.ico`."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, render_template

from app.signin import SignIn
from app.web.context import services
from app.web.sessions import current_session

bp = Blueprint("ui", __name__, template_folder="templates")

# Pages are server-rendered from our own assets: nothing from elsewhere, no framing, no referrer leaks.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


@bp.after_app_request
def security_headers(response: Response) -> Response:
    if response.mimetype == "text/html":
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


@bp.get("/")
def landing() -> str:
    """What this is; then, signed in, the user's projects that have data here."""
    svc, session = services(), current_session()
    projects = svc.registry.my_projects(SignIn.credential(session)) if session else []
    return render_template(
        "landing.html",
        session=session,
        projects=projects,
        sign_in_enabled=svc.signin is not None,
        default_quota=svc.settings.default_quota,
    )


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The icon every browser asks for, whatever page it opened (a JSON answer's too)."""
    icon = Path(bp.root_path) / "static" / "favicon.ico"  # beside ui.css (167 bytes)
    return Response(icon.read_bytes(), mimetype="image/x-icon", headers={"Cache-Control": "max-age=86400"})
