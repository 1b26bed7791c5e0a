"""Operational endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.errors import RegistryError
from app.metrics import Backlog
from app.web.context import services

bp = Blueprint("ops", __name__)


@bp.get("/-/health")
def health() -> Response:
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/-/metrics")
def metrics() -> Response:
    """Prometheus exposition: every gunicorn worker's counters, and the deletion backlog."""
    svc = services()
    body, content_type = svc.metrics.render(Backlog(svc.lifecycle.backlog()))
    return Response(body, content_type=content_type)


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
        "features_off": svc.settings.features_off(),
    }
    return jsonify(body), 200 if ok else 503
