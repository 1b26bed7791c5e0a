"""Housekeeping: expired direct uploads and unfinished streamed ones dropped, old hook delivery records
forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db.lifecycle import Lifecycle
from app.db.upload_sessions import UploadSessions
from app.errors import StorageUnavailable
from app.model.upload_sessions import upload_key
from app.storage.base import StorageBackend


def remove_stale_uploads(
    uploads: UploadSessions, storage: StorageBackend, *, age: float, now: datetime | None = None
) -> int:
    """Abort direct upload sessions past their expiry and unfinished streamed uploads older than `age`."""
    removed, now = 0, now or datetime.now(UTC)
    for session_id, handle in uploads.expired(now):
        try:
            # an S3 door multipart upload's parts (app.door_uploads), each a blob under the upload's key
            storage.delete_many([blob.key for blob in storage.list(upload_key(session_id) + "/")])
            storage.abort_direct(upload_key(session_id), handle)
        except StorageUnavailable:
            continue  # next run
        uploads.close(session_id)
        removed += 1
    return removed + storage.remove_stale_staging(now.timestamp() - age)


def forget_old_deliveries(lifecycle: Lifecycle, *, age: float, now: datetime | None = None) -> int:
    """Drop records of hook deliveries older than `age` (GitLab resends within hours, by hand within days)."""
    return lifecycle.forget_deliveries((now or datetime.now(UTC)) - timedelta(seconds=age))
