"""`data-registry doctor URL`: what stands between a credential and a registry URL, in words — who the
credential is, what it may do on the project and why not, whether the URL answers as DVC's http and
webdav remotes, and the clock skew. DVC itself only says "missing" when a pull is refused. The credential
goes to the URL's origin only (app/client/session.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from app.client.errors import BadURL
from app.client.session import client_session, error_message, left_origin
from app.client.urls import DataURL, parse_data_url


def diagnose(
    url: str,
    headers: Mapping[str, str],
    say: Callable[[str, str], None],
    *,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Check everything, saying each finding as (topic, text); 0 when the URL can be read with the
    credential, 1 when something refuses, 2 when the URL itself is wrong."""
    http = session or client_session()
    try:
        target = parse_data_url(url)
    except BadURL as e:
        say("url", str(e))
        return 2
    say("registry", target.root)
    sent = clock()
    try:
        answer = http.get(
            f"{target.root}/api/v1/whoami",
            params={"project": target.project},
            headers=dict(headers),
            timeout=30,
        )
    except requests.RequestException as e:
        say("registry", f"no answer: {e.__class__.__name__}")
        return 1
    received = clock()
    elsewhere = left_origin(answer)
    if elsewhere:
        say("registry", f"redirected to another origin, {elsewhere}: the credential was not sent there")
    if answer.status_code == 401:
        say("credential", f"refused: {error_message(answer)}")
        return 1
    if answer.status_code != 200:
        say("registry", f"whoami answered {error_message(answer)}")
        return 1
    found: dict[str, Any] = answer.json()
    _say_credential(found, {} if elsewhere else headers, say)  # what reached the registry
    access = found["access"]
    project = found["project"]
    if project:
        role = f", your role: {found['role']}" if found.get("role") else ""
        say("project", f"{project['path']} (id {project['id']}){role}")
    for action in ("read", "write", "delete"):
        decision = access[action]
        say(action, "yes" if decision["allowed"] else f"no: {decision['reason']}")
    server = datetime.fromisoformat(found["server_time"]).timestamp()
    skew = server - (sent + received) / 2
    say("clock", f"the registry is {abs(skew):.1f} s {'ahead of' if skew >= 0 else 'behind'} this machine")
    if not access["read"]["allowed"]:
        return 1
    return _probe_remotes(http, target, headers, say)


def _say_credential(
    found: dict[str, Any], headers: Mapping[str, str], say: Callable[[str, str], None]
) -> None:
    credential = found["credential"]
    if credential is None:
        say("credential", "anonymous" if not headers else "accepted (who it is shows only with read access)")
        return
    who = f"user {credential['user_id']}" if credential["user_id"] is not None else "no user"
    scopes = ", ".join(credential["scopes"]) or "none"
    expires = f", expires {credential['expires_at'][:10]}" if credential["expires_at"] else ", no expiry"
    job = f", a job of project {credential['job_project_id']}" if credential["job_project_id"] else ""
    say("credential", f"{credential['kind']} of {who}{job}; scopes {scopes}{expires}")


def _probe_remotes(
    http: requests.Session, target: DataURL, headers: Mapping[str, str], say: Callable[[str, str], None]
) -> int:
    """A real HEAD (DVC's http remote) and PROPFIND (its webdav remote) on the URL."""
    status = 0
    head = http.head(f"{target.url}/{quote('.data-registry-doctor')}", headers=dict(headers), timeout=30)
    if head.status_code == 404:
        say("http remote", "ok (a HEAD for a missing file answers 404)")
    else:
        say(
            "http remote",
            f"HEAD answered {head.status_code}: {head.headers.get('X-Error', '') or head.reason}",
        )
        status = 1
    propfind = http.request(
        "PROPFIND", f"{target.url}/", headers={**headers, "Depth": "0"}, timeout=30, allow_redirects=False
    )
    if propfind.status_code == 207:
        say("webdav remote", "ok (PROPFIND answers 207)")
    else:
        say("webdav remote", f"PROPFIND answered {propfind.status_code} {propfind.reason}")
        status = 1
    return status
