"""The commands to use a dataset or a file of one elsewhere: `dvc get` / `dvc import` of its repository
path at a ref, `data-registry download` of its object, and a Python snippet — each with the credential
passed as DVC expects for the remote in `.dvc/config` that points at this registry (s3 door, http or
webdav), always as `$GITLAB_TOKEN`, never a real token. Pure: no I/O."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from app.dvc_config import Remote

TOKEN = "$GITLAB_TOKEN"  # noqa: S105 - the shell variable's name, never a token


@dataclass(frozen=True)
class Commands:
    """Lines a person copies: shell commands and a Python snippet."""

    install: str
    dvc_get: str
    dvc_import: str
    download: str | None  # None: a directory (data-registry downloads one file)
    python: str
    remote: Remote | None


def _credential(remote: Remote) -> list[tuple[str, str]]:
    """The remote options that carry the GitLab token, as DVC's remote of that kind takes them."""
    if remote.kind == "s3":
        return [("access_key_id", TOKEN), ("secret_access_key", TOKEN)]
    if remote.kind == "webdav":
        return [("token", TOKEN)]
    return [("auth", "custom"), ("custom_auth_header", "Authorization"), ("password", f"Bearer {TOKEN}")]


def _shell(value: str) -> str:
    """A shell word that keeps `$GITLAB_TOKEN` expanding (double quotes) and quotes anything else."""
    if "$" in value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'
    return shlex.quote(value)


def _dvc(verb: str, repo_url: str, path: str, rev: str, remote: Remote | None) -> str:
    words = ["dvc", verb, shlex.quote(repo_url), shlex.quote(path), "--rev", shlex.quote(rev)]
    if remote is not None:
        if not remote.default:
            words += ["--remote", shlex.quote(remote.name)]
        words += ["--remote-config", *(_shell(f"{k}={v}") for k, v in _credential(remote))]
    return " ".join(words)


def _py_value(value: str) -> str:
    """A Python expression for a remote option: the token from the environment where the shell has it."""
    if value == TOKEN:
        return "token"
    head, sep, _ = value.partition(TOKEN)
    return f"{head!r} + token" if sep else repr(value)


def _python(repo_url: str, path: str, rev: str, remote: Remote | None, *, is_dir: bool) -> str:
    options = [f"rev={rev!r}"]
    if remote is not None:
        if not remote.default:
            options.append(f"remote={remote.name!r}")
        pairs = ", ".join(f"{k!r}: {_py_value(v)}" for k, v in _credential(remote))
        options.append(f"remote_config={{{pairs}}}")
    token = 'token = os.environ["GITLAB_TOKEN"]\n' if remote else ""
    os_import = "import os\n\n" if remote else ""
    if is_dir:
        return (
            f"{os_import}from dvc.api import DVCFileSystem\n\n{token}"
            f"fs = DVCFileSystem({repo_url!r}, {', '.join(options)})\n"
            f"fs.get({path!r}, {path.rpartition('/')[2]!r}, recursive=True)  # or fs.open(...) one file\n"
        )
    lines = ",\n    ".join([repr(path), f"repo={repo_url!r}", *options, 'mode="rb"'])
    opened = f"with dvc.api.open(\n    {lines},\n) as f:\n    data = f.read()\n"
    return f"{os_import}import dvc.api\n\n{token}{opened}"


def _install(remote: Remote | None) -> str:
    if remote is None:
        return 'pip install "dvc[all]"'
    return {"s3": 'pip install "dvc[s3]"', "webdav": "pip install dvc dvc-webdav", "http": "pip install dvc"}[
        remote.kind
    ]


def commands(
    *, repo_url: str, path: str, rev: str, remote: Remote | None, object_url: str | None, is_dir: bool
) -> Commands:
    """The commands for the repository path `path` at `rev` (its object at `object_url`, when a file)."""
    name = path.rpartition("/")[2] or path
    download = (
        f"data-registry download {shlex.quote(object_url)} {shlex.quote(name)}"
        if object_url and not is_dir
        else None
    )
    return Commands(
        install=_install(remote),
        dvc_get=_dvc("get", repo_url, path, rev, remote),
        dvc_import=_dvc("import", repo_url, path, rev, remote),
        download=download,
        python=_python(repo_url, path, rev, remote, is_dir=is_dir),
        remote=remote,
    )
