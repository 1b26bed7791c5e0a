"""The outside S3 clients the suite drives against the S3 door: the aws CLI, DVC's s3 remote, s3fs + pandas
and DuckDB's httpfs from the tools venv `.tools/dvc-s3` (scripts/bootstrap makes it from
requirements-s3-clients.txt: dvc-s3 and s3fs pin a botocore of their own), and Debian's rclone; each in a
clean environment whose key pair is one role's GitLab token."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from scripts.harness import RegistryServer
from tests.conftest import TOKENS
from tests.e2e.dav_clients import PROJECT, require_tool

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "dvc-s3" / "bin"
REGION = "us-east-1"
AWS_CONFIG = f"[default]\nregion = {REGION}\n"  # default settings: a path in the endpoint means path style


def require_tools() -> Path:
    """The tools venv's bin folder; missing fails in CI (scripts/bootstrap test makes it), else skips."""
    missing = [name for name in ("aws", "dvc", "python") if not (TOOLS / name).exists()]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing from {TOOLS}: scripts/bootstrap test installs them")
        pytest.skip(f"no {', '.join(missing)} in {TOOLS}: run scripts/bootstrap test")
    return TOOLS


def unique(label: str) -> str:
    """A bucket name of its own for one test (lowercase letters and digits, as S3 wants them)."""
    return f"{label}{uuid.uuid4().hex[:8]}"


def endpoint(registry: RegistryServer) -> str:
    """The project's S3 endpoint under a host *name*, as users have it (an IP address alone would make
    every client choose path style, whatever its settings)."""
    return f"{registry.url.replace('//127.0.0.1:', '//localhost:')}/{PROJECT}/-/s3"


def data_url(registry: RegistryServer, path: str) -> str:
    return f"{registry.url}/{PROJECT}/-/data/{path}"


def plane_get(registry: RegistryServer, path: str, role: str = "reporter") -> requests.Response:
    return requests.get(
        data_url(registry, path), headers={"Authorization": f"Bearer {TOKENS[role]}"}, timeout=60
    )


def client_env(home: Path, role: str) -> dict[str, str]:
    """Nothing of this machine's environment (its AWS_CA_BUNDLE breaks rclone, a proxy would catch 127.0.0.1):
    a home of its own, the role's token as both halves of the key pair, path-style addressing."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "aws-config").write_text(AWS_CONFIG)
    token = TOKENS[role]
    return {
        "PATH": f"{TOOLS}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": token,
        "AWS_SECRET_ACCESS_KEY": token,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
    }


def run(
    args: list[str], env: dict[str, str], *, cwd: Path | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    if ok and done.returncode:
        pytest.fail(
            f"{' '.join(args[:6])}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return done


class Aws:
    """The aws CLI (v1, default settings but path style) against the project's S3 endpoint, as one role."""

    def __init__(self, registry: RegistryServer, home: Path, role: str, *, secret: str | None = None) -> None:
        self.env = client_env(home / f"aws-{role}", role)
        if secret is not None:
            self.env["AWS_SECRET_ACCESS_KEY"] = secret
        self.endpoint = endpoint(registry)

    def s3(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run([str(TOOLS / "aws"), "--endpoint-url", self.endpoint, "s3", *args], self.env, ok=ok)

    def keys(self, url: str) -> dict[str, int]:
        """`aws s3 ls --recursive`: key → size (an empty listing exits 1)."""
        listed = self.s3("ls", "--recursive", url, ok=False)
        assert listed.returncode in (0, 1), listed.stderr
        rows = [line.split(None, 3) for line in listed.stdout.splitlines()]
        return {key: int(size) for _day, _time, size, key in rows}


class ToolsDvc:
    """The real dvc with dvc-s3 (and dvc-http) from the tools venv, in one workspace."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.env, self.http_role = root, client_env(home, "reporter"), "reporter"
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the remote's config.local says who
            del self.env[key]

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run([str(TOOLS / "dvc"), *args], self.env, cwd=self.root, ok=ok)

    def remotes(self, registry: RegistryServer, bucket: str, *, s3_role: str, http_role: str) -> None:
        """Two remotes on one prefix, written as `dvc remote add/modify` writes them (a dvc call costs a
        second): `door`, the default, DVC's s3 remote through the S3 door; `plane`, its http remote."""
        (self.root / ".dvc" / "config").write_text(
            "[core]\n    no_scm = True\n    remote = door\n"
            f"['remote \"door\"']\n    url = s3://{bucket}\n    endpointurl = {endpoint(registry)}\n"
            f"['remote \"plane\"']\n    url = {data_url(registry, bucket)}\n    auth = custom\n"
            "    custom_auth_header = Authorization\n"
        )
        self.http_role = http_role
        self.as_role(s3_role)

    def as_role(self, role: str) -> None:
        """The s3 remote's key pair (in .dvc/config.local, as `dvc remote modify --local` puts it)."""
        token = TOKENS[role]
        (self.root / ".dvc" / "config.local").write_text(
            f"['remote \"door\"']\n    access_key_id = {token}\n    secret_access_key = {token}\n"
            f"['remote \"plane\"']\n    password = Bearer {TOKENS[self.http_role]}\n"
        )


def tools_python(script: str, home: Path, role: str, *, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """A Python script run by the tools venv's interpreter (pandas, s3fs, DuckDB), as one role."""
    return run([str(TOOLS / "python"), "-c", script], client_env(home / f"py-{role}", role), ok=ok)


class RcloneS3:
    """Debian's rclone with one s3 remote `s3:` (provider Other, path style) set by RCLONE_CONFIG_S3_*."""

    def __init__(self, registry: RegistryServer, home: Path, role: str) -> None:
        self.binary = require_tool("rclone")
        home.mkdir(parents=True, exist_ok=True)
        (home / "rclone.conf").touch()
        token = TOKENS[role]
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "RCLONE_CONFIG": str(home / "rclone.conf"),
            "RCLONE_CONFIG_S3_TYPE": "s3",
            "RCLONE_CONFIG_S3_PROVIDER": "Other",
            "RCLONE_CONFIG_S3_ENDPOINT": endpoint(registry),
            "RCLONE_CONFIG_S3_ACCESS_KEY_ID": token,
            "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": token,
            "RCLONE_CONFIG_S3_REGION": REGION,
            "RCLONE_CONFIG_S3_FORCE_PATH_STYLE": "true",
        }

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run([self.binary, "--retries", "1", "--low-level-retries", "2", *args], self.env, ok=ok)
