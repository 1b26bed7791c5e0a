"""`data-registry doctor URL`: what stands between a credential and a registry URL, in words — who the
credential is (@username), what it may do on the project and why not, whether the URL answers as DVC's
http and webdav remotes and the project's S3 door as its s3 remote (a SigV4-signed listing), the clock
skew, and what could not be checked and why. With no URL, the repository's default DVC remote. DVC
itself only says "missing" when a pull is refused. The credential goes to the URL's origin only
(app/client/session.py)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from app.client.dvc_remote import S3Target, default_remote, s3_target
from app.client.errors import BadURL
from app.client.session import client_session, error_message, left_origin
from app.client.sigv4 import signed_headers
from app.client.urls import DataURL, parse_data_url

ACTIONS = ("read", "write", "delete")
JOB_TOKEN = "CI job token"  # noqa: S105 - the kind's name in whoami, not a secret
JOB_END = "the job's end"  # a CI_JOB_TOKEN is valid only while its job runs (GitLab's CI/CD job token docs)
NO_SERVICE_TOKEN = "the registry has no service token, so deploy tokens cannot be verified"  # noqa: S105
Say = Callable[[str, str], None]


@dataclass
class Report:
    """One run's findings as `doctor --json` prints them: every key is always there (null when that step
    was not reached); the README lists them."""

    url: str
    required: str | None = None
    exit_status: int = 0
    registry: str | None = None
    credential: dict[str, Any] | None = None
    project: dict[str, Any] | None = None
    role: str | None = None
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    clock_skew_seconds: float | None = None
    remotes: dict[str, dict[str, Any] | None] = field(
        default_factory=lambda: {"http": None, "webdav": None, "s3": None}
    )
    not_checked: list[dict[str, str]] = field(default_factory=list)
    findings: list[dict[str, str]] = field(default_factory=list)


def say_line(topic: str, text: str) -> None:
    """A finding as a line of the human report."""
    print(f"{topic:>14}  {text}")


def print_json(report: Report) -> None:
    """The report as one JSON document on stdout."""
    print(json.dumps(asdict(report), indent=2))


def diagnose(
    url: str | None,
    headers: Mapping[str, str],
    say: Say,
    *,
    require: str | None = None,
    report: Report | None = None,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Check everything, saying each finding as (topic, text) and keeping it in `report`; 0 when the URL
    can be read with the credential (and `require`d action is allowed), 1 when something refuses or
    could not be checked, 2 when the URL itself is wrong. No URL: the default DVC remote of the repository
    in the working directory, with the credential its local config holds when none is given."""
    found = report if report is not None else Report(url or "")
    found.required = require
    if url is None:
        try:
            url, token = default_remote(Path.cwd())
        except BadURL as e:
            say("url", str(e))
            found.exit_status = 2
            return 2
        found.url = url
        say("dvc remote", url)
        headers = headers or ({"Authorization": f"Bearer {token}"} if token else {})

    def tell(topic: str, text: str) -> None:
        found.findings.append({"topic": topic, "text": text})
        say(topic, text)

    found.exit_status = _diagnose(url, headers, tell, found, require, session or client_session(), clock)
    return found.exit_status


def _not_checked(report: Report, say: Say, what: str, why: str) -> None:
    report.not_checked.append({"what": what, "why": why})
    say(what, f"not checked: {why}")


def _diagnose(
    url: str,
    headers: Mapping[str, str],
    say: Say,
    report: Report,
    require: str | None,
    http: requests.Session,
    clock: Callable[[], float],
) -> int:
    door = s3_target(url)
    try:
        target = parse_data_url(door.data_url if door else url)
    except BadURL as e:
        say("url", str(e))
        return 2
    report.registry = target.root
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
    whoami: dict[str, Any] = answer.json()
    verified = _say_credential(whoami, {} if elsewhere else headers, say, report)  # what reached it
    project = report.project = whoami["project"]
    report.role = whoami.get("role")
    if project:
        role = f", your role: {report.role}" if report.role else ""
        say("project", f"{project['path']} (id {project['id']}){role}")
    for action in ACTIONS:
        decision = report.access[action] = whoami["access"][action]
        if decision["allowed"]:
            say(action, "yes")
        elif not verified:
            _not_checked(report, say, action, "the credential could not be verified")
        else:
            say(action, f"no: {decision['reason']}")
    server = datetime.fromisoformat(whoami["server_time"]).timestamp()
    skew = report.clock_skew_seconds = round(server - (sent + received) / 2, 3)
    say("clock", f"the registry is {abs(skew):.1f} s {'ahead of' if skew >= 0 else 'behind'} this machine")
    status = 0
    if require and not report.access[require]["allowed"]:
        say("require", f"{require}: not allowed, so this check fails")
        status = 1
    if not report.access["read"]["allowed"]:
        for remote in report.remotes:
            _not_checked(report, say, f"{remote} remote", "the credential may not read the project")
        return 1
    return max(status, _probe_remotes(http, target, door, headers, say, report))


def _expiry(credential: dict[str, Any]) -> str:
    if credential["kind"] == JOB_TOKEN:
        return "valid until the job ends"
    return f"expires {credential['expires_at'][:10]}" if credential["expires_at"] else "no expiry"


def _say_credential(whoami: dict[str, Any], headers: Mapping[str, str], say: Say, report: Report) -> bool:
    """Who the credential is; False when the registry could not check it at all."""
    credential = whoami["credential"]
    if credential is None:
        if headers:
            _not_checked(report, say, "credential", "the registry did not say who it is")
        else:
            say("credential", "anonymous")
        return not headers
    report.credential = {**credential, "valid_until": JOB_END if credential["kind"] == JOB_TOKEN else None}
    if not credential.get("verified", True):
        why = credential.get("unverified_reason") or ""
        unchecked_deploy_token = credential["kind"] == "deploy token" and "service token" in why
        _not_checked(report, say, "credential", NO_SERVICE_TOKEN if unchecked_deploy_token else why)
        return False
    name = credential.get("username")
    if credential["user_id"] is not None:
        who = f"@{name} (user {credential['user_id']})" if name else f"user {credential['user_id']}"
        who = f"of {who}"
    else:
        who = f"{name} (no user)" if name else "of no user"
    scopes = f"; scopes {', '.join(credential['scopes'])}" if credential["scopes"] else ""  # CI tokens: none
    job = f", a job of project {credential['job_project_id']}" if credential["job_project_id"] else ""
    say("credential", f"{credential['kind']} {who}{job}{scopes}; {_expiry(credential)}")
    return True


def _probe_remotes(
    http: requests.Session,
    target: DataURL,
    door: S3Target | None,
    headers: Mapping[str, str],
    say: Say,
    report: Report,
) -> int:
    """A real HEAD (DVC's http remote), PROPFIND (its webdav remote) and signed ListObjectsV2 (its s3
    remote) on the URL. The remote the URL is counts: the S3 door's for an S3 URL, else http and webdav."""
    head = http.head(f"{target.url}/{quote('.data-registry-doctor')}", headers=dict(headers), timeout=30)
    http_ok = _remote(
        "http",
        head.status_code == 404,
        "ok (a HEAD for a missing file answers 404)",
        f"HEAD answered {head.status_code}: {head.headers.get('X-Error', '') or head.reason}",
        say,
        report,
    )
    propfind = http.request(
        "PROPFIND", f"{target.url}/", headers={**headers, "Depth": "0"}, timeout=30, allow_redirects=False
    )
    dav_ok = _remote(  # reading is allowed (checked first), so a 404 is a folder nothing made yet
        "webdav",
        propfind.status_code in (207, 404),
        "ok (PROPFIND answers 207)"
        if propfind.status_code == 207
        else "ok (the folder does not exist yet: DVC's first push makes it)",
        f"PROPFIND answered {propfind.status_code} {propfind.reason}",
        say,
        report,
    )
    s3_ok = _probe_s3(http, door or _door_of(target), headers, say, report)
    if door is not None:
        return 0 if s3_ok else 1
    return 0 if http_ok and dav_ok else 1


def _remote(name: str, ok: bool, good: str, bad: str, say: Say, report: Report) -> bool:
    """Record and say how one remote answered."""
    detail = good if ok else bad
    report.remotes[name] = {"ok": ok, "detail": detail}
    say(f"{name} remote", detail)
    return ok


def _door_of(target: DataURL) -> S3Target:
    """The S3 door of a data URL: the first folder of its path is the bucket."""
    project = f"-/projects/{target.project}" if target.project.isdigit() else f"{target.project}/-"
    found = s3_target(f"{target.root}/{project}/s3/{target.prefix}")
    assert found is not None  # built in s3_target's own shape
    return found


def _token(headers: Mapping[str, str]) -> str | None:
    """The token itself (the door's access key id and secret) from a Bearer or Basic header."""
    value = headers.get("Authorization", "")
    if value.startswith("Bearer "):
        return value.removeprefix("Bearer ").strip()
    if value.startswith("Basic "):
        return base64.b64decode(value.removeprefix("Basic ")).decode().partition(":")[2]
    return None


def _probe_s3(
    http: requests.Session, door: S3Target, headers: Mapping[str, str], say: Say, report: Report
) -> bool:
    """ListObjectsV2 of the bucket (ListBuckets with no bucket), signed with the token as key and secret
    exactly as DVC's s3 remote signs: the signature holds only if nothing between rewrites Host or path."""
    url = f"{door.endpoint}/{door.bucket}" if door.bucket else f"{door.endpoint}/"
    params = {"list-type": "2", "max-keys": "1"} | ({"prefix": f"{door.prefix}/"} if door.prefix else {})
    params = params if door.bucket else {}
    token = _token(headers)
    signed = signed_headers("GET", url, params, token, token) if token else {}
    signed.pop("Host", None)  # requests sends the same Host, from the URL
    answer = http.get(url, params=params, headers=signed, timeout=30, allow_redirects=False)
    code, message = _s3_error(answer.text) if answer.status_code != 200 else ("", "")
    what = f"ListObjectsV2 of bucket {door.bucket}" if door.bucket else "ListBuckets"
    if answer.status_code == 200 and "<List" in answer.text:
        return _remote(
            "s3", True, f"ok ({what} at {door.endpoint} answers, signed with the credential)", "", say, report
        )
    if code == "NoSuchBucket" and door.bucket:  # the project is readable: any folder name is a bucket
        bad = (
            f"{door.bucket} is an object at the top of the project's data, not a folder, so it cannot be the "
            f"bucket: keep DVC's data in another folder, or move that object ({message})"
        )
    elif code == "SignatureDoesNotMatch":
        bad = (
            "the signature does not match: something between here and the registry changes the Host header "
            f"or the path (a proxy); the registry's publicUrl must be what clients use ({message})"
        )
    elif code:
        bad = f"{what} answered {answer.status_code} {code}: {message}"
    else:
        bad = f"{what} answered {answer.status_code} without S3 XML: this registry has no S3 door"
    return _remote("s3", False, "", bad, say, report)


def _s3_error(body: str) -> tuple[str, str]:
    """(Code, Message) of an S3 XML error body; ("", "") when it is none."""
    code = re.search(r"<Code>([^<]*)</Code>", body)
    message = re.search(r"<Message>([^<]*)</Message>", body)
    return (code.group(1), message.group(1) if message else "") if code else ("", "")
