"""The only Flask package: builds the app around the services and registers the blueprints."""

from __future__ import annotations

from flask import Flask

from app.components import Components


def build_web_app(svc: Components) -> Flask:
    """A Flask app serving the data plane, the JSON API, hooks, the local blob URLs and the ops endpoints."""
    from app.storage.local import LocalBackend
    from app.web import (
        api,
        api_docs,
        blobs,
        ci_templates,
        data,
        errors,
        formatting,
        gitlab_hooks,
        observability,
        ops,
        project_pages,
        request_text,
        s3_door,
        sessions,
        ui,
    )
    from app.web.context import EXTENSION, AnyPathConverter
    from app.web.limits import limit_rate
    from app.web.project_ids import EncodedProjectPaths, IdConverter, ProjectConverter

    app = Flask("app")
    app.extensions[EXTENSION] = svc
    app.url_map.merge_slashes = False  # object paths are validated, never silently rewritten
    app.url_map.strict_slashes = False
    app.url_map.converters["anypath"] = AnyPathConverter
    app.url_map.converters["project"] = ProjectConverter
    app.url_map.converters["id"] = IdConverter
    app.wsgi_app = EncodedProjectPaths(app.wsgi_app)  # type: ignore[method-assign]
    errors.register(app)
    formatting.register(app)  # the filters and globals every template gets
    observability.register(app)
    request_text.register(app)
    for limited in (api.bp, data.bp):  # per app, keyed by blueprint name (blueprints are shared)
        app.before_request_funcs.setdefault(limited.name, []).append(limit_rate)
    app.register_blueprint(ops.bp)
    app.register_blueprint(ci_templates.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(api_docs.bp)
    app.register_blueprint(sessions.bp)
    app.register_blueprint(ui.bp)
    app.register_blueprint(project_pages.bp)
    app.register_blueprint(gitlab_hooks.bp)
    if isinstance(svc.storage, LocalBackend):
        app.register_blueprint(blobs.bp)
    app.register_blueprint(data.bp)
    app.register_blueprint(s3_door.bp)  # the S3 door: its own rate limit and XML errors
    return app
