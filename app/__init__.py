"""GitLab Data Registry: the composition root. `create_app` builds every service from validated settings."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from app.gitlab.gateway import GitLabGateway


def create_app(overrides: Mapping[str, Any] | None = None, *, gateway: GitLabGateway | None = None) -> Flask:
    """Build the WSGI app: settings from REGISTRY_* (plus overrides), storage, index, GitLab, web."""
    from app.auth import Authorizer, AuthPolicy
    from app.db import build_engine
    from app.db.index import ObjectIndex
    from app.db.shared_cache import SharedAuthCache
    from app.db.uploads import UploadSessions
    from app.gitlab.client import PythonGitLabGateway
    from app.gitlab.id_tokens import IdTokenVerifier
    from app.model import Credential, CredentialKind
    from app.ratelimit import RateLimiter
    from app.registry import Registry
    from app.settings import load_settings
    from app.storage import build_storage
    from app.web import Services, build_web_app

    settings = load_settings(overrides=overrides)
    _configure_logging(settings.log_level)
    storage = build_storage(settings)
    engine = build_engine(settings.effective_database_url)
    index = ObjectIndex(engine)
    if gateway is None:
        gateway = PythonGitLabGateway(url=settings.gitlab_url, timeout=settings.gitlab_timeout)
    audience = settings.effective_id_token_audience
    authorizer = Authorizer(
        gateway,
        AuthPolicy(
            success_ttl=settings.auth_cache_ttl,
            failure_ttl=settings.auth_failure_ttl,
            job_token_ttl=settings.job_token_cache_ttl,
            stale_grace=settings.auth_stale_grace,
            max_entries=settings.auth_cache_size,
            anonymous_reads=settings.anonymous_reads,
            id_token_protected_writes=settings.id_token_protected_writes,
            admin_users=settings.admin_users,
        ),
        service=(
            Credential(CredentialKind.ACCESS_TOKEN, settings.gitlab_service_token)
            if settings.gitlab_service_token
            else None
        ),
        id_tokens=(
            IdTokenVerifier(
                gitlab_url=settings.gitlab_url, audience=audience, timeout=settings.gitlab_timeout
            )
            if audience
            else None
        ),
        shared=SharedAuthCache(engine),
    )
    registry = Registry(
        authorizer=authorizer,
        index=index,
        storage=storage,
        signed_url_ttl=settings.signed_url_ttl,
        default_quota=settings.default_quota,
        max_file_size=settings.max_file_size,
        uploads=UploadSessions(engine),
        upload_session_ttl=settings.upload_session_ttl,
    )
    from app.web.ops import features_off

    for feature, how in features_off(settings).items():
        logging.getLogger("app").warning("%s: off (%s)", feature, how)
    limiter = RateLimiter(rate=settings.rate_limit, burst=settings.rate_limit_burst)
    return build_web_app(
        Services(settings=settings, registry=registry, index=index, storage=storage, limiter=limiter)
    )


def _configure_logging(level: str) -> None:
    """Log to stderr at the configured level, unless the host process (gunicorn, pytest) already does."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("app").setLevel(level)
