"""Shared by the outside-client suites (litmus, rclone, webdav4, DVC's webdav remote): the Debian tools they
need, a fresh WebDAV folder of a project, and what the registry's access log says a client sent."""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid

import pytest
import requests

from scripts.harness import RegistryServer
from tests.conftest import TOKENS

PROJECT, PROJECT_ID = "ml/vision", 101


def require_tool(name: str) -> str:
    """The path of a Debian tool the suite drives; missing fails in CI (.ci/run installs it), else skips."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI: .ci/run installs Debian's {name}")
        pytest.skip(f"no {name}: apt-get install {name}")
    return path


def fresh_folder(registry: RegistryServer, label: str, role: str = "maintainer") -> str:
    """A new, empty collection of the project (MKCOL), as a URL ending in '/'."""
    url = f"{registry.url}/{PROJECT}/-/data/{label}-{uuid.uuid4().hex[:8]}/"
    made = requests.request("MKCOL", url, auth=("anyone", TOKENS[role]), timeout=30)
    assert made.status_code == 201, f"MKCOL {url}: {made.status_code} {made.text}"
    return url


def access_lines(registry: RegistryServer, since: int, path_part: str) -> list[str]:
    """The access-log lines written after line `since` whose request line names path_part (once the log
    has stopped growing: a worker writes its line just after the client got the answer)."""
    lines, deadline = registry.log_text().splitlines(), time.monotonic() + 2
    while time.monotonic() < deadline:
        time.sleep(0.1)
        again = registry.log_text().splitlines()
        if len(again) == len(lines):
            break
        lines = again
    lines = lines[since:]
    return [line for line in lines if path_part in line and re.search(r'"[A-Z]+ /', line)]


def methods(lines: list[str]) -> list[str]:
    """The HTTP methods of access-log lines ('"PUT /path HTTP/1.1" 201 ...')."""
    return [m.group(1) for line in lines if (m := re.search(r'"([A-Z]+) /', line))]
