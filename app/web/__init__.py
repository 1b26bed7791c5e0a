"""The only Flask package: builds the app around the services and registers the blueprints."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from werkzeug.routing import PathConverter

from app.db.index import ObjectIndex
from app.db.lifecycle import Lifecycle
from app.db.shared_cache import SharedAuthCache
from app.metrics import Metrics
from app.ratelimit import RateLimiter
from app.registry import Registry
from app.settings import Settings
from app.storage.base import StorageBackend

EXTENSION = "data_registry"


@dataclass(frozen=True)
class Services:
    """What the views need, kept in `app.extensions` (never in module globals)."""

    settings: Settings
    registry: Registry
    index: ObjectIndex
    storage: StorageBackend
    limiter: RateLimiter
    lifecycle: Lifecycle
    auth_cache: SharedAuthCache
    metrics: Metrics


class AnyPathConverter(PathConverter):
    """Like `path`, but matches any character (newlines, a leading '/'), so the view can answer 400
    with the path rule that was broken instead of a bare 404."""

    regex = r"[\s\S]+?"
    part_isolating = False


def services() -> Services:
    """The services of the current app."""
    found: Services = current_app.extensions[EXTENSION]
    return found


def build_web_app(svc: Services) -> Flask:
    """A Flask app serving the data plane, the local blob URLs and the ops endpoints."""
    from app.storage.local import LocalBackend
    from app.web import api, blobs, data, errors, hooks, observability, ops
    from app.web.ratelimit import limit_rate

    app = Flask("app")
    app.extensions[EXTENSION] = svc
    app.url_map.merge_slashes = False  # object paths are validated, never silently rewritten
    app.url_map.strict_slashes = False
    app.url_map.converters["anypath"] = AnyPathConverter
    errors.register(app)
    observability.register(app)
    for limited in (api.bp, data.bp):  # per app, keyed by blueprint name (blueprints are shared)
        app.before_request_funcs.setdefault(limited.name, []).append(limit_rate)
    app.register_blueprint(ops.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(hooks.bp)
    if isinstance(svc.storage, LocalBackend):
        app.register_blueprint(blobs.bp)
    app.register_blueprint(data.bp)
    return app
