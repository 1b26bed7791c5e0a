"""The permission matrix of DESIGN.md 3.3 as one pure function: grant × action → allow, or raise why not."""

from __future__ import annotations

from app.errors import AuthenticationRequired, PermissionDenied
from app.model.identity import AccessLevel, Action, Actor, CredentialKind, Grant
from app.model.projects import Visibility

_VERB = {Action.READ: "read from", Action.WRITE: "write to", Action.DELETE: "delete from"}

# The lowest role an actor needs, by project visibility (reads) or by action (writes and deletes).
_READ_ROLE = {
    Visibility.PUBLIC: AccessLevel.NO_ACCESS,
    Visibility.INTERNAL: AccessLevel.NO_ACCESS,  # any signed-in user
    Visibility.PRIVATE: AccessLevel.REPORTER,
}
_CHANGE_ROLE = {Action.WRITE: AccessLevel.DEVELOPER, Action.DELETE: AccessLevel.MAINTAINER}

# Token scopes that allow an action, by credential kind (GitLab's package-registry rules). Kinds not
# listed (job and ID tokens) carry no scopes: the job's user's role decides.
_API_SCOPES = {
    Action.READ: frozenset({"read_api", "api"}),
    Action.WRITE: frozenset({"api"}),
    Action.DELETE: frozenset({"api"}),
}
_SCOPES = {
    CredentialKind.ACCESS_TOKEN: _API_SCOPES,
    CredentialKind.OAUTH_TOKEN: _API_SCOPES,
    CredentialKind.DEPLOY_TOKEN: {
        Action.READ: frozenset({"read_package_registry"}),
        Action.WRITE: frozenset({"write_package_registry"}),
        Action.DELETE: frozenset(),  # a deploy token has no role, and deleting needs Maintainer
    },
}
_CI_KINDS = (CredentialKind.JOB_TOKEN, CredentialKind.ID_TOKEN)


def required_role(visibility: Visibility, action: Action) -> AccessLevel:
    """The lowest GitLab role that may perform `action` on a project of this visibility."""
    return _READ_ROLE[visibility] if action is Action.READ else _CHANGE_ROLE[action]


def decide(
    grant: Grant, action: Action, *, anonymous_reads: bool = True, id_token_protected_writes: bool = False
) -> None:
    """Return when the grant allows the action; raise AuthenticationRequired or PermissionDenied."""
    project, actor, verb = grant.project, grant.actor, _VERB[action]
    if actor is None:
        if action is Action.READ and project.visibility is Visibility.PUBLIC and anonymous_reads:
            return
        raise AuthenticationRequired(f"Authentication required to {verb} {project.path}")
    if actor.kind in _SCOPES:
        allowed_scopes = _SCOPES[actor.kind][action]
        if not actor.scopes & allowed_scopes:
            if not allowed_scopes:
                raise PermissionDenied(
                    f"A {actor.kind.value} cannot {verb.split()[0]} objects: Maintainer role required"
                )
            names = " or ".join(sorted(allowed_scopes))
            raise PermissionDenied(f"Token scope {names} required to {verb} {project.path}")
    if action is not Action.READ and project.archived:
        raise PermissionDenied(f"Project {project.path} is archived and read-only")
    if actor.kind is CredentialKind.DEPLOY_TOKEN:
        return  # scopes alone decide; the token belongs to this project or one of its groups
    if actor.kind in _CI_KINDS:
        _decide_ci(grant, action, id_token_protected_writes=id_token_protected_writes)
    needed = required_role(project.visibility, action)
    if grant.role < needed:
        raise PermissionDenied(f"{needed.title} role required to {verb} {project.path}")


def _decide_ci(grant: Grant, action: Action, *, id_token_protected_writes: bool) -> None:
    """Where a CI job's token reaches: its own project; other projects per GitLab's job-token rules."""
    project, actor, verb = grant.project, grant.actor, _VERB[action]
    assert actor is not None
    own = actor.job_project_id == project.id
    if actor.kind is CredentialKind.ID_TOKEN:
        if not own:
            raise PermissionDenied(f"A CI ID token only reaches its own project, not {project.path}")
        if action is not Action.READ and id_token_protected_writes and not actor.protected_ref:
            raise PermissionDenied(f"Only jobs on protected branches or tags may {verb} {project.path}")
        return
    if own or grant.allowlisted:
        return
    # GitLab lets non-allowlisted jobs pull packages of public and internal projects, nothing more.
    if action is Action.READ and project.visibility is not Visibility.PRIVATE:
        return
    raise PermissionDenied(
        f"The job-token allowlist of {project.path} does not let this job {verb.split()[0]} it"
    )


def hides_project(grant: Grant) -> bool:
    """Whether the project's existence is to be kept from a CI job's token: a private project, not the
    job's own, that it may not even read must look like one that does not exist. (User tokens see a
    project through GitLab's eyes, which answered 404 already; deploy tokens are refused as such when
    they are not the project's.)"""
    actor = grant.actor
    if (
        actor is None
        or actor.kind not in _CI_KINDS
        or grant.project.visibility is not Visibility.PRIVATE
        or actor.job_project_id == grant.project.id
    ):
        return False
    try:
        decide(grant, Action.READ)
    except PermissionDenied:
        return True
    return False


def decide_admin(
    actor: Actor, is_admin: bool, username: str, action: Action, admin_users: frozenset[str]
) -> None:
    """Admin endpoints: a GitLab administrator (or a user on the registry's admin list) with a user token
    whose scopes allow the action; raise PermissionDenied otherwise."""
    allowed_scopes = _API_SCOPES[action]
    if not actor.scopes & allowed_scopes:
        names = " or ".join(sorted(allowed_scopes))
        raise PermissionDenied(f"Token scope {names} required for admin endpoints")
    if not is_admin and username not in admin_users:
        raise PermissionDenied("GitLab administrator required (or REGISTRY_ADMIN_USERS)")
