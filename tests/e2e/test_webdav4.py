"""webdav4 through fsspec (the library under DVC's webdav remote) against the registry under gunicorn:
exists, info, put over a file, cp, mv, ls; and the challenge an anonymous WebDAV client needs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from webdav4.fsspec import WebdavFileSystem

from scripts.harness import RegistryServer
from tests.conftest import TOKENS
from tests.e2e.dav_clients import PROJECT, fresh_folder

pytestmark = pytest.mark.e2e


@pytest.fixture
def dav(registry: RegistryServer) -> tuple[WebdavFileSystem, str]:
    """A Maintainer's fsspec filesystem rooted at the data plane, and a fresh folder's path in it."""
    folder = fresh_folder(registry, "webdav4").rstrip("/").rsplit("/", 1)[1]
    fs = WebdavFileSystem(f"{registry.url}/{PROJECT}/-/data/", auth=("webdav4-user", TOKENS["maintainer"]))
    return fs, folder


def test_a_missing_path_does_not_exist(dav: tuple[WebdavFileSystem, str]) -> None:
    fs, folder = dav
    fs.pipe_file(f"{folder}/here.txt", b"here\n")
    assert fs.exists(f"{folder}/here.txt")
    assert not fs.exists(f"{folder}/missing.txt")
    assert not fs.exists(f"{folder}/missing-folder/")
    assert not fs.exists(f"{folder}-mistyped")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{folder}/missing.txt")


def test_info_put_over_a_file_cp_mv_ls(dav: tuple[WebdavFileSystem, str], tmp_path: Path) -> None:
    fs, folder = dav
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(os.urandom(1500))
    second.write_bytes(os.urandom(900))
    fs.put_file(str(first), f"{folder}/data.bin")
    info = fs.info(f"{folder}/data.bin")
    assert info["type"] == "file" and info["size"] == 1500, info
    assert fs.info(folder)["type"] == "directory"

    fs.put_file(str(second), f"{folder}/data.bin")  # over an existing file: replaces it
    assert fs.info(f"{folder}/data.bin")["size"] == 900
    assert fs.cat_file(f"{folder}/data.bin") == second.read_bytes()

    fs.cp(f"{folder}/data.bin", f"{folder}/copy.bin")
    fs.mkdir(f"{folder}/sub")  # a MOVE into a missing collection is 409 (RFC 4918 9.9.4)
    fs.mv(f"{folder}/copy.bin", f"{folder}/sub/moved.bin")
    assert fs.cat_file(f"{folder}/sub/moved.bin") == second.read_bytes()
    assert not fs.exists(f"{folder}/copy.bin")
    assert sorted(fs.ls(folder, detail=False)) == [f"{folder}/data.bin", f"{folder}/sub"]
    assert fs.ls(f"{folder}/sub", detail=False) == [f"{folder}/sub/moved.bin"]


def test_anonymous_propfind_on_a_private_project_is_challenged(registry: RegistryServer) -> None:
    folder = fresh_folder(registry, "anonymous")
    answer = requests.request("PROPFIND", folder, headers={"Depth": "0"}, timeout=30)
    assert answer.status_code == 401, f"{answer.status_code} {answer.headers} {answer.text[:300]}"
    assert answer.headers.get("WWW-Authenticate", "").startswith("Basic realm="), answer.headers
