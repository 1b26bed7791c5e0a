"""GitLab's 403, 404 and refused status transitions as the gateway's call layer reports them."""

from __future__ import annotations

from urllib.parse import quote


class GitLabNotFound(Exception):
    """GitLab answered 404."""


class GitLabForbidden(Exception):
    """GitLab answered 403."""


class GitLabStateHeld(Exception):
    """GitLab answered 400 "Cannot transition status via :enqueue from :pending": a commit status already
    holds the state posted (GitLab refuses pending over pending and running over running)."""


def encode_path(path: str) -> str:
    """A path as one URL segment (a project path, a file path, a ref)."""
    return quote(path, safe="")
