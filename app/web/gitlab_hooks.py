"""`POST /-/hooks/gitlab`: GitLab's system hooks and group and project webhooks. It only records what a
delivery means (a durable deletion request, a new path, a commit to check) and answers at once, with no
GitLab call; the worker does the work."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, jsonify, request

from app.errors import NotFound
from app.gitlab.events import check_signature, check_token, delivery_id, parse_event
from app.project_events import apply_hook
from app.web.context import services
from app.web.streaming import bounded_body, parse_json

bp = Blueprint("hooks", __name__)
MAX_PAYLOAD = 1024 * 1024  # project events are a few hundred bytes
log = logging.getLogger(__name__)


@bp.post("/-/hooks/gitlab")
def gitlab_hook() -> Response:
    """Secret first (before the body is read), then the optional signature, then the event."""
    svc = services()
    settings = svc.settings
    if not settings.webhook_secret:
        raise NotFound("GitLab hooks are off: set REGISTRY_WEBHOOK_SECRET")
    check_token(request.headers.get("X-Gitlab-Token"), settings.webhook_secret)
    body = bounded_body(request, MAX_PAYLOAD)
    headers = {name.lower(): value for name, value in request.headers.items()}
    if settings.webhook_signing_secret:
        check_signature(headers, body, settings.webhook_signing_secret, time.time())
    elif "webhook-signature" in request.headers:
        log.debug("hook signature ignored: no REGISTRY_WEBHOOK_SIGNING_SECRET")
    event = parse_event(parse_json(body, what="Hook payload"))
    checks = svc.data_checks if svc.status_credential is not None else None
    outcome = apply_hook(svc.lifecycle, svc.auth_cache, event, delivery_id(headers), checks)
    log.info("hook %s (project %s): %s", event.name, event.project_id, outcome)
    return jsonify({"event": event.name, "outcome": outcome})
