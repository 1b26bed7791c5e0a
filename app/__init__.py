"""GitLab Data Registry. `create_app` serves the components (`app.components`) over HTTP; the worker
(`app.jobs.scheduler`) runs the lifecycle jobs over the same components."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from app.gitlab.gateway import GitLabGateway


def create_app(overrides: Mapping[str, Any] | None = None, *, gateway: GitLabGateway | None = None) -> Flask:
    """The WSGI app over freshly built components."""
    from app.components import build_components
    from app.web import build_web_app

    return build_web_app(build_components(overrides, gateway=gateway))
