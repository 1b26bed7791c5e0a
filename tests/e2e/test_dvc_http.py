"""The real `dvc` client (http remote) against the registry under gunicorn, GitLab simulated."""

from __future__ import annotations

import filecmp
import os
import re
from pathlib import Path

import pytest

from scripts.harness import RegistryServer
from tests.conftest import TOKENS
from tests.e2e.dvc import same_tree, workspace

pytestmark = pytest.mark.e2e
PROJECT = "ml/vision"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 small files in a directory and one 20 MB file (several parts on S3, several chunks everywhere)."""
    root = tmp_path_factory.mktemp("dataset")
    files = root / "data"
    files.mkdir()
    for i in range(200):
        (files / f"sample-{i:03d}.bin").write_bytes(os.urandom(64 + (i * 37) % 4000))
    (root / "big.bin").write_bytes(os.urandom(20 * 1024 * 1024))
    return root


def stored_objects(registry: RegistryServer, prefix: str) -> list[str]:
    return registry.stored_keys(f"projects/101/{prefix}/")


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_push_status_pull_fetch(auth: str, registry: RegistryServer, dataset: Path, tmp_path: Path) -> None:
    if auth == "basic" and not registry.env["REGISTRY_STORAGE_URL"].startswith("file://"):
        pytest.skip("Basic downloads are streamed by the registry alike for every bucket: local covers it")
    dvc = workspace(tmp_path, dataset)
    base = f"{registry.url}/{PROJECT}/-/data/{auth}"
    dvc.add_remote("post", f"{base}-post", auth=auth, token=TOKENS["developer"])
    dvc.add_remote("put", f"{base}-put", auth=auth, token=TOKENS["developer"], method="PUT")

    for remote in ("post", "put"):
        pushed = dvc.run("push", "-r", remote)
        assert "202 files pushed" in pushed.stdout, pushed.stdout
        assert len(stored_objects(registry, f"{auth}-{remote}")) == 202
        status = dvc.run("status", "-c", "-r", remote)
        assert "in sync" in status.stdout, status.stdout

    dvc.forget_local_data()
    dvc.run("pull", "-r", "post")
    assert same_tree(dataset / "data", dvc.root / "data")
    assert filecmp.cmp(dataset / "big.bin", dvc.root / "big.bin", shallow=False)

    # Bearer downloads: small objects streamed by the registry (auto mode, one round trip), big.bin
    # redirected to a signed URL; DVC re-sends Basic credentials to redirect targets, so Basic downloads
    # are all streamed by the registry instead (access log: "GET <path> ..." status)
    downloads = re.findall(
        rf'"GET /{PROJECT}/-/data/{auth}-post/files/md5/[^ ]+ HTTP/1.1" (\d+)', registry.log_text()
    )
    served, allowed = (
        ({"200", "302"}, {"200", "206", "302", "404"})
        if auth == "bearer"
        else ({"200"}, {"200", "206", "404"})
    )
    assert served <= set(downloads) <= allowed, sorted(set(downloads))
    if auth == "bearer" and not registry.env["REGISTRY_STORAGE_URL"].startswith("file://"):
        assert "/-/blobs/" not in registry.log_text()  # the bucket served every downloaded byte

    dvc.forget_local_data()
    fetched = dvc.run("fetch", "-r", "put")
    assert "202 files fetched" in fetched.stdout, fetched.stdout
    dvc.run("checkout")
    assert same_tree(dataset / "data", dvc.root / "data")
    assert filecmp.cmp(dataset / "big.bin", dvc.root / "big.bin", shallow=False)


def test_wrong_token_push_names_the_problem(registry: RegistryServer, dataset: Path, tmp_path: Path) -> None:
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote(
        "r", f"{registry.url}/{PROJECT}/-/data/wrong", auth="bearer", token="glpat-not-a-real-token"
    )
    pushed = dvc.run("push", "-r", "r", ok=False)
    assert pushed.returncode != 0
    assert "GitLab token is invalid, expired or revoked" in pushed.stdout + pushed.stderr
    assert stored_objects(registry, "wrong") == []


def test_reporter_pulls_but_cannot_push(registry: RegistryServer, dataset: Path, tmp_path: Path) -> None:
    dvc = workspace(tmp_path, dataset)
    url = f"{registry.url}/{PROJECT}/-/data/shared"
    dvc.add_remote("dev", url, auth="bearer", token=TOKENS["developer"])
    dvc.add_remote("rep", url, auth="bearer", token=TOKENS["reporter"])
    dvc.run("push", "-r", "dev")

    dvc.forget_local_data()
    dvc.run("pull", "-r", "rep")
    assert same_tree(dataset / "data", dvc.root / "data")

    (dvc.root / "new.txt").write_text("a reporter's new file\n")
    dvc.run("add", "new.txt")
    pushed = dvc.run("push", "-r", "rep", ok=False)
    assert pushed.returncode != 0
    assert f"Developer role required to write to {PROJECT}" in pushed.stdout + pushed.stderr


def test_no_token_in_the_logs(registry: RegistryServer) -> None:
    """Runs after the pushes and pulls above, on the same server: its whole log is token-free."""
    log = registry.log_text()
    assert "POST /ml/vision/-/data/" in log  # the access log did record the traffic
    for token in (*TOKENS.values(), "glpat-not-a-real-token"):
        assert token not in log


@pytest.fixture(scope="module")
def registry(registry_on_each_backend: RegistryServer) -> RegistryServer:
    return registry_on_each_backend
