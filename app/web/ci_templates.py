"""The GitLab CI templates the registry serves for `include: - remote:` (no sign-in: GitLab fetches them
without credentials): the plain include and the CI/CD component, copies of scripts/gitlab-ci's files kept
in the package's static folder."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

bp = Blueprint("ci_templates", __name__)
STATIC = Path(__file__).parent / "static"
FILES = {  # the URL's name → the file in static/
    "data-registry.gitlab-ci.yml": "data-registry.gitlab-ci.yml",
    "data-registry.yml": "data-registry.component.yml",
}


@bp.get("/-/ci/<any('data-registry.gitlab-ci.yml', 'data-registry.yml'):name>")
def template(name: str) -> Response:
    """One CI template, as text a browser shows and GitLab includes."""
    return send_from_directory(STATIC, FILES[name], mimetype="text/plain", max_age=300)
