"""Grants and GitLab's denials as JSON, the form the shared auth cache stores (never a secret)."""

from __future__ import annotations

import json
from datetime import datetime

from app.errors import (
    CredentialExpired,
    CredentialRevoked,
    InvalidCredential,
    PermissionDenied,
    ProjectNotFound,
    RegistryError,
)
from app.model.identity import AccessLevel, Actor, CredentialKind, Grant
from app.model.projects import Project, Visibility

_SHAREABLE_ERRORS: dict[str, type[RegistryError]] = {
    cls.__name__: cls
    for cls in (InvalidCredential, CredentialExpired, CredentialRevoked, ProjectNotFound, PermissionDenied)
}


def encode(value: Grant | RegistryError) -> str:
    """JSON for the shared cache: a grant, or a denial GitLab gave."""
    if isinstance(value, RegistryError):
        return json.dumps({"error": type(value).__name__, "message": value.message})
    actor = value.actor
    return json.dumps(
        {
            "project": [
                value.project.id,
                value.project.path,
                value.project.visibility.value,
                value.project.archived,
            ],
            "actor": None
            if actor is None
            else {
                "kind": actor.kind.name,
                "user_id": actor.user_id,
                "scopes": sorted(actor.scopes),
                "expires_at": actor.expires_at.isoformat() if actor.expires_at else None,
                "job_project_id": actor.job_project_id,
                "protected_ref": actor.protected_ref,
            },
            "role": int(value.role),
            "allowlisted": value.allowlisted,
        }
    )


def decode(payload: str) -> Grant | RegistryError:
    """What `encode` stored."""
    data = json.loads(payload)
    if "error" in data:
        return _SHAREABLE_ERRORS.get(data["error"], InvalidCredential)(data["message"])
    project_id, path, visibility, archived = data["project"]
    actor = data["actor"]
    return Grant(
        project=Project(project_id, path, Visibility(visibility), archived),
        actor=None
        if actor is None
        else Actor(
            kind=CredentialKind[actor["kind"]],
            user_id=actor["user_id"],
            scopes=frozenset(actor["scopes"]),
            expires_at=datetime.fromisoformat(actor["expires_at"]) if actor["expires_at"] else None,
            job_project_id=actor["job_project_id"],
            protected_ref=actor["protected_ref"],
        ),
        role=AccessLevel(data["role"]),
        allowlisted=data["allowlisted"],
    )
