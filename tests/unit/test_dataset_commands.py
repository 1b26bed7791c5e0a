"""The commands to use a dataset elsewhere, for each kind of remote that points here: which remote of
`.dvc/config` is ours (s3 door by its endpoint, http, webdav; the default first), the credential as DVC
takes it for that kind (as `$GITLAB_TOKEN`, expanded by the shell), quoting, and a Python snippet."""

from __future__ import annotations

import ast
import os
import shlex
import subprocess

import pytest

from app.dataset_commands import commands
from app.dvc_config import Remote, our_remote

REPO = "https://gitlab.example.com/ml/vision.git"
S3 = "['remote \"door\"']\n    url = s3://dvc\n    endpointurl = https://data.example.com/ml/vision/-/s3\n"
HTTP = "['remote \"plain\"']\n    url = https://data.example.com/ml/vision/-/data/dvc\n    auth = custom\n"
DAV = "['remote \"dav\"']\n    url = webdavs://data.example.com/-/projects/101/data/dvc\n"


@pytest.mark.parametrize(
    ("config", "found"),
    [
        ("[core]\n    remote = door\n" + S3, Remote("door", "s3", "s3://dvc", True, "dvc")),
        (HTTP, Remote("plain", "http", "https://data.example.com/ml/vision/-/data/dvc", False, "dvc")),
        (DAV, Remote("dav", "webdav", "webdavs://data.example.com/-/projects/101/data/dvc", False, "dvc")),
        (
            "[core]\n    remote = plain\n" + S3 + HTTP,
            Remote("plain", "http", "https://data.example.com/ml/vision/-/data/dvc", True, "dvc"),
        ),
        ("['remote \"aws\"']\n    url = s3://bucket/dvc\n", None),  # AWS itself
        (S3.replace("ml/vision", "ml/other"), None),
        (HTTP.replace("ml/vision", "ml/other"), None),
        ("not [ an ini", None),
        ("", None),
    ],
)
def test_the_remote_that_points_here(config: str, found: Remote | None) -> None:
    assert our_remote(config.encode(), "ML/Vision", 101) == found


def _shell_words(line: str) -> list[str]:
    """The words a POSIX shell passes to the command, with GITLAB_TOKEN set."""
    script = "set -- " + line + '; for w in "$@"; do printf "%s\\0" "$w"; done'
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        check=True,
        env={**os.environ, "GITLAB_TOKEN": "glpat-xyz"},
    )
    return done.stdout.decode().split("\0")[:-1]


@pytest.mark.parametrize(
    ("remote", "options"),
    [
        (
            Remote("door", "s3", "s3://dvc", True, "dvc"),
            ["access_key_id=glpat-xyz", "secret_access_key=glpat-xyz"],
        ),
        (Remote("dav", "webdav", "webdavs://x/ml/vision/-/data", True), ["token=glpat-xyz"]),
        (
            Remote("plain", "http", "https://x/ml/vision/-/data", True),
            ["auth=custom", "custom_auth_header=Authorization", "password=Bearer glpat-xyz"],
        ),
    ],
)
def test_dvc_get_and_import_pass_the_token_as_the_remote_takes_it(remote: Remote, options: list[str]) -> None:
    made = commands(
        repo_url=REPO, path="data/my images", rev="v1", remote=remote, object_url=None, is_dir=True
    )
    assert "glpat" not in made.dvc_get + made.python
    for verb, line in (("get", made.dvc_get), ("import", made.dvc_import)):
        assert _shell_words(line) == [
            "dvc",
            verb,
            REPO,
            "data/my images",
            "--rev",
            "v1",
            "--remote-config",
            *options,
        ]
    assert made.download is None  # a directory: data-registry downloads one file
    assert remote.kind in made.install or remote.kind == "http"


def test_a_remote_that_is_not_the_default_is_named() -> None:
    remote = Remote("door", "s3", "s3://dvc", default=False)
    made = commands(repo_url=REPO, path="model.pkl", rev="main", remote=remote, object_url=None, is_dir=False)
    assert shlex.split(made.dvc_get)[6:9] == ["--remote", "door", "--remote-config"]
    assert "remote='door'" in made.python


def test_without_a_remote_here_the_default_remote_is_used() -> None:
    made = commands(repo_url=REPO, path="model.pkl", rev="main", remote=None, object_url=None, is_dir=False)
    assert shlex.split(made.dvc_get) == ["dvc", "get", REPO, "model.pkl", "--rev", "main"]
    assert "GITLAB_TOKEN" not in made.python


def test_a_file_has_its_download_line() -> None:
    url = "https://data.example.com/ml/vision/-/data/dvc/files/md5/ab/cdef"
    remote = Remote("plain", "http", "https://x/ml/vision/-/data", True)
    made = commands(repo_url=REPO, path="data/a b.csv", rev="v1", remote=remote, object_url=url, is_dir=False)
    assert made.download is not None
    assert shlex.split(made.download) == ["data-registry", "download", url, "a b.csv"]


@pytest.mark.parametrize("kind", ["s3", "http", "webdav"])
@pytest.mark.parametrize("is_dir", [True, False])
def test_the_python_snippet_is_python(kind: str, is_dir: bool) -> None:
    remote = Remote("r", kind, "u", True)  # type: ignore[arg-type]
    made = commands(
        repo_url=REPO, path="data/it's.csv", rev="v1", remote=remote, object_url=None, is_dir=is_dir
    )
    tree = ast.parse(made.python)
    assert 'os.environ["GITLAB_TOKEN"]' in made.python
    names = {
        n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    assert ("get" in names) if is_dir else ("open" in names)
    assert "data/it's.csv" in {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
