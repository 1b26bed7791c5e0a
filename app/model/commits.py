"""A Git commit as the registry reads it from GitLab, and the states a commit status can take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

CommitState = Literal["pending", "running", "success", "failed", "canceled", "skipped"]
COMMIT_STATES: frozenset[str] = frozenset(("pending", "running", "success", "failed", "canceled", "skipped"))


@dataclass(frozen=True)
class CommitInfo:
    """One commit: GitLab's GET /projects/:id/repository/commits entry."""

    id: str
    short_id: str
    title: str
    message: str
    author_name: str
    authored_date: datetime  # aware
    parent_ids: tuple[str, ...]
    web_url: str

    @property
    def parent(self) -> str | None:
        """The first parent (the branch the commit was made on), None for a root commit."""
        return self.parent_ids[0] if self.parent_ids else None
