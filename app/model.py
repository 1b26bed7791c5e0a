"""Value objects shared by every layer: credentials, actors, projects and their records (the quota rules),
object paths and infos, listings, sizes."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from app.errors import InvalidPath, ProjectDeleted, QuotaExceeded


class AccessLevel(enum.IntEnum):
    """GitLab's role values (doc/api/members.md, "Roles")."""

    NO_ACCESS = 0
    MINIMAL_ACCESS = 5
    GUEST = 10
    PLANNER = 15
    REPORTER = 20
    DEVELOPER = 30
    MAINTAINER = 40
    OWNER = 50
    ADMIN = 60

    @property
    def title(self) -> str:
        return self.name.replace("_", " ").title()


class Action(enum.Enum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"


class Visibility(enum.Enum):
    PUBLIC = "public"
    INTERNAL = "internal"
    PRIVATE = "private"


class CredentialKind(enum.Enum):
    """How a credential must be validated; set by how it arrived (prefixes are only hints)."""

    ACCESS_TOKEN = "access token"  # noqa: S105 - personal, project and group access tokens
    OAUTH_TOKEN = "OAuth token"  # noqa: S105
    DEPLOY_TOKEN = "deploy token"  # noqa: S105
    JOB_TOKEN = "CI job token"  # noqa: S105
    ID_TOKEN = "CI ID token"  # noqa: S105 - a JWT from `id_tokens:` in .gitlab-ci.yml
    BEARER = "bearer token"  # arrived as `Authorization: Bearer`; resolved by asking GitLab


@dataclass(frozen=True)
class Credential:
    """A secret presented by a client. The secret never appears in repr or logs."""

    kind: CredentialKind
    secret: str = field(repr=False)
    username: str | None = None
    origin: str | None = field(default=None, compare=False)  # the client address it came from

    @property
    def fingerprint(self) -> str:
        """sha256 of the secret: the cache key, safe to keep in memory and to log."""
        return hashlib.sha256(self.secret.encode()).hexdigest()


@dataclass(frozen=True)
class Actor:
    """Who is calling, as GitLab told us: a user (or bot, or deploy token) and what the credential may do."""

    kind: CredentialKind
    user_id: int | None  # None for deploy tokens, which belong to no user
    scopes: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    job_project_id: int | None = None  # job and ID tokens: the project whose CI job holds the token
    protected_ref: bool | None = None  # ID tokens: whether the job ran for a protected branch or tag


@dataclass(frozen=True)
class ProjectRef:
    """A project as addressed in a URL: by numeric id or by full path."""

    id: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        return self.path if self.path is not None else f"project {self.id}"

    @property
    def lookup_key(self) -> str:
        return str(self.id) if self.id is not None else str(self.path)


@dataclass(frozen=True)
class Project:
    """A GitLab project as far as access decisions need it."""

    id: int
    path: str
    visibility: Visibility
    archived: bool = False


@dataclass(frozen=True)
class Grant:
    """What GitLab says about an actor on a project; access.py turns it into a decision per action."""

    project: Project
    actor: Actor | None  # None: anonymous
    role: AccessLevel = AccessLevel.NO_ACCESS  # the user's effective role (job and ID tokens: the job's user)
    # Job tokens: the project's job-token allowlist lets the job's project in (always true for its own).
    allowlisted: bool = False


ACTIVE = "active"  # a project's state while its data is served; then `deleting`, `deleted`


@dataclass(frozen=True)
class Diagnosis:
    """What a credential may do on a project and why not: for `whoami` and `data-registry doctor`."""

    grant: Grant | None  # None when the caller may not even read (then who they are stays unsaid)
    refusals: dict[Action, str | None]  # per action: None when allowed, else the reason


@dataclass(frozen=True)
class ProjectRecord:
    """What the registry keeps about a project: its cached path, state, own quota and usage. The quota
    rules live here and nowhere else."""

    id: int
    path: str
    state: str = ACTIVE
    own_quota: int | None = None  # bytes, 0: unlimited; None: the default quota applies
    used_bytes: int = 0
    object_count: int = 0
    trash_bytes: int = 0  # deleted and replaced objects kept for the retention period: in the quota too
    trash_count: int = 0

    def effective_quota(self, default: int) -> int:
        """The quota in force (0: unlimited): the project's own, else the default."""
        return default if self.own_quota is None else self.own_quota

    @property
    def stored_bytes(self) -> int:
        """What the project holds in the bucket, live and in the trash: what a quota bounds."""
        return self.used_bytes + self.trash_bytes

    def admits(self, growth: int, default_quota: int) -> bool:
        """Whether what the project stores may grow by `growth` bytes (negative: a replacement that
        frees space; a move to or from the trash is no growth)."""
        quota = self.effective_quota(default_quota)
        return not quota or growth <= 0 or self.stored_bytes + growth <= quota

    def over_quota(self, default_quota: int) -> QuotaExceeded:
        """The refusal DVC users read in the status line: how much is used, how much of it is trash and
        how to empty it."""
        quota = self.effective_quota(default_quota)
        message = (
            f"Quota exceeded for {self.path}: {human_size(self.stored_bytes)} of {human_size(quota)} used"
        )
        if self.trash_bytes:
            message += (
                f", {human_size(self.trash_bytes)} of it in the trash (a Maintainer can empty it: "
                f"POST /api/v1/projects/{self.id}/trash/purge)"
            )
        return QuotaExceeded(message)

    def require_active(self) -> None:
        """ProjectDeleted when the project is being (or was) deleted."""
        if self.state != ACTIVE:
            raise ProjectDeleted(f"Project {self.path} was deleted in GitLab; its data is being removed")


# DVC content-addressed layouts: `<remote>/files/md5/xx/<30 hex>[.dir]`, legacy `<remote>/xx/<30 hex>[.dir]`
_MD5_PATH = re.compile(r"^(?P<prefix>(?:.*/)?)(?P<head>[0-9a-f]{2})/(?P<tail>[0-9a-f]{30})(?P<dir>\.dir)?$")
_MAX_PATH_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ObjectPath:
    """A validated object path inside a project (DESIGN.md section 2)."""

    value: str

    def __post_init__(self) -> None:
        check_object_path(self.value)

    def __str__(self) -> str:
        return self.value

    @property
    def expected_md5(self) -> str | None:
        """The md5 a DVC content-addressed path promises (`files/md5/xx/<30 hex>[.dir]`), else None."""
        address = self.content_address
        return address.md5 if address else None

    @property
    def content_address(self) -> ContentAddress | None:
        """Where this path sits in a DVC content-addressed layout, None when it is not such a path."""
        match = _MD5_PATH.match(self.value)
        if match is None:
            return None
        return ContentAddress(
            prefix=match["prefix"], md5=match["head"] + match["tail"], is_dir=bool(match["dir"])
        )


@dataclass(frozen=True)
class ContentAddress:
    """A DVC object path split into its directory of objects, its md5, and whether it is a `.dir`."""

    prefix: str
    md5: str
    is_dir: bool

    def sibling(self, md5: str) -> str:
        """The path of the (file) object with that md5 in the same remote and layout."""
        return f"{self.prefix}{md5[:2]}/{md5[2:]}"


def check_object_path(path: str) -> None:
    """Raise InvalidPath naming the rule the path breaks."""
    if not path:
        raise InvalidPath("Invalid path: must not be empty")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON) is no character
        raise InvalidPath("Invalid path: not valid UTF-8") from None
    if len(encoded) > _MAX_PATH_BYTES:
        raise InvalidPath(f"Invalid path: longer than {_MAX_PATH_BYTES} bytes")
    if path.startswith("/"):
        raise InvalidPath("Invalid path: must not start with '/'")
    if "\\" in path:
        raise InvalidPath("Invalid path: backslash is not allowed")
    if _CONTROL.search(path):
        raise InvalidPath("Invalid path: control characters are not allowed")
    for segment in path.split("/"):
        if segment == "":
            raise InvalidPath("Invalid path: empty segment ('//' or trailing '/')")
        if segment in (".", ".."):
            raise InvalidPath(f"Invalid path: '{segment}' segment is not allowed")


@dataclass(frozen=True)
class ObjectInfo:
    """An indexed object of a project."""

    project_id: int
    path: str
    size: int
    md5: str
    created_at: datetime
    trashed_at: datetime | None = None  # in the project's trash since then
    storage_key: str | None = None  # where its bytes are, when not at the path's own key (a new version)

    @property
    def etag(self) -> str:
        return f'"{self.md5}"'

    @property
    def key(self) -> str:
        """The storage key of this version's bytes."""
        return self.storage_key or f"projects/{self.project_id}/{self.path}"


@dataclass(frozen=True)
class Listing:
    """Which page of a project's objects: under a prefix, containing a substring, ordered by path, size
    or created_at (ties by path), starting after the key (value, path) of the previous page's last."""

    prefix: str = ""
    search: str = ""
    limit: int = 100
    order_by: str = "path"
    descending: bool = False
    after: tuple[Any, str] | None = None
    trashed: bool = False  # list the project's trash instead of its objects


@dataclass(frozen=True)
class BlobInfo:
    """What a storage backend knows about a stored blob."""

    key: str
    size: int
    md5: str | None
    modified: datetime | None = None  # when its bytes were last written


@dataclass(frozen=True)
class SignedURL:
    """A short-lived URL that lets its holder GET one object, straight from storage."""

    url: str
    expires_at: datetime


def object_key(project_id: int, path: ObjectPath) -> str:
    """Storage key of a project's object: keyed by the stable numeric id, never the project path. A DVC
    content address always lives here (its bytes can only be the ones its name says); see version_key."""
    return f"projects/{project_id}/{path.value}"


VERSIONS_PREFIX = "versions/"  # where versions of paths that are not content addresses live


def version_key(project_id: int, path: ObjectPath) -> str:
    """A fresh storage key for one version of a path that is not a content address: a write never
    changes bytes that the index or a signed URL may still point to (the path stays readable in it)."""
    return f"{VERSIONS_PREFIX}{project_id}/{secrets.token_hex(8)}/{path.value}"


def storage_key_for(project_id: int, path: ObjectPath) -> str:
    """Where a new write of path goes: a content address at its own key, anything else at a new one."""
    return object_key(project_id, path) if path.content_address else version_key(project_id, path)


# GitLab renames a project it marks for deletion to `<path>-deletion_scheduled-<id>` (older: `-deleted-`)
PENDING_DELETION = re.compile(r"-(deletion_scheduled|deleted)-\d+$")


def attachment(path: str) -> str:
    """A Content-Disposition that saves the object under its own name (RFC 6266, with RFC 5987 for
    names beyond ASCII)."""
    name = path.rsplit("/", 1)[-1]
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


UPLOADS_PREFIX = "uploads/"  # where direct uploads' bytes wait, outside every project's prefix


def upload_key(session_id: str) -> str:
    """Storage key where a direct upload's bytes wait for `complete`."""
    return UPLOADS_PREFIX + session_id


@dataclass(frozen=True)
class UploadSession:
    """A direct upload in progress: the client sends `size` bytes to storage, then completes it."""

    id: str
    project_id: int
    path: str
    size: int
    md5: str | None
    overwrite: bool
    handle: str  # the storage backend's id of the upload (S3 multipart upload id)
    uploader_id: int | None
    created_at: datetime
    expires_at: datetime

    @property
    def temp_key(self) -> str:
        return upload_key(self.id)


@dataclass(frozen=True)
class OAuthTokens:
    """What GitLab's OAuth token endpoint answered: the access token (2 hours on GitLab) and its refresh
    token."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class BrowserSession:
    """A signed-in browser, as the server keeps it (the browser holds only a random cookie)."""

    id_hash: str
    user_id: int
    username: str
    tokens: OAuthTokens
    csrf_token: str = field(repr=False)
    expires_at: datetime


_UNITS = {
    "": 1,
    "B": 1,
    "K": 10**3,
    "KB": 10**3,
    "KIB": 2**10,
    "M": 10**6,
    "MB": 10**6,
    "MIB": 2**20,
    "G": 10**9,
    "GB": 10**9,
    "GIB": 2**30,
    "T": 10**12,
    "TB": 10**12,
    "TIB": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes from "50GiB", "10 GB", "512MiB", "1048576"; ValueError otherwise."""
    match = _SIZE.match(text)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 50GiB, 500MB, 0 for unlimited)")
    size = float(match.group(1)) * _UNITS[unit]
    if size >= 2**63:
        raise ValueError(f"too large: {text!r}")
    return int(size)


def human_size(size: int) -> str:
    """1 decimal, binary units: 10737418240 -> "10.0 GiB"."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            break
        value /= 1024
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
