"""Direct uploads: a session in progress and the storage key its bytes wait under."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
