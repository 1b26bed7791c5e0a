"""The auth cache shared through the database: leases, answers, and two "processes" asking GitLab once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.auth import Authorizer, AuthPolicy
from app.db import build_engine, upgrade
from app.db.shared_cache import SharedAuthCache
from app.gitlab.client import PythonGitLabGateway
from app.model.identity import Action, Credential, CredentialKind
from app.model.projects import ProjectRef
from scripts.harness import Simulator, fresh_database_url
from tests.conftest import TOKENS


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    return url


def test_one_lease_at_a_time(db_url: str) -> None:
    cache = SharedAuthCache(build_engine(db_url))
    assert cache.get("k") is None
    assert cache.claim("k", 10) is True
    assert cache.claim("k", 10) is False  # someone is asking GitLab
    cache.put("k", '{"x": 1}', ttl=60, stale_grace=0)
    entry = cache.get("k")
    assert entry is not None and entry.payload == '{"x": 1}' and entry.expires_at > time.time()
    assert cache.claim("k", 10) is False  # a live answer needs no asking
    cache.put("k", '{"x": 2}', ttl=-1, stale_grace=0)
    assert cache.claim("k", 10) is True  # expired: one may ask again


def test_a_released_lease_without_an_answer_is_gone(db_url: str) -> None:
    cache = SharedAuthCache(build_engine(db_url))
    assert cache.claim("k", 10)
    cache.release("k")
    assert cache.get("k") is None and cache.claim("k", 10)


def test_processes_sharing_the_database_ask_gitlab_once(db_url: str, simulator: Simulator) -> None:
    """Eight authorizers with their own engines (as gunicorn workers have) and concurrent first requests."""

    def worker(_: int) -> int:
        authorizer = Authorizer(
            PythonGitLabGateway(url=simulator.url, timeout=5),
            AuthPolicy(),
            shared=SharedAuthCache(build_engine(db_url)),
        )
        grant = authorizer.authorize(
            Credential(CredentialKind.BEARER, TOKENS["developer"]), ProjectRef(path="ml/vision"), Action.WRITE
        )
        return grant.project.id

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(worker, range(8))) == {101}
    assert simulator.world.total_calls() == 3
