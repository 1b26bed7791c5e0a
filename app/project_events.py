"""What GitLab's hook events do to the registry's projects: `project_destroy` queues a project's data for
deletion, renames and transfers move cached paths. Recorded in one transaction with the delivery (so a
resend changes nothing); the worker does the deleting."""

from __future__ import annotations

from collections.abc import Callable

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


def apply_hook(
    lifecycle: Lifecycle, auth_cache: SharedAuthCache, event: HookEvent, delivery: str | None
) -> str:
    """Record what a hook delivery means and return the outcome; a delivery already handled changes
    nothing, an event not in HANDLERS is ignored."""
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
