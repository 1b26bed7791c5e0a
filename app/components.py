"""The composition root: `build_components` builds every service of a process (web or worker) from
validated settings, into the one container both serve from."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app import logs
from app.datasets import Datasets
from app.db.data_checks import DataCheckQueue
from app.db.dav_locks import DavLockStore
from app.db.index import ObjectIndex
from app.db.lifecycle import Lifecycle
from app.db.shared_cache import SharedAuthCache
from app.db.upload_parts import MultipartSessions
from app.db.upload_sessions import UploadSessions
from app.door_uploads import DoorUploads
from app.gitlab.gateway import GitLabGateway
from app.locks import Locks
from app.metrics import Metrics
from app.model.identity import Credential
from app.moves import Moves, build_moves
from app.ratelimit import Limiter, RateLimiter, SharedRateLimiter
from app.registry import Registry
from app.settings import Settings
from app.signin import SignIn
from app.storage.base import StorageBackend
from app.trash import Trash
from app.uploads import Uploads

# Tokens GitLab may refuse an address before its refused tokens are answered 429: a burst, then one
# every two seconds. Tokens GitLab has not refused are always looked up.
REFUSED_LOOKUPS_BURST, REFUSED_LOOKUPS_PER_SECOND = 6, 0.5
# GitLab look-ups of projects not in the auth cache that anonymous requests of an address may cost.
ANONYMOUS_LOOKUPS_BURST, ANONYMOUS_LOOKUPS_PER_SECOND = 10, 0.5


@dataclass(frozen=True)
class Components:
    """Every long-lived service of one process; the web app keeps it in `app.extensions`."""

    settings: Settings
    storage: StorageBackend
    index: ObjectIndex
    lifecycle: Lifecycle
    upload_sessions: UploadSessions
    auth_cache: SharedAuthCache
    gateway: GitLabGateway
    service: Credential | None  # the registry's own GitLab token
    registry: Registry
    uploads: Uploads
    trash: Trash
    limiter: Limiter
    metrics: Metrics
    signin: SignIn | None  # None without REGISTRY_OAUTH_CLIENT_ID
    datasets: Datasets
    moves: Moves  # WebDAV COPY and MOVE
    locks: Locks  # WebDAV LOCK and UNLOCK
    door_uploads: DoorUploads  # the S3 door's multipart uploads
    data_checks: DataCheckQueue  # commits hooks asked to check (DESIGN 3.12)
    status_credential: Credential | None  # sets their commit statuses; None: data checks are off


def build_components(
    overrides: Mapping[str, Any] | None = None, *, gateway: GitLabGateway | None = None
) -> Components:
    """Settings from REGISTRY_* (plus overrides), then storage, index, GitLab and the registry."""
    from app.auth import Authorizer, AuthPolicy
    from app.db import build_engine
    from app.gitlab.client import PythonGitLabGateway
    from app.gitlab.id_tokens import IdTokenVerifier
    from app.model.identity import CredentialKind
    from app.settings import load_settings
    from app.storage import build_storage

    settings = load_settings(overrides=overrides)
    logs.configure(settings.log_level, settings.log_format)
    metrics = Metrics()
    storage = build_storage(settings)
    engine = build_engine(settings.effective_database_url)
    index = ObjectIndex(engine)
    if gateway is None:
        gateway = PythonGitLabGateway(
            url=settings.gitlab_url,
            timeout=settings.gitlab_timeout,
            observe=lambda status: metrics.gitlab_calls.labels(outcome=f"{status // 100}xx").inc(),
        )
    service = (
        Credential(CredentialKind.ACCESS_TOKEN, settings.gitlab_service_token)
        if settings.gitlab_service_token
        else None
    )
    audience = settings.effective_id_token_audience
    auth_cache = SharedAuthCache(engine)
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
        service=service,
        id_tokens=(
            IdTokenVerifier(
                gitlab_url=settings.gitlab_url, audience=audience, timeout=settings.gitlab_timeout
            )
            if audience
            else None
        ),
        shared=auth_cache,
        observe=lambda result: metrics.auth_cache.labels(result=result).inc(),
        refusals=_limiter(settings, "refused", REFUSED_LOOKUPS_PER_SECOND, REFUSED_LOOKUPS_BURST),
        anonymous=_limiter(settings, "anonymous", ANONYMOUS_LOOKUPS_PER_SECOND, ANONYMOUS_LOOKUPS_BURST),
    )
    upload_sessions = UploadSessions(engine)
    uploads = Uploads(
        authorizer=authorizer,
        index=index,
        storage=storage,
        sessions=upload_sessions,
        default_quota=settings.default_quota,
        max_file_size=settings.max_file_size,
        session_ttl=settings.upload_session_ttl,
        trash_retention=settings.trash_retention,
    )
    return Components(
        settings=settings,
        storage=storage,
        index=index,
        lifecycle=Lifecycle(engine),
        upload_sessions=upload_sessions,
        auth_cache=auth_cache,
        gateway=gateway,
        service=service,
        registry=Registry(
            authorizer=authorizer,
            index=index,
            storage=storage,
            signed_url_ttl=settings.signed_url_ttl,
            default_quota=settings.default_quota,
            trash_retention=settings.trash_retention,
        ),
        trash=Trash(
            authorizer=authorizer,
            index=index,
            storage=storage,
            retention=settings.trash_retention,
            default_quota=settings.default_quota,
        ),
        uploads=uploads,
        limiter=_limiter(settings, "requests", settings.rate_limit, settings.rate_limit_burst),
        metrics=metrics,
        signin=_signin(settings, engine, gateway, auth_cache),
        datasets=Datasets(
            authorizer=authorizer,
            gateway=gateway,
            index=index,
            storage=storage,
            cache_ttl=min(settings.auth_cache_ttl, 60),
        ),
        moves=build_moves(
            authorizer=authorizer, index=index, storage=storage, sessions=upload_sessions, settings=settings
        ),
        locks=Locks(authorizer=authorizer, index=index, store=DavLockStore(engine), uploads=uploads),
        door_uploads=DoorUploads(
            authorizer=authorizer,
            uploads=uploads,
            storage=storage,
            sessions=MultipartSessions(engine),
            ttl=settings.upload_session_ttl,
            max_file_size=settings.max_file_size,
        ),
        data_checks=DataCheckQueue(engine),
        status_credential=(
            Credential(CredentialKind.ACCESS_TOKEN, settings.gitlab_status_token)
            if settings.gitlab_status_token
            else service
        ),
    )


def _limiter(settings: Settings, name: str, rate: float, burst: int) -> Limiter:
    """Shared through Redis/Valkey by every process and replica when REGISTRY_REDIS_URL is set, else one
    token bucket per process."""
    if settings.redis_url:
        return SharedRateLimiter(settings.redis_url, name=name, rate=rate, burst=burst)
    return RateLimiter(rate=rate, burst=burst)


def _signin(
    settings: Settings, engine: Any, gateway: GitLabGateway, leases: SharedAuthCache
) -> SignIn | None:
    from datetime import timedelta

    from app.db.browser_sessions import BrowserSessions
    from app.gitlab.oauth import GitLabOAuth

    if not settings.oauth_client_id:
        return None
    oauth = GitLabOAuth(
        settings.gitlab_url,
        settings.oauth_client_id,
        settings.oauth_client_secret,
        settings.oauth_scopes,
        settings.gitlab_timeout,
    )
    return SignIn(
        BrowserSessions(engine),
        oauth,
        gateway,
        session_ttl=timedelta(seconds=settings.session_ttl),
        signing_key=_sign_in_key(settings),
        leases=leases,
    )


def _sign_in_key(settings: Settings) -> str:
    """What signs the sign-in cookie: REGISTRY_SECRET_KEY (or the embedded default's key), else a key
    derived from the OAuth application's secret, which every replica has too."""
    if settings.secret_key or settings.local_storage_root is not None or not settings.oauth_client_secret:
        return settings.effective_secret_key()
    return hashlib.sha256(f"registry sign-in\n{settings.oauth_client_secret}".encode()).hexdigest()
