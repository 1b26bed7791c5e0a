"""Operational endpoints: liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.errors import RegistryError
from app.settings import Settings
from app.web import services

bp = Blueprint("ops", __name__)


@bp.get("/-/health")
def health() -> Response:
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/-/ready")
def ready() -> tuple[Response, int]:
    """Readiness: the index database and the storage answer."""
    svc = services()
    checks: dict[str, str] = {}
    for name, check in (("database", svc.index.check), ("storage", svc.storage.check)):
        try:
            check()
            checks[name] = "ok"
        except RegistryError as e:
            checks[name] = e.message
        except Exception as e:  # readiness reports any failure instead of raising
            checks[name] = type(e).__name__
    ok = all(v == "ok" for v in checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": checks,
        "features_off": features_off(svc.settings),
    }
    return jsonify(body), 200 if ok else 503


def features_off(settings: Settings) -> dict[str, str]:
    """Optional features that are off, and the setting that turns each on."""
    off = {}
    if not settings.gitlab_service_token:
        for feature in ("deploy tokens", "CI tokens on other projects and on project paths"):
            off[feature] = "set REGISTRY_GITLAB_SERVICE_TOKEN"
    if not settings.effective_id_token_audience:
        off["CI ID tokens"] = "set REGISTRY_ID_TOKEN_AUDIENCE or REGISTRY_PUBLIC_URL"
    return off
