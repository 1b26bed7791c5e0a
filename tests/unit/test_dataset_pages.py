"""A directory dataset's pages for browsers: numbered pages and a search across the whole dataset, file
links that open the object's page with the download beside them, the trash naming what it holds by the
dataset and file names people know, and a trashed dataset offering its restore."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scripts.harness import Simulator
from tests.conftest import bearer
from tests.unit.test_project_pages import CLIENT_ID, CLIENT_SECRET, HTML, csrf, put, signed_in

VISION = 101


@pytest.fixture
def app(make_app: Callable[..., Flask], simulator: Simulator) -> Flask:
    simulator.world.oauth_apps[CLIENT_ID]["redirect_uri"] = "http://localhost/-/auth/callback"
    return make_app(
        oauth_client_id=CLIENT_ID,
        oauth_client_secret=CLIENT_SECRET,
        oauth_scopes="api",
        trash_retention=3600,
        download_mode="redirect",
        auth_cache_ttl=0,
    )


def address(md5: str, suffix: str = "") -> str:
    return f"dvc/files/md5/{md5[:2]}/{md5[2:]}{suffix}"


def push_dataset(client: FlaskClient, simulator: Simulator, files: dict[str, bytes]) -> str:
    """The files and their `.dir` manifest pushed as DVC does, and the repository's `main` naming the
    directory `data` (data.dvc) with its remote here; returns the manifest's path."""
    for body in dict.fromkeys(files.values()):
        put(client, "ml/vision", address(hashlib.md5(body).hexdigest()), body)
    listed = [{"md5": hashlib.md5(body).hexdigest(), "relpath": rel} for rel, body in sorted(files.items())]
    manifest = json.dumps(listed).encode()
    md5 = hashlib.md5(manifest).hexdigest()
    put(client, "ml/vision", address(md5, ".dir"), manifest)
    simulator.world.repositories[VISION] = {
        "main": {
            ".dvc/config": b"[core]\n    remote = registry\n['remote \"registry\"']\n"
            b"    url = http://localhost/ml/vision/-/data/dvc\n",
            "data.dvc": f"outs:\n- md5: {md5}.dir\n  nfiles: {len(files)}\n  path: data\n".encode(),
        }
    }
    return address(md5, ".dir")


def page_links(html: str) -> list[tuple[str, bool]]:
    """The pager's numbered links: (label, current)."""
    pager = html.split('<nav class="pager"', 1)[1].split("</nav>", 1)[0]
    return [
        (label, 'aria-current="page"' in attrs)
        for attrs, label in re.findall(r'<a href="[^"]*"( aria-label="Page \d+"[^>]*)>(\d+)</a>', pager)
    ]


def test_a_dataset_pages_by_numbers_and_searches_across_its_folders(app: Flask, simulator: Simulator) -> None:
    client = app.test_client()
    files = {f"imgs/f{i:03d}.bin": str(i).encode() for i in range(230)}
    files["imgs/deep/er/Needle-7.txt"] = b"needle"
    manifest = push_dataset(client, simulator, files)
    dev = signed_in(app, simulator, "dev")
    tree = f"/ml/vision/-/data/?dataset={manifest}&name=data&ref=main"

    first = dev.get(tree + "&dir=imgs", headers=HTML).get_data(as_text=True)
    assert "230 files in this folder, 1 folder · page 1 of 3" in first
    assert page_links(first) == [("1", True), ("2", False), ("3", False)]
    assert (
        first.count('class="download"') == 100 and ">f099.bin</a>" in first and ">f100.bin</a>" not in first
    )
    assert "Previous" not in first and 'rel="next"' in first
    third = dev.get(tree + "&dir=imgs&page=3", headers=HTML).get_data(as_text=True)
    assert third.count('class="download"') == 30 and ">f229.bin</a>" in third
    assert page_links(third) == [("1", False), ("2", False), ("3", True)] and 'rel="next"' not in third
    assert 'href="/ml/vision/-/data/?dataset=' in third and "&amp;dir=imgs&amp;page=2" in third

    found = dev.get(tree + "&q=needle", headers=HTML).get_data(as_text=True)  # from the top, any depth
    assert "1 file with “needle” in the path" in found and ">imgs/deep/er/Needle-7.txt</a>" in found
    assert '<nav class="pager"' not in found  # one page
    many = dev.get(tree + "&q=.bin&page=2", headers=HTML).get_data(as_text=True)
    assert "230 files with “.bin” in the path · page 2 of 3" in many and ">imgs/f100.bin</a>" in many
    assert "&amp;q=.bin&amp;page=3" in many
    nothing = dev.get(tree + "&q=zebra", headers=HTML).get_data(as_text=True)
    assert "0 files with" in nothing and "No file of this dataset has that in its path." in nothing


def test_file_links_open_the_object_page_with_the_download_beside(app: Flask, simulator: Simulator) -> None:
    client = app.test_client()
    manifest = push_dataset(client, simulator, {"labels.csv": b"a,b\n"})
    put(client, "ml/vision", "runs/r1.json", b"{}")
    dev = signed_in(app, simulator, "dev")
    listing = dev.get("/ml/vision/-/data/", headers=HTML).get_data(as_text=True)
    assert (
        f'href="/ml/vision/-/data/?dataset={manifest.replace("/", "%2F")}&amp;name=data&amp;ref=main"'
        in listing
    )

    html = dev.get(f"/ml/vision/-/data/?dataset={manifest}&name=data&ref=main", headers=HTML).get_data(
        as_text=True
    )
    obj = address(hashlib.md5(b"a,b\n").hexdigest())
    dir_param = manifest.replace("/", "%2F")
    assert (
        f'<a href="/ml/vision/-/data/{obj}?name=labels.csv&amp;dataset={dir_param}&amp;ref=main">'
        "labels.csv</a>" in html
    )
    download = f"/-/ui/projects/101/download?path={obj}&amp;name=labels.csv"
    assert f'<a class="download" href="{download}" download>download</a>' in html
    assert "1 file in this folder" in html

    files = dev.get("/ml/vision/-/data/runs/", headers=HTML).get_data(as_text=True)
    assert '<a href="/ml/vision/-/data/runs/r1.json">r1.json</a>' in files
    assert 'href="/-/ui/projects/101/download?path=runs/r1.json" download>download</a>' in files
    assert (
        '<td class="size">2 B</td>' in files
        and "<time datetime=" in files
        and 'UTC">just now</time>' in files
    )


def test_the_trash_names_what_it_holds(app: Flask, simulator: Simulator) -> None:
    """A dataset deleted (its `.dir`, then a file of it, as `dvc gc -c` does): its manifest is named by the
    dataset's name at the default branch, its file `dataset/relpath`; an object no manifest lists keeps
    its path alone; dates say when, relatively, with the UTC time as their title."""
    client = app.test_client()
    manifest = push_dataset(client, simulator, {"cats/a.jpg": b"A", "cats/b.jpg": b"B"})
    b_path = address(hashlib.md5(b"B").hexdigest())
    put(client, "ml/vision", "notes.txt", b"n")
    for gone in (manifest, b_path, "notes.txt"):
        assert client.delete(f"/ml/vision/-/data/{gone}", headers=bearer("maintainer")).status_code == 204
    rita = signed_in(app, simulator, "rita")  # a Reporter reads the trash
    trash = rita.get("/ml/vision/-/data/?view=trash", headers=HTML).get_data(as_text=True)
    assert f'<span class="known">data/cats/b.jpg</span><br><code class="address">{b_path}</code>' in trash
    assert f'<span class="known">data</span><br><code class="address">{manifest}</code>' in trash
    assert '<td><code class="address">notes.txt</code></td>' in trash
    assert re.search(r'<time datetime="[-0-9T:.]+Z" title="[-0-9 :]+ UTC">in 1 hour</time>', trash)

    simulator.world.repositories[VISION] = {"main": {}}  # the dataset is gone from the repository too
    trash = rita.get("/ml/vision/-/data/?view=trash", headers=HTML).get_data(as_text=True)
    assert f'<span class="known">cats/b.jpg</span><br><code class="address">{b_path}</code>' in trash


def test_a_trashed_dataset_offers_its_restore(app: Flask, simulator: Simulator) -> None:
    client = app.test_client()
    manifest = push_dataset(client, simulator, {"a.txt": b"a", "b.txt": b"b"})
    assert client.delete(f"/ml/vision/-/data/{manifest}", headers=bearer("maintainer")).status_code == 204

    rita = signed_in(app, simulator, "rita")  # may read, not restore
    listing = rita.get("/ml/vision/-/data/", headers=HTML).get_data(as_text=True)
    assert (
        "in the trash —" in listing and '<a href="/ml/vision/-/data/?view=trash">see the trash</a>' in listing
    )
    assert "not pushed" not in listing and 'name="back"' not in listing

    maya = signed_in(app, simulator, "maya")  # Maintainer
    listing = maya.get("/ml/vision/-/data/", headers=HTML).get_data(as_text=True)
    assert f'name="path" value="{manifest}"' in listing and ">restore</button>" in listing
    done = maya.post(
        "/-/ui/projects/101/trash/restore",
        data={"csrf_token": csrf(listing), "path": manifest, "back": "datasets"},
    )
    assert done.status_code == 302 and done.headers["Location"] == "/ml/vision/-/data/?restored=1"
    back = maya.get(done.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "Restored 1 object." in back and "complete" in back and "in the trash" not in back
