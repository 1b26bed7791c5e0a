"""The world's S3 clients against the S3 door, on local disk and on SeaweedFS: the aws CLI (sync, ls, rm),
DVC's s3 remote (push, pull, status -c, run-cache, gc -c), rclone's s3 backend, s3fs + pandas and DuckDB's
httpfs; what each writes reads byte-identical through the data plane, WebDAV and DVC's http remote."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scripts.harness import RegistryServer, Simulator, start_registry
from tests.conftest import TOKENS, storage_env
from tests.e2e.dav_clients import access_lines, methods, require_tool
from tests.e2e.dvc import same_tree
from tests.e2e.s3_clients import (
    Aws,
    RcloneS3,
    ToolsDvc,
    data_url,
    endpoint,
    plane_get,
    require_tools,
    tools_python,
    unique,
)

pytestmark = pytest.mark.e2e
BIG = 9 * 1024 * 1024  # over the aws CLI's 8 MiB multipart threshold


@pytest.fixture(scope="module", params=["local", "s3"])
def door(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator
) -> Iterator[RegistryServer]:
    """One registry per backend for the whole module (each test works in buckets of its own)."""
    require_tools()
    server = start_registry(
        tmp_path_factory.mktemp("registry"), gitlab.url, **storage_env(request.param, request)
    )
    yield server
    server.stop()


def make_tree(root: Path, *, big: bool = False) -> dict[str, bytes]:
    files = {f"{folder}/f{i}.bin": os.urandom(50 + 97 * i) for folder in ("a", "a/b", "c") for i in range(3)}
    files["top.txt"] = b"at the top\n"
    if big:
        files["big.bin"] = os.urandom(BIG)
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return files


def log_mark(registry: RegistryServer) -> int:
    return len(registry.log_text().splitlines())


def test_aws_cli_sync_ls_and_rm(door: RegistryServer, tmp_path: Path) -> None:
    bucket = unique("aws")
    developer, maintainer = Aws(door, tmp_path, "developer"), Aws(door, tmp_path, "maintainer")
    developer.s3("mb", f"s3://{bucket}")
    files = make_tree(tmp_path / "up", big=True)
    since = log_mark(door)
    developer.s3("sync", str(tmp_path / "up"), f"s3://{bucket}/set")
    # the 9 MiB file went in parts: create (POST), two parts (PUT), complete (POST)
    sent = methods(access_lines(door, since, f"/-/s3/{bucket}/set/big.bin"))
    assert sorted(sent) == ["POST", "POST", "PUT", "PUT"], sent
    for name, body in files.items():
        assert plane_get(door, f"{bucket}/set/{name}").content == body, name
    top = developer.s3("ls", f"s3://{bucket}/set/").stdout.splitlines()
    assert sorted(line.split()[-1] for line in top) == ["a/", "big.bin", "c/", "top.txt"], top
    assert developer.keys(f"s3://{bucket}/") == {f"set/{n}": len(b) for n, b in files.items()}
    developer.s3("sync", f"s3://{bucket}/set", str(tmp_path / "down"))
    assert same_tree(tmp_path / "up", tmp_path / "down")
    since = log_mark(door)  # a copy between two keys of the 9 MiB file: UploadPartCopy, inside the door
    developer.s3("cp", f"s3://{bucket}/set/big.bin", f"s3://{bucket}/copies/big.bin")
    sent = methods(access_lines(door, since, f"/-/s3/{bucket}/copies/big.bin"))
    assert sorted(sent) == ["POST", "POST", "PUT", "PUT"], sent
    assert plane_get(door, f"{bucket}/copies/big.bin").content == files["big.bin"]
    maintainer.s3("rm", f"s3://{bucket}/copies/big.bin")
    since = log_mark(door)
    developer.s3("sync", str(tmp_path / "up"), f"s3://{bucket}/set")  # nothing changed: nothing sent
    assert "PUT" not in methods(access_lines(door, since, f"/-/s3/{bucket}/"))
    refused = developer.s3("rm", "--recursive", f"s3://{bucket}/set", ok=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "AccessDenied" in refused.stderr and "Maintainer role required to delete" in refused.stderr
    assert len(developer.keys(f"s3://{bucket}/")) == len(files)
    removed = maintainer.s3("rm", "--recursive", f"s3://{bucket}/set").stdout
    assert removed.count("delete: ") == len(files)
    assert developer.keys(f"s3://{bucket}/") == {}
    assert plane_get(door, f"{bucket}/set/top.txt").status_code == 404


def test_aws_cli_permissions(door: RegistryServer, tmp_path: Path) -> None:
    """Reporter reads but cannot write, a stranger learns nothing, a wrong secret is SignatureDoesNotMatch
    and a presigned URL is refused — as the CLI reports them."""
    bucket = unique("perm")
    (tmp_path / "f.txt").write_bytes(b"readable\n")
    Aws(door, tmp_path, "developer").s3("cp", str(tmp_path / "f.txt"), f"s3://{bucket}/f.txt")
    reporter = Aws(door, tmp_path, "reporter")
    assert reporter.s3("cp", f"s3://{bucket}/f.txt", "-").stdout == "readable\n"
    put = reporter.s3("cp", str(tmp_path / "f.txt"), f"s3://{bucket}/g.txt", ok=False)
    assert put.returncode == 1 and "(AccessDenied)" in put.stderr, put.stderr
    stranger = Aws(door, tmp_path, "outsider").s3("ls", f"s3://{bucket}/", ok=False)
    nowhere = Aws(door, tmp_path, "outsider")
    nowhere.endpoint = endpoint(door).replace("/ml/vision/", "/ml/no-such-project/")
    absent = nowhere.s3("ls", f"s3://{bucket}/", ok=False)
    assert stranger.returncode == absent.returncode != 0 and "(NoSuchBucket)" in stranger.stderr
    assert stranger.stderr.replace("ml/vision", "P") == absent.stderr.replace("ml/no-such-project", "P")
    wrong = Aws(door, tmp_path, "maintainer", secret="not-the-token").s3("ls", f"s3://{bucket}/", ok=False)
    assert wrong.returncode != 0 and "(SignatureDoesNotMatch)" in wrong.stderr, wrong.stderr
    url = reporter.s3("presign", f"s3://{bucket}/f.txt").stdout.strip()
    refused = requests.get(url, timeout=30)
    assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text
    assert "/api/v1/projects/" in refused.text and b"readable" not in refused.content


def test_dvc_s3_remote(door: RegistryServer, tmp_path: Path) -> None:
    bucket, repo = unique("dvc"), tmp_path / "repo"
    files = make_tree(repo / "data")
    dvc = ToolsDvc(repo, tmp_path / "home")
    dvc.run("init", "--no-scm")
    dvc.run("add", "data")
    dvc.run("stage", "add", "-n", "stamp", "-d", "data", "-o", "stamp.txt", "date +%s%N > stamp.txt")
    dvc.run("repro")  # a run-cache entry, and an output that differs on every real run
    stamp = (repo / "stamp.txt").read_bytes()
    shutil.copytree(repo / "data", tmp_path / "original")
    dvc.remotes(door, bucket, s3_role="developer", http_role="reporter")  # a bucket nobody made
    assert re.search(r"\b12 files pushed", dvc.run("push").stdout), "9 files, data's .dir, stamp.txt"
    dvc.run("push", "--run-cache")
    assert "in sync" in dvc.run("status", "-c").stdout
    cached = [p for p in (repo / ".dvc" / "cache" / "files" / "md5").rglob("*") if p.is_file()]
    assert len(cached) == 12
    for path in cached:  # one object, every door: the data plane reads what DVC pushed
        key = path.relative_to(repo / ".dvc" / "cache").as_posix()
        assert plane_get(door, f"{bucket}/{key}").content == path.read_bytes(), key
    # pull into an empty cache, through the s3 remote and through DVC's http remote on the same prefix
    for remote in ("door", "plane"):
        shutil.rmtree(repo / ".dvc" / "cache")
        shutil.rmtree(repo / "data")
        dvc.run("pull", "-r", remote, "data.dvc")
        assert same_tree(tmp_path / "original", repo / "data"), remote
    # run-cache: with no dvc.lock and no cache, repro restores the stage from the remote's run-cache
    shutil.rmtree(repo / ".dvc" / "cache")
    (repo / "dvc.lock").unlink()
    (repo / "stamp.txt").unlink()
    dvc.run("pull", "--run-cache", "-r", "door", "data.dvc")
    assert list((repo / ".dvc" / "cache" / "runs").rglob("*/*/*")), "the run-cache entry came back"
    restored = dvc.run("repro", "--pull").stdout
    assert "skipping run" in restored and (repo / "stamp.txt").read_bytes() == stamp, restored
    # gc -c -w: a Developer cannot delete; a Maintainer deletes what the workspace no longer uses
    (repo / "data" / "a" / "f0.bin").write_bytes(b"edited")
    (repo / "data" / "c" / "f2.bin").unlink()
    gone = hashlib.md5(files["c/f2.bin"]).hexdigest()
    dvc.run("add", "data")
    dvc.run("push", "-r", "door")
    denied = dvc.run("gc", "-c", "-w", "-f", "-r", "door", ok=False)
    assert denied.returncode and "Maintainer role required to delete" in denied.stderr, denied.stderr
    assert plane_get(door, f"{bucket}/files/md5/{gone[:2]}/{gone[2:]}").status_code == 200
    dvc.as_role("maintainer")
    assert "Removed 3 objects from remote" in dvc.run("gc", "-c", "-w", "-f", "-r", "door").stdout
    assert plane_get(door, f"{bucket}/files/md5/{gone[:2]}/{gone[2:]}").status_code == 404
    assert "in sync" in dvc.run("status", "-c", "-r", "door").stdout


def test_rclone_s3_backend(door: RegistryServer, tmp_path: Path) -> None:
    bucket, local = unique("rcl"), tmp_path / "tree"
    files = make_tree(local, big=True)
    rclone = RcloneS3(door, tmp_path / "home", "maintainer")
    since = log_mark(door)
    # copy makes the bucket; the big file goes in two 5 MiB parts
    rclone.run("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(local), f"s3:{bucket}/t")
    sent = methods(access_lines(door, since, f"/-/s3/{bucket}/t/big.bin"))
    assert (sent.count("POST"), sent.count("PUT")) == (2, 2), sent
    for name, body in files.items():
        assert plane_get(door, f"{bucket}/t/{name}").content == body, name
    listed = rclone.run("ls", f"s3:{bucket}/t").stdout.splitlines()
    assert {line.split()[1]: int(line.split()[0]) for line in listed} == {n: len(b) for n, b in files.items()}
    assert set(rclone.run("lsf", "-R", "--files-only", f"s3:{bucket}/t").stdout.split()) == set(files)
    rclone.run("check", str(local), f"s3:{bucket}/t")  # by md5: the ETag (multipart included)
    (local / "a" / "f1.bin").write_bytes(b"new bytes")
    (local / "c" / "f0.bin").unlink()
    (local / "d.txt").write_bytes(b"added")
    differs = rclone.run("check", str(local), f"s3:{bucket}/t", ok=False)
    assert differs.returncode == 1 and "3 differences found" in differs.stderr, differs.stderr
    rclone.run("sync", str(local), f"s3:{bucket}/t")
    rclone.run("check", "--one-way", f"s3:{bucket}/t", str(local))
    assert plane_get(door, f"{bucket}/t/a/f1.bin").content == b"new bytes"
    assert plane_get(door, f"{bucket}/t/c/f0.bin").status_code == 404
    rclone.run("delete", f"s3:{bucket}/t")
    assert rclone.run("lsf", "-R", f"s3:{bucket}").stdout == ""


CSV = b"city,population\nLyon,522250\nGraz,295424\nTurku,201863\n"

READ_CSV = """
import pandas, os
frame = pandas.read_csv("s3://{bucket}/tables/cities.csv", storage_options={{
    "endpoint_url": "{endpoint}", "key": os.environ["AWS_ACCESS_KEY_ID"],
    "secret": os.environ["AWS_SECRET_ACCESS_KEY"]}})
print(len(frame), int(frame.population.sum()))
frame.assign(big=frame.population > 250000).to_csv("s3://{bucket}/tables/flagged.csv", index=False,
    storage_options={{"endpoint_url": "{endpoint}"}})
"""


def test_s3fs_and_pandas(door: RegistryServer, tmp_path: Path) -> None:
    """pandas reads (as a Reporter) a CSV put through the data plane; writing needs a Developer."""
    bucket = unique("pd")
    put = requests.put(
        data_url(door, f"{bucket}/tables/cities.csv"),
        data=CSV,
        headers={"Authorization": f"Bearer {TOKENS['developer']}"},
        timeout=30,
    )
    assert put.status_code == 201, put.text
    script = READ_CSV.format(bucket=bucket, endpoint=endpoint(door))
    reporter = tools_python(script, tmp_path, "reporter", ok=False)  # reads, then cannot write
    assert reporter.stdout.split() == ["3", "1019537"] and "PermissionError" in reporter.stderr, (
        reporter.stderr
    )
    assert tools_python(script, tmp_path, "developer").stdout.split() == ["3", "1019537"]
    written = plane_get(door, f"{bucket}/tables/flagged.csv").text.splitlines()
    assert written == ["city,population,big", "Lyon,522250,True", "Graz,295424,True", "Turku,201863,False"]


DUCKDB = """
import duckdb, duckdb_extension_httpfs, pathlib, os
shipped = pathlib.Path(duckdb_extension_httpfs.__file__).parent
extension = next(shipped.glob("extensions/*/httpfs.duckdb_extension"))
db = duckdb.connect()
db.execute(f"LOAD '{{extension}}'")
for setting in ("s3_endpoint = '{endpoint}'", "s3_url_style = 'path'", "s3_use_ssl = false",
                "s3_region = 'us-east-1'", "s3_access_key_id = '" + os.environ["AWS_ACCESS_KEY_ID"] + "'",
                "s3_secret_access_key = '" + os.environ["AWS_SECRET_ACCESS_KEY"] + "'"):
    db.execute("SET " + setting)
print(db.execute("SELECT count(*) FROM read_csv('s3://{bucket}/tables/cities.csv')").fetchone()[0])
print(db.execute("SELECT count(*) FROM read_csv('s3://{bucket}/tables/*.csv')").fetchone()[0])
db.execute("COPY (SELECT range AS n FROM range(50000)) TO 's3://{bucket}/out/n.parquet' (FORMAT parquet)")
print(db.execute("SELECT sum(n) FROM 's3://{bucket}/out/n.parquet'").fetchone()[0])
"""


def test_duckdb_httpfs(door: RegistryServer, tmp_path: Path) -> None:
    """DuckDB's httpfs (from PyPI's duckdb-extension-httpfs) with the endpoint host:port/<project>/-/s3."""
    bucket = unique("duck")
    headers = {"Authorization": f"Bearer {TOKENS['developer']}"}
    for name in ("cities.csv", "more.csv"):
        put = requests.put(data_url(door, f"{bucket}/tables/{name}"), data=CSV, headers=headers, timeout=30)
        assert put.status_code == 201, put.text
    script = DUCKDB.format(bucket=bucket, endpoint=endpoint(door).removeprefix("http://"))
    reporter = tools_python(script, tmp_path, "reporter", ok=False)  # reads, then cannot write
    assert reporter.stdout.split() == ["3", "6"] and "403" in reporter.stderr, reporter.stderr
    assert tools_python(script, tmp_path, "developer").stdout.split() == ["3", "6", str(sum(range(50000)))]
    parquet = plane_get(door, f"{bucket}/out/n.parquet")
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"


def test_one_object_through_every_door(door: RegistryServer, tmp_path: Path) -> None:
    """Written through S3 → the data plane and a WebDAV client read it byte-identical; written through
    WebDAV → S3 reads it byte-identical."""
    bucket, body, other = unique("x"), os.urandom(70_000), os.urandom(33_333)
    (tmp_path / "s3.bin").write_bytes(body)
    (tmp_path / "dav.bin").write_bytes(other)
    aws = Aws(door, tmp_path, "developer")
    aws.s3("cp", str(tmp_path / "s3.bin"), f"s3://{bucket}/in/s3.bin")
    assert plane_get(door, f"{bucket}/in/s3.bin").content == body
    dav = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
        "RCLONE_CONFIG_DAV_TYPE": "webdav",
        "RCLONE_CONFIG_DAV_URL": data_url(door, bucket),
        "RCLONE_CONFIG_DAV_VENDOR": "other",
        "RCLONE_CONFIG_DAV_BEARER_TOKEN": TOKENS["developer"],
    }
    (tmp_path / "rclone.conf").touch()
    rclone = require_tool("rclone")
    read = subprocess.run([rclone, "cat", "dav:in/s3.bin"], env=dav, capture_output=True, timeout=60)
    assert read.returncode == 0 and read.stdout == body, read.stderr[-2000:]
    wrote = subprocess.run(
        [rclone, "copyto", str(tmp_path / "dav.bin"), "dav:in/dav.bin"],
        env=dav,
        capture_output=True,
        timeout=60,
    )
    assert wrote.returncode == 0, wrote.stderr[-2000:]
    aws.s3("cp", f"s3://{bucket}/in/dav.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == other
    assert aws.keys(f"s3://{bucket}/") == {"in/s3.bin": len(body), "in/dav.bin": len(other)}
