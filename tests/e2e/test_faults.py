"""Faults in the registry's real dependencies during real pushes: SeaweedFS killed for 10 s, PostgreSQL
stopped for 10 s, while the real dvc pushes many small files and files larger than an S3 part. Afterwards
every object the registry has serves exactly the bytes that were pushed (compared with the originals), a
second `dvc push` completes, few of the uploads in flight failed (the registry waits out a short outage
instead of failing each write in milliseconds), and no part buffer was ever given back twice."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from scripts.harness import (
    BIN,
    Postgres,
    RegistryServer,
    SeaweedFS,
    Simulator,
    start_postgres,
    start_registry,
    start_seaweedfs,
)
from tests.conftest import TOKENS, s3_registry_env
from tests.e2e.dvc import Dvc, same_tree

pytestmark = pytest.mark.e2e
OUTAGE = 10.0  # seconds the dependency is gone
SMALL, BIG = 300, 3  # 4 KB files, and 12 MiB ones (an S3 part is 8 MiB)
AUTH = {"Authorization": f"Bearer {TOKENS['developer']}"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults-dataset")
    data = root / "data"
    data.mkdir()
    rng = random.Random(22)
    for i in range(SMALL):
        (data / f"s{i:03}.bin").write_bytes(rng.randbytes(4096))
    for i in range(BIG):
        (data / f"big{i}.bin").write_bytes(rng.randbytes(12 * 2**20))
    return root


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = start_seaweedfs(tmp_path_factory.mktemp("faults-weed"))  # this module's own: it gets killed
    yield server
    server.stop()


@pytest.fixture(scope="module")
def database() -> Iterator[Postgres]:
    server = start_postgres()  # this module's own: it gets stopped
    yield server
    server.remove()


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator, bucket: SeaweedFS, database: Postgres
) -> Iterator[RegistryServer]:
    server = start_registry(
        tmp_path_factory.mktemp("faults-registry"),
        gitlab.url,
        REGISTRY_DATABASE_URL=database.url,
        REGISTRY_RATE_LIMIT="0",
        **s3_registry_env(bucket),
    )
    yield server
    server.stop()


def workspace(root: Path, dataset: Path, remote: str) -> Dvc:
    repo = root / "repo"
    repo.mkdir()
    shutil.copytree(dataset / "data", repo / "data")
    dvc = Dvc(repo)
    dvc.run("init", "--no-scm")
    dvc.run("config", "cache.type", "copy")
    dvc.run("add", "data")
    dvc.add_remote("r", remote, auth="bearer", token=TOKENS["developer"])
    return dvc


def uploads_seen(registry: RegistryServer) -> int:
    return len(re.findall(r'"(?:PUT|POST) /ml/vision/-/data/', registry.log_text()))


def push_through(dvc: Dvc, registry: RegistryServer, outage: Callable[[], None]) -> int:
    """`dvc push` with the outage starting once uploads flow; the number of files dvc says failed."""
    before = uploads_seen(registry)
    push = subprocess.Popen(
        [str(BIN / "dvc"), "push", "-r", "r", "-j", "8"],
        cwd=dvc.root,
        env=dvc.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while uploads_seen(registry) < before + 20 and time.monotonic() < deadline and push.poll() is None:
        time.sleep(0.05)
    assert push.poll() is None, "the push ended before the outage began: make it bigger"
    outage()
    output, _ = push.communicate(timeout=300)
    failed = re.search(r"(\d+) files? failed to (?:upload|push)", output)
    return int(failed.group(1)) if failed else (0 if push.returncode == 0 else SMALL + BIG + 1)


def served_exactly(dvc: Dvc, remote: str) -> int:
    """Every object of the local cache (the pushed originals) is served byte for byte; how many."""
    cache = dvc.root / ".dvc" / "cache" / "files" / "md5"
    checked = 0
    with requests.Session() as session:
        for original in sorted(p for p in cache.rglob("*") if p.is_file()):
            relative = original.relative_to(cache).as_posix()
            url = f"{remote}/files/md5/{relative}"
            answer = session.get(url, headers=AUTH, timeout=60)
            assert answer.status_code == 200, f"{relative}: {answer.status_code}"
            assert answer.content == original.read_bytes(), f"{relative}: other bytes than were pushed"
            checked += 1
    return checked


@pytest.mark.parametrize("dependency", ["bucket", "database"])
def test_a_ten_second_outage_during_a_push_stores_only_right_bytes(
    dependency: str,
    registry: RegistryServer,
    bucket: SeaweedFS,
    database: Postgres,
    dataset: Path,
    tmp_path: Path,
) -> None:
    def outage() -> None:
        if dependency == "bucket":
            bucket.kill()
            time.sleep(OUTAGE)
            bucket.restart()
        else:
            database.stop("immediate")
            time.sleep(OUTAGE)
            database.start()

    remote = f"{registry.url}/ml/vision/-/data/faults-{dependency}"
    dvc = workspace(tmp_path, dataset, remote)
    failed = push_through(dvc, registry, outage)
    total = SMALL + BIG + 1  # and the .dir
    print(f"{dependency} outage of {OUTAGE:.0f} s: {failed} of {total} uploads failed")
    assert failed <= total // 10, f"{failed} of {total} uploads failed during a {OUTAGE:.0f} s outage"
    dvc.run("push", "-r", "r")  # a second push completes what the first could not
    assert "in sync" in dvc.run("status", "-c", "-r", "r").stdout
    assert served_exactly(dvc, remote) == total
    pulled = Dvc(tmp_path / "clone")
    (tmp_path / "clone").mkdir()
    for name in ("data.dvc",):
        (tmp_path / "clone" / name).write_bytes((dvc.root / name).read_bytes())
    pulled.run("init", "--no-scm")
    pulled.add_remote("r", remote, auth="bearer", token=TOKENS["developer"])
    pulled.run("pull", "-r", "r")
    assert same_tree(pulled.root / "data", dataset / "data")
    assert "not lent" not in registry.log_text()  # no part buffer given back twice
