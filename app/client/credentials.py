"""The headers a token travels in: to the registry (Bearer, or Basic with a user) and to GitLab's package
API (the header its kind takes)."""

from __future__ import annotations

import base64


def credential_headers(token: str | None, user: str | None) -> dict[str, str]:
    """Basic when a user is given (deploy tokens, `gitlab-ci-token`), else Bearer; none for anonymous."""
    if not token:
        return {}
    if user:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}
    return {"Authorization": f"Bearer {token}"}


def gitlab_headers(token: str | None) -> dict[str, str]:
    """The header GitLab's package API takes for the token's kind (by its prefix)."""
    if not token:
        return {}
    if token.startswith("gldt-"):
        return {"Deploy-Token": token}
    if token.startswith("glcbt-"):
        return {"Job-Token": token}
    return {"Private-Token": token}
