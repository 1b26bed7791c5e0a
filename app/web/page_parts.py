"""What every project page needs: the visitor's credential (from the browser session), the project's
data-plane URL as clients outside reach it, and the folder crumbs."""

from __future__ import annotations

from flask import request

from app.model.identity import Credential
from app.signin import SignIn
from app.web.context import services
from app.web.sessions import current_session


def visitor_credential() -> Credential | None:
    """The signed-in visitor's GitLab token, None when anonymous."""
    session = current_session()
    return SignIn.credential(session) if session else None


def data_url(project: str) -> str:
    """The project's data-plane URL as clients outside reach it."""
    public = services().settings.public_url or request.host_url.rstrip("/") + request.script_root
    return f"{public}/{project}/-/data"


def crumbs(prefix: str) -> list[tuple[str, str]]:
    """(name, prefix) of each folder on the way to this one."""
    parts = prefix.split("/") if prefix else []
    return [(name, "/".join(parts[: i + 1]) + "/") for i, name in enumerate(parts)]
