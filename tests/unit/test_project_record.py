"""The quota rules, owned by ProjectRecord: the quota in force, what fits, the refusal DVC users read."""

from __future__ import annotations

import pytest

from app.errors import ProjectDeleted
from app.model.projects import ProjectRecord

GIB = 2**30


def test_the_projects_own_quota_wins_over_the_default() -> None:
    assert ProjectRecord(1, "g/p").effective_quota(10 * GIB) == 10 * GIB
    assert ProjectRecord(1, "g/p", own_quota=GIB).effective_quota(10 * GIB) == GIB
    assert ProjectRecord(1, "g/p", own_quota=0).effective_quota(10 * GIB) == 0  # unlimited, set on purpose


@pytest.mark.parametrize(
    ("used", "own", "default", "growth", "admitted"),
    [
        (0, None, 0, 10**15, True),  # no quota anywhere
        (9, 10, 0, 1, True),  # exactly full
        (9, 10, 0, 2, False),
        (9, None, 10, 2, False),  # the default applies
        (9, 0, 10, 2, True),  # unlimited for this project
        (12, 10, 0, 0, True),  # over already (quota lowered): a replacement that does not grow fits
        (12, 10, 0, -5, True),
        (12, 10, 0, 1, False),
    ],
)
def test_admits(used: int, own: int | None, default: int, growth: int, admitted: bool) -> None:
    record = ProjectRecord(1, "g/p", own_quota=own, used_bytes=used)
    assert record.admits(growth, default) is admitted


def test_the_refusal_names_the_project_and_its_usage() -> None:
    refusal = ProjectRecord(1, "ml/vision", own_quota=10 * GIB, used_bytes=int(9.8 * GIB)).over_quota(0)
    assert (refusal.status, refusal.code) == (413, "quota_exceeded")
    assert refusal.message == "Quota exceeded for ml/vision: 9.8 GiB of 10.0 GiB used"


def test_a_project_being_deleted_is_not_served() -> None:
    ProjectRecord(1, "g/p").require_active()
    with pytest.raises(ProjectDeleted, match="Project g/p was deleted in GitLab"):
        ProjectRecord(1, "g/p", state="deleting").require_active()
