"""Debian's rclone (webdav backend, vendors `owncloud` and `other`) against the registry under gunicorn, as
a Developer and as a Maintainer: copy, sync of edits (byte-identical, no DELETE, replaced versions in the
trash, an unchanged tree not sent again), check by md5, moveto, copyto, touch, mkdir, rmdir."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from scripts.harness import RegistryServer
from tests.conftest import TOKENS
from tests.e2e.dav_clients import PROJECT_ID, access_lines, fresh_folder, methods, require_tool

pytestmark = pytest.mark.e2e
ROLES = ["developer", "maintainer"]
DAY_AGO = time.time() - 86_400


class Rclone:
    """rclone with one webdav remote `dav:` configured through RCLONE_CONFIG_DAV_* variables."""

    def __init__(self, binary: str, url: str, role: str, vendor: str, home: Path) -> None:
        obscured = subprocess.run(
            [binary, "obscure", TOKENS[role]], capture_output=True, text=True, check=True
        ).stdout.strip()
        (home / "rclone.conf").touch()
        self.binary, self.url, self.role = binary, url, role
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "RCLONE_CONFIG": str(home / "rclone.conf"),
            "RCLONE_CONFIG_DAV_TYPE": "webdav",
            "RCLONE_CONFIG_DAV_URL": url,
            "RCLONE_CONFIG_DAV_VENDOR": vendor,
            "RCLONE_CONFIG_DAV_USER": f"rclone-{role}",
            "RCLONE_CONFIG_DAV_PASS": obscured,
        }

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.binary, "--retries", "1", "--low-level-retries", "2", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if ok and done.returncode:
            pytest.fail(f"rclone {' '.join(args)} as a {self.role}:\n{told(done.stderr)}")
        return done


def told(log: str) -> str:
    """rclone's errors and notices (the debug lines of -vv left out), at most 40 lines."""
    lines = [line for line in log.splitlines() if " DEBUG : " not in line and " INFO  : " not in line]
    return "\n".join(lines[:40])


def make_tree(root: Path) -> dict[str, bytes]:
    """18 files in nested folders, their mtimes a day ago (so edits made now are newer to the second)."""
    files = {f"{folder}/f{i}.bin": os.urandom(100 + 37 * i) for folder in ("a", "a/b", "c") for i in range(6)}
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
        os.utime(root / name, (DAY_AGO, DAY_AGO))
    return files


def edit(root: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    """Three same-size and three different-size edits; returns the replaced versions."""
    replaced = {}
    for name in ("a/f0.bin", "a/b/f1.bin", "c/f2.bin"):
        replaced[name] = files[name]
        (root / name).write_bytes(os.urandom(len(files[name])))
    for name in ("a/f3.bin", "a/b/f4.bin", "c/f5.bin"):
        replaced[name] = files[name]
        (root / name).write_bytes(os.urandom(len(files[name]) + 11))
    return replaced


def remote_bytes(url: str, role: str) -> bytes:
    got = requests.get(url, auth=("anyone", TOKENS[role]), timeout=30)
    assert got.status_code == 200, f"GET {url}: {got.status_code} {got.text[:300]}"
    return got.content


def assert_same(root: Path, url: str, role: str) -> None:
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        name = file.relative_to(root).as_posix()
        assert remote_bytes(url + name, role) == file.read_bytes(), f"{name} differs on the registry"


def trashed(registry: RegistryServer, prefix: str) -> list[dict[str, object]]:
    answer = requests.get(
        f"{registry.url}/api/v1/projects/{PROJECT_ID}/trash",
        params={"prefix": prefix, "limit": "1000"},
        headers={"Authorization": f"Bearer {TOKENS['maintainer']}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["objects"])


@pytest.mark.parametrize("role", ROLES)
def test_owncloud_sync_of_edits(registry: RegistryServer, tmp_path: Path, role: str) -> None:
    url = fresh_folder(registry, f"rclone-sync-{role}")
    folder = urlsplit(url).path.split("/-/data/", 1)[1]
    rclone = Rclone(require_tool("rclone"), url, role, "owncloud", tmp_path)
    local = tmp_path / "tree"
    files = make_tree(local)
    rclone.run("copy", str(local), "dav:")
    assert_same(local, url, role)

    replaced = edit(local, files)
    since = len(registry.log_text().splitlines())
    synced = rclone.run("sync", str(local), "dav:", ok=False)
    lines = access_lines(registry, since, folder)
    deletes = "\n".join(line for line in lines if '"DELETE ' in line)
    assert not deletes, f"rclone sent DELETE during a sync of edits:\n{deletes}\n{told(synced.stderr)}"
    sent = methods(lines)
    assert synced.returncode == 0, f"rclone sync as a {role}:\n{told(synced.stderr)}"
    assert sent.count("PUT") == len(replaced), f"expected one PUT per edit, sent {sent}"
    assert_same(local, url, role)

    in_trash: dict[str, set[str]] = {}
    for entry in trashed(registry, folder):
        in_trash.setdefault(str(entry["path"]), set()).add(str(entry["md5"]))
    for name, old in replaced.items():
        assert hashlib.md5(old).hexdigest() in in_trash.get(f"{folder}{name}", set()), (
            f"the replaced version of {name} is not in the trash: {in_trash}"
        )

    since = len(registry.log_text().splitlines())
    again = rclone.run("sync", "-v", str(local), "dav:")
    sent = methods(access_lines(registry, since, folder))
    assert "PUT" not in sent, (
        f"an unchanged tree was uploaded again ({sent.count('PUT')} PUTs):\n{again.stderr}"
    )

    checked = rclone.run("check", "-vv", str(local), "dav:")  # no --download: by the listed md5
    report = told(checked.stderr)
    assert "hashes could not be checked" not in report and "No common hash" not in report, report
    assert f"{len(files)} matching files" in report, report
    by_md5 = re.findall(r": md5 = [0-9a-f]{32} OK$", checked.stderr, re.M)
    assert len(by_md5) == len(files), f"{len(by_md5)} of {len(files)} files compared by md5:\n{report}"


@pytest.mark.parametrize("role", ROLES)
def test_other_vendor_copy_and_sync(registry: RegistryServer, tmp_path: Path, role: str) -> None:
    """Without owncloud's extensions rclone compares sizes only: the different-size edits are synced."""
    url = fresh_folder(registry, f"rclone-other-{role}")
    folder = urlsplit(url).path.split("/-/data/", 1)[1]
    rclone = Rclone(require_tool("rclone"), url, role, "other", tmp_path)
    local = tmp_path / "tree"
    files = make_tree(local)
    rclone.run("copy", str(local), "dav:")
    assert_same(local, url, role)
    for name in ("a/f3.bin", "c/f5.bin"):
        (local / name).write_bytes(os.urandom(len(files[name]) + 5))
    since = len(registry.log_text().splitlines())
    rclone.run("sync", str(local), "dav:")
    assert "DELETE" not in methods(access_lines(registry, since, folder))
    assert_same(local, url, role)


@pytest.mark.parametrize("vendor", ["owncloud", "other"])
@pytest.mark.parametrize("role", ROLES)
def test_single_file_and_folder_commands(
    registry: RegistryServer, tmp_path: Path, role: str, vendor: str
) -> None:
    url = fresh_folder(registry, f"rclone-ops-{vendor}-{role}")
    folder = urlsplit(url).path.split("/-/data/", 1)[1]
    rclone = Rclone(require_tool("rclone"), url, role, vendor, tmp_path)
    body = os.urandom(3000)
    (tmp_path / "one.bin").write_bytes(body)

    rclone.run("mkdir", "dav:made")
    rclone.run("touch", "dav:made/touched.txt")
    rclone.run("copyto", str(tmp_path / "one.bin"), "dav:made/copied.bin")
    assert remote_bytes(url + "made/copied.bin", role) == body
    assert remote_bytes(url + "made/touched.txt", role) == b""

    since = len(registry.log_text().splitlines())
    rclone.run("copyto", "dav:made/copied.bin", "dav:made/again.bin")
    moved = rclone.run("moveto", "dav:made/again.bin", "dav:moved.bin", ok=role == "maintainer")
    sent = methods(access_lines(registry, since, folder))
    assert "COPY" in sent and "MOVE" in sent and "PUT" not in sent, f"not server-side: {sent}"
    if role == "maintainer":
        assert remote_bytes(url + "moved.bin", role) == body
        gone = requests.head(url + "made/again.bin", auth=("anyone", TOKENS[role]), timeout=30)
        assert gone.status_code == 404, gone.headers
        expected = ["made/", "made/copied.bin", "made/touched.txt", "moved.bin"]
    else:  # a MOVE deletes its source, and deleting is a Maintainer's (DESIGN 3.3): refused, nothing lost
        assert moved.returncode != 0 and "403" in moved.stderr, told(moved.stderr)
        assert remote_bytes(url + "made/again.bin", role) == body
        expected = ["made/", "made/again.bin", "made/copied.bin", "made/touched.txt"]
    listed = rclone.run("lsf", "-R", "dav:").stdout.split()
    assert sorted(listed) == expected, listed

    rclone.run("mkdir", "dav:empty")
    rclone.run("rmdir", "dav:empty")
    assert "empty/" not in rclone.run("lsf", "dav:").stdout.split()
    found = requests.request(
        "PROPFIND", url + "empty/", auth=("anyone", TOKENS[role]), headers={"Depth": "0"}
    )
    assert found.status_code == 404, f"PROPFIND of a removed collection: {found.status_code}"
