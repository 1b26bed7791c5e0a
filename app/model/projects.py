"""Projects: as addressed in a URL, as GitLab describes them, and as the registry keeps them (the quota
rules live in ProjectRecord and nowhere else)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from app.errors import ProjectDeleted, QuotaExceeded
from app.model.sizes import human_size


class Visibility(enum.Enum):
    PUBLIC = "public"
    INTERNAL = "internal"
    PRIVATE = "private"


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


ACTIVE = "active"  # a project's state while its data is served; then `deleting`, `deleted`


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


# GitLab renames a project it marks for deletion to `<path>-deletion_scheduled-<id>` (older: `-deleted-`)
PENDING_DELETION = re.compile(r"-(deletion_scheduled|deleted)-\d+$")
