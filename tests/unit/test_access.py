"""The permission matrix of DESIGN.md 3.3, written as data next to the table it copies."""

from __future__ import annotations

import pytest

from app.access import decide
from app.errors import AuthenticationRequired, PermissionDenied
from app.model.identity import AccessLevel, Action, Actor, CredentialKind, Grant
from app.model.projects import Project, Visibility

R, W, D = Action.READ, Action.WRITE, Action.DELETE
NONE, GUEST, REPORTER = AccessLevel.NO_ACCESS, AccessLevel.GUEST, AccessLevel.REPORTER
DEV, MAINT, OWNER = AccessLevel.DEVELOPER, AccessLevel.MAINTAINER, AccessLevel.OWNER

# | visibility | read                  | write      | delete      |
# | public     | anyone (configurable) | Developer+ | Maintainer+ |
# | internal   | any signed-in user    | Developer+ | Maintainer+ |
# | private    | Reporter+             | Developer+ | Maintainer+ |
ALLOWED = {
    # visibility: {role: set of allowed actions} for a token with scope api
    Visibility.PUBLIC: {
        NONE: {R},
        GUEST: {R},
        REPORTER: {R},
        DEV: {R, W},
        MAINT: {R, W, D},
        OWNER: {R, W, D},
    },
    Visibility.INTERNAL: {
        NONE: {R},
        GUEST: {R},
        REPORTER: {R},
        DEV: {R, W},
        MAINT: {R, W, D},
        OWNER: {R, W, D},
    },
    Visibility.PRIVATE: {
        NONE: set(),
        GUEST: set(),
        REPORTER: {R},
        DEV: {R, W},
        MAINT: {R, W, D},
        OWNER: {R, W, D},
    },
}


def grant(
    visibility: Visibility,
    role: AccessLevel,
    scopes: set[str] | None = None,
    archived: bool = False,
) -> Grant:
    actor = Actor(kind=CredentialKind.ACCESS_TOKEN, user_id=7, scopes=frozenset(scopes or {"api"}))
    return Grant(project=Project(1, "g/p", visibility, archived), actor=actor, role=role)


CASES = [(v, role, a) for v, roles in ALLOWED.items() for role in roles for a in (R, W, D)]


@pytest.mark.parametrize(("visibility", "role", "action"), CASES)
def test_matrix(visibility: Visibility, role: AccessLevel, action: Action) -> None:
    g = grant(visibility, role)
    if action in ALLOWED[visibility][role]:
        decide(g, action)
    else:
        with pytest.raises(PermissionDenied, match="role required to"):
            decide(g, action)


def test_denial_names_the_role_needed() -> None:
    with pytest.raises(PermissionDenied, match=r"^Developer role required to write to g/p$"):
        decide(grant(Visibility.PRIVATE, REPORTER), W)


@pytest.mark.parametrize(
    ("visibility", "ok"),
    [(Visibility.PUBLIC, True), (Visibility.INTERNAL, False), (Visibility.PRIVATE, False)],
)
def test_anonymous_reads_only_public(visibility: Visibility, ok: bool) -> None:
    anonymous = Grant(project=Project(1, "g/p", visibility), actor=None)
    if ok:
        decide(anonymous, R)
    else:
        with pytest.raises(AuthenticationRequired):
            decide(anonymous, R)
    with pytest.raises(AuthenticationRequired):
        decide(anonymous, W)


def test_anonymous_public_reads_can_be_switched_off() -> None:
    anonymous = Grant(project=Project(1, "g/p", Visibility.PUBLIC), actor=None)
    with pytest.raises(AuthenticationRequired):
        decide(anonymous, R, anonymous_reads=False)


def test_read_api_scope_reads_but_cannot_write() -> None:
    g = grant(Visibility.PRIVATE, MAINT, scopes={"read_api"})
    decide(g, R)
    with pytest.raises(PermissionDenied, match="Token scope api required to write to g/p"):
        decide(g, W)


def test_token_without_api_scopes_cannot_read() -> None:
    with pytest.raises(PermissionDenied, match="api or read_api"):
        decide(grant(Visibility.PUBLIC, OWNER, scopes={"read_repository"}), R)


def test_archived_projects_are_read_only() -> None:
    g = grant(Visibility.PRIVATE, OWNER, archived=True)
    decide(g, R)
    for action in (W, D):
        with pytest.raises(PermissionDenied, match="archived"):
            decide(g, action)
