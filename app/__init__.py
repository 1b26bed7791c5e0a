"""GitLab Data Registry. `create_app` serves the components (`app.components`) over HTTP; the worker
(`app.worker`) runs the lifecycle jobs over them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from app.gitlab.gateway import GitLabGateway


def create_app(overrides: Mapping[str, Any] | None = None, *, gateway: GitLabGateway | None = None) -> Flask:
    """The WSGI app over freshly built components."""
    from app.components import build_components
    from app.ratelimit import RateLimiter
    from app.web import Services, build_web_app

    parts = build_components(overrides, gateway=gateway)
    settings = parts.settings
    limiter = RateLimiter(rate=settings.rate_limit, burst=settings.rate_limit_burst)
    return build_web_app(
        Services(
            settings=settings,
            registry=parts.registry,
            index=parts.index,
            storage=parts.storage,
            limiter=limiter,
            lifecycle=parts.lifecycle,
            auth_cache=parts.auth_cache,
            metrics=parts.metrics,
        )
    )
