"""Typed settings from REGISTRY_* variables, validated once; the only reader of the environment."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, post_load, validate
from marshmallow import fields as mf

from app.errors import ConfigurationError
from app.model.sizes import parse_size

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PREFIX = "REGISTRY_"
SECRET_NAMES = (
    "gitlab_service_token",
    "gitlab_status_token",
    "secret_key",
    "webhook_secret",
    "webhook_signing_secret",
    "oauth_client_secret",
    "redis_url",
)


@dataclass(frozen=True)
class Settings:
    """Everything the registry is configured with. Secrets are excluded from repr."""

    gitlab_url: str = "https://gitlab.com"
    gitlab_timeout: float = 10.0
    gitlab_service_token: str | None = field(default=None, repr=False)
    # sets the data checks' commit statuses (scope api, Developer on the projects); else the service token
    gitlab_status_token: str | None = field(default=None, repr=False)
    storage_url: str = "file:///var/lib/data-registry"
    gcs_emulator_host: str | None = None  # from STORAGE_EMULATOR_HOST, google-cloud-storage's own variable
    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_addressing_style: str | None = None
    database_url: str | None = None
    public_url: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    default_quota: int = 0  # bytes per project; 0: unlimited
    max_file_size: int = 5 * 2**40  # the buckets' own maximum object size
    rate_limit: float = 2000  # requests per second per credential and process; 0: off
    rate_limit_burst: int = 4000
    signed_url_ttl: int = 600
    upload_session_ttl: int = 24 * 3600  # how long a direct upload session and its part URLs stay valid
    trash_retention: int = 7 * 24 * 3600  # seconds deleted objects stay restorable; 0: deletes are final
    download_mode: str = "auto"  # auto: stream objects below download_stream_below, redirect the rest
    # auto mode's threshold, measured with scripts/bench/remotes.py --sweep (README: "Small downloads in one
    # round trip"): below it streaming saves a round trip for about 1 ms of registry CPU, above it costs more
    download_stream_below: int = 2**20
    # The proxies (an ingress controller's pods) whose X-Forwarded-For names the client: per-address
    # limits then count each client instead of the proxy. Empty: the peer's own address, always.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    anonymous_reads: bool = True
    auth_cache_ttl: int = 300
    auth_failure_ttl: int = 10
    auth_cache_size: int = 10_000
    auth_stale_grace: int = 600
    job_token_cache_ttl: int = 60
    id_token_audience: str | None = None
    id_token_protected_writes: bool = False
    webhook_secret: str | None = field(default=None, repr=False)  # X-Gitlab-Token of GitLab's hooks
    webhook_signing_secret: str | None = field(
        default=None, repr=False
    )  # whsec_…: verifies webhook-signature
    reconcile_grace: int = 6 * 3600  # seconds a project must stay missing in GitLab before its data goes
    reconcile_interval: int = 3600
    usage_sweep_interval: int = 24 * 3600
    deletion_interval: int = 10
    deletion_batch: int = 1000
    deletion_lease: int = 300  # seconds a worker holds a claimed deletion without progress
    stale_upload_age: int = 24 * 3600  # unfinished uploads older than this are removed
    data_check_interval: int = 5  # seconds between the worker's runs of the data checks
    data_check_settle: int = 15  # seconds after a project's last upload before failed checks re-run
    admin_users: frozenset[str] = frozenset()  # GitLab usernames allowed the admin endpoints besides admins
    oauth_client_id: str | None = None  # the GitLab OAuth application's id: sign-in for the browser UI
    oauth_client_secret: str | None = field(default=None, repr=False)
    oauth_scopes: str = "read_api"
    session_ttl: int = 7 * 24 * 3600  # how long a browser stays signed in
    # Redis/Valkey shared by every replica: rate limits count there instead of in each process
    redis_url: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    log_format: str = "text"  # text | json (one object per line, with the request id)
    access_log: bool = True
    worker_metrics_port: int = 9102  # the worker serves /metrics here; 0: off

    def features_off(self) -> dict[str, str]:
        """Optional features that are off, and the setting that turns each on."""
        off = {}
        if not self.gitlab_service_token:
            for feature in (
                "deploy tokens",
                "CI tokens on other projects",
                "reconciler (data of projects GitLab deleted while no hook reached us)",
            ):
                off[feature] = "set REGISTRY_GITLAB_SERVICE_TOKEN"
        if not self.effective_id_token_audience:
            off["CI ID tokens"] = "set REGISTRY_ID_TOKEN_AUDIENCE or REGISTRY_PUBLIC_URL"
        if not self.webhook_secret:
            off["GitLab hooks (/-/hooks/gitlab)"] = "set REGISTRY_WEBHOOK_SECRET"
        if self.webhook_secret and not (self.gitlab_status_token or self.gitlab_service_token):
            off["data checks on pushes and merge requests"] = (
                "set REGISTRY_GITLAB_STATUS_TOKEN or REGISTRY_GITLAB_SERVICE_TOKEN"
            )
        if not self.oauth_client_id:
            off["sign-in with GitLab (browser UI)"] = (
                "set REGISTRY_OAUTH_CLIENT_ID and REGISTRY_OAUTH_CLIENT_SECRET"
            )
        return off

    @property
    def effective_s3_addressing_style(self) -> str:
        """Path-style with a custom endpoint (MinIO, SeaweedFS), virtual-hosted on AWS."""
        return self.s3_addressing_style or ("path" if self.s3_endpoint_url else "virtual")

    @property
    def effective_id_token_audience(self) -> str | None:
        """The `aud` CI ID tokens must carry: configured, else this registry's public URL; None: off."""
        return self.id_token_audience or self.public_url

    @property
    def local_storage_root(self) -> Path | None:
        """The directory of a file:// storage URL, None for cloud buckets."""
        parts = urlsplit(self.storage_url)
        return Path(parts.path) if parts.scheme == "file" else None

    @property
    def effective_database_url(self) -> str:
        """The configured database, or SQLite next to the local storage (the embedded default)."""
        if self.database_url:
            return self.database_url
        root = self.local_storage_root
        if root is None:
            raise ConfigurationError("REGISTRY_DATABASE_URL is required when storage is not file://")
        return f"sqlite:///{root / 'registry.db'}"

    def effective_secret_key(self) -> str:
        """The signing key; for the embedded default, one generated once and kept next to the storage."""
        if self.secret_key:
            return self.secret_key
        root = self.local_storage_root
        if root is None:
            raise ConfigurationError("REGISTRY_SECRET_KEY is required when storage is not file://")
        key_file = root / ".secret_key"
        if not key_file.exists():
            # Several worker processes may get here at once: each writes a complete candidate and
            # links it into place; the first link wins, and nobody ever reads a half-written key.
            root.mkdir(parents=True, exist_ok=True)
            fd, candidate = tempfile.mkstemp(dir=root, prefix=".secret_key.")
            try:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_urlsafe(48))
                    out.flush()
                    os.fsync(out.fileno())
                os.link(candidate, key_file)
            except FileExistsError:
                pass
            finally:
                os.unlink(candidate)
        return key_file.read_text().strip()


def _url(schemes: set[str]) -> validate.Validator:
    def check(value: str) -> None:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            raise ValidationError(f"must be a URL with scheme {' or '.join(sorted(schemes))}")

    return check  # type: ignore[return-value]


class ByteSize(mf.Field):  # type: ignore[type-arg]
    """A number of bytes, written as 50GiB, 500MB or plain bytes."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return value if isinstance(value, int) else parse_size(str(value))
        except ValueError as e:
            raise ValidationError(str(e)) from None


class Networks(mf.Field):  # type: ignore[type-arg]
    """Comma-separated CIDRs (10.0.0.0/8, fd00::/8) or single addresses."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[IPNetwork, ...]:
        networks = []
        for part in str(value).split(","):
            if not part.strip():
                continue
            try:
                networks.append(ipaddress.ip_network(part.strip()))
            except ValueError as e:
                raise ValidationError(f"{part.strip()!r} is not a CIDR ({e})") from None
        return tuple(networks)


class SettingsSchema(Schema):
    class Meta:
        unknown = RAISE

    gitlab_url = mf.String(validate=_url({"http", "https"}))
    gitlab_timeout = mf.Float(validate=validate.Range(min=0.1, max=300))
    gitlab_service_token = mf.String()
    gitlab_status_token = mf.String(validate=validate.Length(min=1))
    storage_url = mf.String(validate=_url({"file", "s3", "gs"}))
    gcs_emulator_host = mf.String(validate=_url({"http", "https"}))
    s3_endpoint_url = mf.String(validate=_url({"http", "https"}))
    s3_public_endpoint_url = mf.String(validate=_url({"http", "https"}))
    s3_region = mf.String(validate=validate.Length(min=1))
    s3_addressing_style = mf.String(validate=validate.OneOf(["path", "virtual"]))
    database_url = mf.String(validate=validate.Regexp(r"^(sqlite|postgresql)(\+\w+)?://"))
    public_url = mf.String(validate=_url({"http", "https"}))
    secret_key = mf.String(validate=validate.Length(min=16))
    default_quota = ByteSize()
    max_file_size = ByteSize(validate=validate.Range(min=1))
    rate_limit = mf.Float(validate=validate.Range(min=0))
    rate_limit_burst = mf.Integer(validate=validate.Range(min=1))
    signed_url_ttl = mf.Integer(validate=validate.Range(min=10, max=7 * 24 * 3600))
    upload_session_ttl = mf.Integer(validate=validate.Range(min=60, max=7 * 24 * 3600))
    trash_retention = mf.Integer(validate=validate.Range(min=0, max=365 * 24 * 3600))
    download_mode = mf.String(validate=validate.OneOf(["auto", "redirect", "proxy"]))
    download_stream_below = ByteSize(validate=validate.Range(min=0))
    trusted_proxies = Networks()
    anonymous_reads = mf.Boolean()
    auth_cache_ttl = mf.Integer(validate=validate.Range(min=0, max=86400))
    auth_failure_ttl = mf.Integer(validate=validate.Range(min=0, max=3600))
    auth_cache_size = mf.Integer(validate=validate.Range(min=1))
    auth_stale_grace = mf.Integer(validate=validate.Range(min=0, max=86400))
    job_token_cache_ttl = mf.Integer(validate=validate.Range(min=0, max=60))
    id_token_audience = mf.String(validate=validate.Length(min=1))
    id_token_protected_writes = mf.Boolean()
    webhook_secret = mf.String(validate=validate.Length(min=8))
    webhook_signing_secret = mf.String(validate=validate.Regexp(r"^whsec_[A-Za-z0-9+/=]+$"))
    reconcile_grace = mf.Integer(validate=validate.Range(min=0))
    reconcile_interval = mf.Integer(validate=validate.Range(min=1))
    usage_sweep_interval = mf.Integer(validate=validate.Range(min=1))
    deletion_interval = mf.Integer(validate=validate.Range(min=1))
    deletion_batch = mf.Integer(validate=validate.Range(min=1, max=1000))
    deletion_lease = mf.Integer(validate=validate.Range(min=1))
    stale_upload_age = mf.Integer(validate=validate.Range(min=60))
    data_check_interval = mf.Integer(validate=validate.Range(min=1, max=3600))
    data_check_settle = mf.Integer(validate=validate.Range(min=0, max=24 * 3600))
    admin_users = mf.String()
    oauth_client_id = mf.String(validate=validate.Length(min=1))
    oauth_client_secret = mf.String(validate=validate.Length(min=1))
    oauth_scopes = mf.String(validate=validate.Regexp(r"^[a-z_]+( [a-z_]+)*$"))
    session_ttl = mf.Integer(validate=validate.Range(min=300, max=90 * 24 * 3600))
    redis_url = mf.String(
        validate=validate.Regexp(r"^(redis|rediss|valkey|valkeys|redis\+sentinel|redis\+cluster)://")
    )
    log_level = mf.String(validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]))
    log_format = mf.String(validate=validate.OneOf(["text", "json"]))
    access_log = mf.Boolean()
    worker_metrics_port = mf.Integer(validate=validate.Range(min=0, max=65535))

    @post_load
    def build(self, data: dict[str, Any], **_: Any) -> Settings:
        if "gitlab_url" in data:
            data["gitlab_url"] = data["gitlab_url"].rstrip("/")
        if "public_url" in data:
            data["public_url"] = data["public_url"].rstrip("/")
        if "admin_users" in data:
            data["admin_users"] = frozenset(n.strip() for n in data["admin_users"].split(",") if n.strip())
        return Settings(**data)


KNOWN = {f.name for f in fields(Settings)}


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read REGISTRY_* (and REGISTRY_*_FILE for secrets) and validate them; raise naming the variable."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for name in KNOWN:
        var = PREFIX + name.upper()
        if name in SECRET_NAMES and env.get(var + "_FILE"):
            try:
                raw[name] = Path(env[var + "_FILE"]).read_text().strip()
            except OSError as e:
                raise ConfigurationError(
                    f"{var}_FILE: cannot read {env[var + '_FILE']}: {e.strerror}"
                ) from None
        elif env.get(var, "") != "":
            raw[name] = env[var]
    if env.get("STORAGE_EMULATOR_HOST"):  # the SDK's own convention, honoured as it is
        raw["gcs_emulator_host"] = env["STORAGE_EMULATOR_HOST"]
    raw.update(overrides or {})
    try:
        settings: Settings = SettingsSchema().load(raw)
    except ValidationError as e:
        messages: dict[str, Any] = e.normalized_messages()  # type: ignore[no-untyped-call]
        problems = "; ".join(
            f"{PREFIX}{key.upper()}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
            for key, msgs in sorted(messages.items())
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
    return settings


def index_problem(settings: Settings, *, create: bool) -> str | None:
    """Why a server command cannot use the index on this machine, or None. Commands that read or change
    what is indexed (create=False) need an index that exists: they never create SQLite's file. Those that
    set the registry up (db upgrade, serve, worker) may create it, but only in a storage directory that
    exists or was configured: on a laptop without settings they leave /var/lib alone."""
    url = settings.effective_database_url
    match = _SQLITE_FILE.match(url)
    if match is None:  # a database server (PostgreSQL) or SQLite in memory: nothing made here
        return None
    where = "run this on the registry's host, or set REGISTRY_DATABASE_URL/REGISTRY_STORAGE_URL"
    database = Path(match["path"])
    if not create:
        return None if database.is_file() else f"no index at {database} — {where}"
    configured = settings.database_url is not None or settings.storage_url != Settings.storage_url
    root = settings.local_storage_root
    if configured or root is None or root.is_dir():
        return None
    return (
        f"no storage directory {root} (REGISTRY_STORAGE_URL's default) — create it on the registry's host,"
        " or set REGISTRY_STORAGE_URL"
    )


_SQLITE_FILE = re.compile(r"^sqlite(?:\+\w+)?:///(?P<path>(?!:memory:).+?)(?:\?.*)?$")
