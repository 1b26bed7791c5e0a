"""What GitLab's hook events do to the registry's projects: `project_destroy` queues a project's data for
deletion, renames and transfers move cached paths (recorded in one transaction with the delivery, so a
resend changes nothing); `push` and `merge_request` ask for a data check of a commit (one request per
project and commit, so resends and bursts change nothing either). The worker does the work."""

from __future__ import annotations

from collections.abc import Callable

from app.db.data_checks import DataCheckQueue
from app.db.lifecycle import Lifecycle, LifecycleWrite
from app.db.shared_cache import SharedAuthCache
from app.gitlab.events import HookEvent

Outcome = tuple[str, bool]  # what happened, and whether cached permissions (looked up by path) must go


def _project_destroy(tx: LifecycleWrite, event: HookEvent) -> Outcome:
    assert event.project_id is not None
    queued = tx.request_deletion(event.project_id, event.path, "hook")
    return ("deletion queued" if queued else "already deleted"), False


def _project_moved(tx: LifecycleWrite, event: HookEvent) -> Outcome:
    assert event.project_id is not None and event.path is not None
    tx.rename_project(event.project_id, event.path)
    return ("pending deletion" if event.pending_deletion else "path updated"), True


def _namespace_moved(tx: LifecycleWrite, event: HookEvent) -> Outcome:
    """A group's path, or a user's (a user's namespace is the username), changed."""
    assert event.path is not None and event.old_path is not None
    return f"{tx.rename_namespace(event.old_path, event.path)} paths updated", True


HANDLERS: dict[str, Callable[[LifecycleWrite, HookEvent], Outcome]] = {
    "project_destroy": _project_destroy,
    "project_rename": _project_moved,
    "project_transfer": _project_moved,
    "group_rename": _namespace_moved,
    "user_rename": _namespace_moved,
}


CHECKED_EVENTS = frozenset({"push", "merge_request"})
CHECKS_OFF = "ignored: data checks are off (set REGISTRY_GITLAB_STATUS_TOKEN)"


def _ask_for_check(checks: DataCheckQueue | None, event: HookEvent) -> str:
    if event.sha is None:  # a deleted branch; a merge request closed, merged, approved…
        return "ignored: no new commit"
    if checks is None:
        return CHECKS_OFF
    assert event.project_id is not None
    return checks.request(event.project_id, event.sha, event.ref)


def apply_hook(
    lifecycle: Lifecycle,
    auth_cache: SharedAuthCache,
    event: HookEvent,
    delivery: str | None,
    checks: DataCheckQueue | None = None,
) -> str:
    """Record what a hook delivery means and return the outcome; a delivery already handled changes
    nothing, an event not in HANDLERS is ignored. `checks`: None when data checks are off."""
    if event.name in CHECKED_EVENTS:
        return _ask_for_check(checks, event)
    with lifecycle.writing() as tx:
        if delivery is not None and not tx.first_delivery(delivery, event.name):
            return "duplicate"
        handler = HANDLERS.get(event.name)
        if handler is None:
            return "ignored"
        outcome, moved = handler(tx, event)
    if moved:
        auth_cache.clear()  # answers looked up by an old path must not outlive the move
    return outcome
