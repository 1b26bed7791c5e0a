"""How long GitLab's answers are trusted, and what anonymous callers and CI jobs may do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuthPolicy:
    """The settings of every permission decision and of the grant cache."""

    success_ttl: float = 300
    failure_ttl: float = 10
    job_token_ttl: float = 60
    stale_grace: float = 600
    max_entries: int = 10_000
    anonymous_reads: bool = True
    id_token_protected_writes: bool = False
    admin_users: frozenset[str] = frozenset()
