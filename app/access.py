"""The permission matrix of DESIGN.md 3.3 as one pure function: grant × action → allow, or raise why not."""

from __future__ import annotations

from app.errors import AuthenticationRequired, PermissionDenied
from app.model import AccessLevel, Action, CredentialKind, Grant, Visibility

_VERB = {Action.READ: "read from", Action.WRITE: "write to", Action.DELETE: "delete from"}

# The lowest role an actor needs, by project visibility (reads) or by action (writes and deletes).
_READ_ROLE = {
    Visibility.PUBLIC: AccessLevel.NO_ACCESS,
    Visibility.INTERNAL: AccessLevel.NO_ACCESS,  # any signed-in user
    Visibility.PRIVATE: AccessLevel.REPORTER,
}
_CHANGE_ROLE = {Action.WRITE: AccessLevel.DEVELOPER, Action.DELETE: AccessLevel.MAINTAINER}

# Token scopes that allow an action, by credential kind (GitLab's package-registry rules).
_SCOPES = {
    CredentialKind.ACCESS_TOKEN: {
        Action.READ: frozenset({"read_api", "api"}),
        Action.WRITE: frozenset({"api"}),
        Action.DELETE: frozenset({"api"}),
    },
}


def required_role(visibility: Visibility, action: Action) -> AccessLevel:
    """The lowest GitLab role that may perform `action` on a project of this visibility."""
    return _READ_ROLE[visibility] if action is Action.READ else _CHANGE_ROLE[action]


def decide(grant: Grant, action: Action, *, anonymous_reads: bool = True) -> None:
    """Return when the grant allows the action; raise AuthenticationRequired or PermissionDenied."""
    project, actor, verb = grant.project, grant.actor, _VERB[action]
    if actor is None:
        if action is Action.READ and project.visibility is Visibility.PUBLIC and anonymous_reads:
            return
        raise AuthenticationRequired(f"Authentication required to {verb} {project.path}")
    allowed_scopes = _SCOPES[actor.kind][action]
    if not actor.scopes & allowed_scopes:
        names = " or ".join(sorted(allowed_scopes))
        raise PermissionDenied(f"Token scope {names} required to {verb} {project.path}")
    if action is not Action.READ and project.archived:
        raise PermissionDenied(f"Project {project.path} is archived and read-only")
    needed = required_role(project.visibility, action)
    if grant.role < needed:
        raise PermissionDenied(f"{needed.title} role required to {verb} {project.path}")
