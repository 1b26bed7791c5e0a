"""SQLAlchemy tables of the index: projects (with their deletion state), objects, shared auth answers,
direct upload sessions, handled hook deliveries, WebDAV collections, dead properties and mtimes, data
checks of commits."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ProjectRow(Base):
    """A GitLab project that has (or had) data here; keyed by GitLab's numeric id."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    path: Mapped[str] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(String(16), default="active")  # active | deleting | deleted
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    object_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    # the deletion queue: projects in state `deleting`, claimed by one worker at a time
    deletion_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deletion_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    deletion_claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deleted_objects: Mapped[int] = mapped_column(BigInteger, default=0)
    # the trash: objects deleted but kept for the retention period, not counted against the quota
    trash_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    trash_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # the reconciler: when GitLab first answered 404 for this project (None: present)
    missing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# Object paths sort and compare byte-wise (code point order), as bucket listings do; on PostgreSQL that
# takes the "C" collation, SQLite's default is already binary.
PathString = String(1024).with_variant(String(1024, collation="C"), "postgresql")


class ObjectRow(Base):
    """One stored object of a project: the index the data plane answers HEAD and GET from."""

    __tablename__ = "objects"
    __table_args__ = (
        # one live version per path; the trash may hold any number of replaced or deleted ones
        Index(
            "uq_objects_live_path",
            "project_id",
            "path",
            unique=True,
            sqlite_where=text("trashed_at IS NULL"),
            postgresql_where=text("trashed_at IS NULL"),
        ),
        Index("ix_objects_project_path", "project_id", "path"),
        # a project's objects by content (batch existence, a dataset's completeness) and by age (last upload)
        Index("ix_objects_project_md5", "project_id", "md5"),
        Index("ix_objects_project_created", "project_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("projects.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(PathString)
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32), index=True)
    uploader_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # in the project's trash since then (None: live); the bytes stay at their key until purged
    trashed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    # where this version's bytes are (None: projects/<id>/<path>); a new version gets a new key
    storage_key: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuthCacheRow(Base):
    """A GitLab answer about (sha256 of a credential, project), shared by every process; never a secret.
    A row without payload is a lease: one process is asking GitLab, the others wait for its answer."""

    __tablename__ = "auth_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[float] = mapped_column(Float)
    stale_until: Mapped[float] = mapped_column(Float)
    lease_until: Mapped[float] = mapped_column(Float)


class UploadSessionRow(Base):
    """A direct upload in progress; `completing` is set while one `complete` call owns it."""

    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(BigInteger, index=True)
    path: Mapped[str] = mapped_column(PathString)
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    overwrite: Mapped[bool] = mapped_column(Boolean, default=False)
    handle: Mapped[str] = mapped_column(Text, default="")
    uploader_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    completing: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # "direct" (the JSON API's signed URLs) or "s3" (a multipart upload through the S3 door, parts below)
    kind: Mapped[str] = mapped_column(String(16), default="direct", server_default="direct")


class UploadPartRow(Base):
    """A part an S3 multipart upload received: its own blob at `key`; a part sent again gets a new row
    and blob, and the newest row of a number is the part (older ones are dropped)."""

    __tablename__ = "upload_parts"
    __table_args__ = (Index("ix_upload_parts_session_number", "session_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("upload_sessions.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HookDeliveryRow(Base):
    """A GitLab hook delivery already handled, by its Idempotency-Key: a retry is not acted on twice."""

    __tablename__ = "hook_deliveries"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class BrowserSessionRow(Base):
    """A signed-in browser: keyed by the hash of its cookie; the GitLab tokens stay here, server-side."""

    __tablename__ = "browser_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    username: Mapped[str] = mapped_column(String(255))
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    access_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class DavCollectionRow(Base):
    """A collection made with WebDAV MKCOL: kept, empty or not, until it is deleted. (Folders that hold
    objects exist without a row.)"""

    __tablename__ = "dav_collections"
    __table_args__ = (Index("ix_dav_collections_parent", "project_id", "parent"),)

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(PathString, primary_key=True)
    parent: Mapped[str] = mapped_column(PathString)  # "" at the data root: what a listing looks up
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DavPropertyRow(Base):
    """A WebDAV dead property (PROPPATCH) of an object or collection: its value kept as XML text."""

    __tablename__ = "dav_properties"
    __table_args__ = (Index("ix_dav_properties_parent", "project_id", "parent"),)

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(PathString, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(512), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    parent: Mapped[str] = mapped_column(PathString)
    value: Mapped[str] = mapped_column(Text)  # the element's content as XML (namespaces declared inline)


class DavMtimeRow(Base):
    """The modification time a client gave a path (X-OC-Mtime, PROPPATCH getlastmodified), valid for the
    object version stored at `version_at` only: a new upload of the path shows its upload time again."""

    __tablename__ = "dav_mtimes"
    __table_args__ = (Index("ix_dav_mtimes_parent", "project_id", "parent"),)

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(PathString, primary_key=True)
    parent: Mapped[str] = mapped_column(PathString)
    modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the created_at of the object version it was given for; None for a collection
    version_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DavLockRow(Base):
    """A WebDAV write lock (LOCK, RFC 4918 class 2) on a path and, at depth infinity, everything under it;
    kept here so every worker and replica honours it, ignored once expired (and then swept)."""

    __tablename__ = "dav_locks"
    __table_args__ = (Index("ix_dav_locks_project_path", "project_id", "path"),)

    token: Mapped[str] = mapped_column(String(64), primary_key=True)  # the uuid of urn:uuid:<uuid>
    project_id: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(PathString)  # "" for the data root
    exclusive: Mapped[bool] = mapped_column(Boolean)
    infinite: Mapped[bool] = mapped_column(Boolean)  # Depth: infinity (else 0)
    owner: Mapped[str] = mapped_column(Text, default="")  # the client's <D:owner> content, as XML
    principal: Mapped[str] = mapped_column(String(64))  # who took it: only they may refresh or unlock
    timeout: Mapped[int] = mapped_column(Integer)  # seconds, as granted
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class DataCheckRow(Base):
    """A commit whose data the worker checks and reports to GitLab as a commit status (DESIGN 3.12): one
    row per project and commit however many hook events name it; claimed by one worker at a time."""

    __tablename__ = "data_checks"

    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sha: Mapped[str] = mapped_column(String(64), primary_key=True)
    ref: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # the branch the status is for
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # a check is due from then (None: none due); a worker holds it until claimed_until
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # runs in a row GitLab did not answer
    rechecks: Mapped[int] = mapped_column(Integer, default=0)  # re-checks made because uploads arrived
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the status last posted to GitLab (on posted_ref): posted again only when it changes
    posted_ref: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    posted_state: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    posted_description: Mapped[str | None] = mapped_column(String(255), nullable=True)
