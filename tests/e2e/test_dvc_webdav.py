"""The real `dvc` + `dvc-webdav` against the registry under gunicorn: the same objects as the http
remote, run-cache, remote garbage collection, redirected downloads, and refusals DVC shows."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import pytest
import requests

from scripts.harness import RegistryServer
from tests.conftest import TOKENS
from tests.e2e.dvc import Dvc, same_tree

pytestmark = pytest.mark.e2e
STAGE = "sh -c 'echo ran >> ran.log; tr a-z A-Z < small.txt > out.txt'"


def dav_url(registry: RegistryServer, prefix: str) -> str:
    return registry.url.replace("http://", "webdav://") + f"/ml/vision/-/data/{prefix}"


def add_dav_remote(dvc: Dvc, name: str, url: str, token: str, *, basic: bool = False) -> None:
    dvc.run("remote", "add", name, url)
    if basic:
        dvc.run("remote", "modify", name, "user", "dvc-user")
        dvc.run("remote", "modify", "--local", name, "password", token)
    else:
        dvc.run("remote", "modify", "--local", name, "token", token)


@pytest.fixture
def project(tmp_path: Path) -> Dvc:
    """A workspace with a directory, a bigger file and one stage (so there is a run-cache entry)."""
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    for i in range(40):
        (root / "data" / f"{i}.bin").write_bytes(os.urandom(200 + i * 30))
    (root / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    (root / "small.txt").write_text("hello run cache\n")
    dvc = Dvc(root)
    dvc.run("init", "--no-scm")
    dvc.run("add", "data", "big.bin", "small.txt")
    dvc.run("stage", "add", "-n", "upper", "-d", "small.txt", "-o", "out.txt", STAGE)
    dvc.run("repro")
    (root / "ran.log").unlink()
    return dvc


def test_push_status_pull_fetch(registry: RegistryServer, project: Dvc, tmp_path: Path) -> None:
    original = tmp_path / "original"
    shutil.copytree(project.root / "data", original)
    add_dav_remote(project, "dav", dav_url(registry, "dav-basic"), TOKENS["developer"], basic=True)
    pushed = project.run("push", "-r", "dav")
    assert "files pushed" in pushed.stdout, pushed.stdout
    assert "in sync" in project.run("status", "-c", "-r", "dav").stdout

    project.forget_local_data()
    project.run("pull", "-r", "dav")
    assert same_tree(original, project.root / "data")
    shutil.rmtree(project.root / ".dvc" / "cache")
    assert "files fetched" in project.run("fetch", "-r", "dav").stdout

    # REGISTRY_DOWNLOAD_MODE=auto: big.bin (2 MiB) was redirected to a signed URL, the small files were
    # streamed by the registry (one round trip each)
    statuses = re.findall(r'"GET /ml/vision/-/data/dav-basic/[^ ]* HTTP/1.1" (\d+)', registry.log_text())
    assert "302" in statuses and "200" in statuses and "206" not in statuses


def test_run_cache_round_trip(registry: RegistryServer, project: Dvc, tmp_path: Path) -> None:
    add_dav_remote(project, "dav", dav_url(registry, "dav-runs"), TOKENS["developer"])
    project.run("push", "--run-cache", "-r", "dav")
    # a run-cache entry is not a content address: a version key of its own, the path readable in it
    runs = [p for p in (registry.storage / "versions" / "101").rglob("*") if p.is_file()]
    assert any("/dav-runs/runs/" in p.as_posix() for p in runs), "the run-cache entry was not pushed"

    clone = Dvc(tmp_path / "clone")
    clone.root.mkdir()
    shutil.copytree(project.root / ".dvc", clone.root / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    for name in ("dvc.yaml", "small.txt.dvc", "small.txt"):
        shutil.copy(project.root / name, clone.root / name)
    # No dvc.lock in the clone: out.txt has no hash, only the run-cache knows how to get it.
    clone.run("pull", "--run-cache", "-r", "dav", "small.txt.dvc")
    assert any(p.is_file() for p in (clone.root / ".dvc" / "cache" / "runs").rglob("*"))
    clone.run("remote", "default", "dav")
    repro = clone.run("repro", "--pull")  # the run-cache entry's output comes from the remote too
    assert "skipping run" in repro.stdout, repro.stdout
    assert not (clone.root / "ran.log").exists()  # the stage's command did not run
    assert (clone.root / "out.txt").read_text() == "HELLO RUN CACHE\n"


def test_gc_deletes_exactly_the_unused_objects(registry: RegistryServer, project: Dvc) -> None:
    add_dav_remote(project, "dav", dav_url(registry, "dav-gc"), TOKENS["maintainer"])
    project.run("push", "--run-cache", "-r", "dav")
    old_big = (project.root / "big.bin").read_bytes()
    (project.root / "big.bin").write_bytes(os.urandom(4096))
    project.run("add", "big.bin")
    project.run("push", "-r", "dav")
    before = listed(registry, "dav-gc/")

    gc = project.run("gc", "-c", "-w", "--force", "-r", "dav")
    after = listed(registry, "dav-gc/")
    old_md5 = hashlib.md5(old_big).hexdigest()
    assert before - after == {f"dav-gc/files/md5/{old_md5[:2]}/{old_md5[2:]}"}, gc.stdout
    assert any(p.startswith("dav-gc/runs/") for p in after)  # gc -c never touches the run-cache
    assert "in sync" in project.run("status", "-c", "-r", "dav").stdout
    assert listed(registry, "dav-gc/", trash=True) == before - after  # restorable for the retention


def listed(registry: RegistryServer, prefix: str, *, trash: bool = False) -> set[str]:
    """The paths of the project's objects (or of its trash) under prefix, through the JSON API."""
    url = f"{registry.url}/api/v1/projects/101/{'trash' if trash else 'objects'}"
    answer = requests.get(
        url,
        params={"prefix": prefix, "limit": 1000},
        headers={"Authorization": f"Bearer {TOKENS['reporter']}"},
    )
    assert answer.status_code == 200, answer.text
    return {o["path"] for o in answer.json()["objects"]}


def test_a_colleagues_gc_is_undone_from_the_trash(
    registry: RegistryServer, project: Dvc, tmp_path: Path
) -> None:
    """Two checkouts share a remote; one Maintainer's `dvc gc -c -w` takes the other's objects. They come
    back from the trash, and the other checkout pulls them byte for byte."""
    add_dav_remote(project, "dav", dav_url(registry, "shared"), TOKENS["developer"])
    project.run("push", "-r", "dav")
    original = tmp_path / "original"
    shutil.copytree(project.root / "data", original)
    other = Dvc(tmp_path / "other")
    (other.root / "theirs").mkdir(parents=True)
    (other.root / "theirs" / "t.bin").write_bytes(os.urandom(5000))
    other.run("init", "--no-scm")
    other.run("add", "theirs")
    add_dav_remote(other, "dav", dav_url(registry, "shared"), TOKENS["maintainer"])
    other.run("push", "-r", "dav")
    other.run("gc", "-c", "-w", "--force", "-r", "dav")  # keeps only what `other` uses
    trashed = listed(registry, "shared/", trash=True)
    assert len(trashed) > 40

    restored = requests.post(
        f"{registry.url}/api/v1/projects/101/trash/restore",
        json={"paths": sorted(trashed)},
        headers={"Authorization": f"Bearer {TOKENS['maintainer']}"},
    )
    assert restored.status_code == 200 and len(restored.json()["restored"]) == len(trashed), restored.text
    project.forget_local_data()
    project.run("pull", "-r", "dav")
    assert same_tree(original, project.root / "data")


def test_http_and_webdav_share_the_objects(registry: RegistryServer, project: Dvc, tmp_path: Path) -> None:
    original = tmp_path / "original"
    shutil.copytree(project.root / "data", original)
    add_dav_remote(project, "dav", dav_url(registry, "shared"), TOKENS["developer"])
    project.add_remote(
        "http", f"{registry.url}/ml/vision/-/data/shared", auth="bearer", token=TOKENS["developer"]
    )
    project.run("push", "-r", "dav")
    assert "in sync" in project.run("status", "-c", "-r", "http").stdout
    project.forget_local_data()
    project.run("pull", "-r", "http")
    assert same_tree(original, project.root / "data")
    (project.root / "extra.txt").write_text("pushed over http\n")
    project.run("add", "extra.txt")
    project.run("push", "-r", "http")
    assert "in sync" in project.run("status", "-c", "-r", "dav").stdout


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        ("reporter", "received 403 (Developer role required to write to ml/vision)"),
        ("expired", "received 401 (GitLab token has expired)"),
    ],
)
def test_a_refused_push_shows_why(registry: RegistryServer, project: Dvc, role: str, shown: str) -> None:
    add_dav_remote(project, "dav", dav_url(registry, "dav-refused"), TOKENS[role])
    pushed = project.run("push", "-r", "dav", ok=False)
    assert pushed.returncode != 0
    output = pushed.stdout + pushed.stderr
    assert shown in output, output
