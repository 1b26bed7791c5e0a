"""Datasets by their repository names, in a real Chromium: the real `dvc` pushes a directory and a model
through the registry, their `.dvc` files (and a `dvc.lock`) are the simulated repository's at `main`
and tag `v1`; signed in, the data page names them, opens the directory's tree, downloads a file under
its own name (bytes compared), switches ref, and notices a missing file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect

from scripts.harness import BIN, RegistryServer, Simulator
from tests.conftest import TOKENS
from tests.e2e.conftest import start_signin_registry
from tests.e2e.dvc import Dvc

pytestmark = pytest.mark.e2e
VISION = 101


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    # dataset pages are cached no longer than permissions: 1 s here
    server = start_signin_registry(tmp_path_factory.mktemp("registry"), gitlab, REGISTRY_AUTH_CACHE_TTL="1")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer, gitlab: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC project pushed with the real dvc; its tracked files become the simulated repository."""
    root = tmp_path_factory.mktemp("project") / "repo"
    (root / "data" / "images" / "cats").mkdir(parents=True)
    for i in range(12):
        (root / "data" / "images" / "cats" / f"cat-{i:02d}.jpg").write_bytes(os.urandom(500 + i))
    (root / "data" / "labels.csv").write_text("file,label\ncat-00.jpg,cat\n")
    (root / "model.pkl").write_bytes(os.urandom(3000))
    dvc = Dvc(root)
    dvc.run("init", "--no-scm")
    dvc.run("add", "data", "model.pkl")
    dvc.add_remote(
        "registry", f"{registry.url}/ml/vision/-/data/dvc", auth="bearer", token=TOKENS["developer"]
    )
    dvc.run("remote", "default", "registry")
    assert "15 files pushed" in dvc.run("push").stdout  # 13 files, the .dir, the model
    model_out = yaml.safe_load((root / "model.pkl.dvc").read_text())["outs"][0]
    lock = {
        "schema": "2.0",
        "stages": {"train": {"cmd": "python train.py", "outs": [{**model_out, "path": "../model.pkl"}]}},
    }
    files = {
        ".dvc/config": (root / ".dvc" / "config").read_bytes(),
        "data.dvc": (root / "data.dvc").read_bytes(),
        "training/dvc.lock": yaml.safe_dump(lock).encode(),
        "README.md": b"# vision\n",
    }
    gitlab.world.repositories[VISION] = {
        "main": files,
        "v1": {k: v for k, v in files.items() if "dvc.lock" not in k},
    }
    gitlab.world.tags[VISION] = {"v1"}
    return root


def sign_in(page: Page, registry: RegistryServer, gitlab: Simulator, user: str) -> None:
    gitlab.world.signed_in_user = user
    page.goto(f"{registry.url}/ml/vision/-/data/")  # private: off to sign in, and back here
    expect(page.get_by_text(f"Signed in as @{user}")).to_be_visible()
    assert page.url == f"{registry.url}/ml/vision/-/data/"


def test_datasets_by_name(registry: RegistryServer, gitlab: Simulator, pushed: Path, page: Page) -> None:
    sign_in(page, registry, gitlab, "dev")
    rows = page.locator("table.objects tbody tr")
    expect(rows).to_have_count(2)
    data = rows.filter(has_text="data/")
    expect(data).to_contain_text("13")  # files
    expect(data).to_contain_text("complete")
    expect(data).to_contain_text("data.dvc")
    model = rows.filter(has_text="model.pkl")
    expect(model).to_contain_text("training/dvc.lock: train")
    expect(model).to_contain_text("complete")
    expect(page.get_by_text("remote registry keeps its data under dvc here")).to_be_visible()
    page.screenshot(path=str(registry.log.parent / "datasets.png"))

    page.get_by_role("link", name="data/").click()
    expect(page.get_by_role("link", name="images/")).to_be_visible()
    expect(page.get_by_role("link", name="labels.csv")).to_be_visible()
    page.get_by_role("link", name="images/").click()
    page.get_by_role("link", name="cats/").click()
    expect(page.locator("table.objects caption")).to_contain_text("12 files")
    page.screenshot(path=str(registry.log.parent / "dataset-tree.png"))
    with page.expect_download() as got:  # the name opens the file's page; the download is beside it
        page.get_by_role("row").filter(has_text="cat-03.jpg").get_by_role("link", name="download").click()
    download = got.value
    assert download.suggested_filename == "cat-03.jpg"
    assert (
        Path(download.path()).read_bytes()
        == (pushed / "data" / "images" / "cats" / "cat-03.jpg").read_bytes()
    )

    page.set_viewport_size({"width": 375, "height": 740})  # a phone: nothing wider than the screen
    page.goto(f"{registry.url}/ml/vision/-/data/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(rows.filter(has_text="data/").get_by_text("complete")).to_be_visible()  # what matters stays
    page.screenshot(path=str(registry.log.parent / "datasets-phone.png"))
    page.get_by_label("Branch or tag").select_option("v1")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)  # no dvc.lock at v1
    expect(rows.first).to_contain_text("data/")


def test_a_missing_file_shows(registry: RegistryServer, gitlab: Simulator, pushed: Path, page: Page) -> None:
    """The bucket lost a file of the directory and the usage sweep noticed: the page counts it missing,
    and the file has no download link."""
    md5 = hashlib.md5((pushed / "data" / "images" / "cats" / "cat-05.jpg").read_bytes()).hexdigest()
    (registry.storage / "projects" / str(VISION) / "dvc" / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    swept = subprocess.run(
        [BIN / "data-registry", "worker", "--once", "usage_sweep"],
        env=registry.env,
        capture_output=True,
        text=True,
    )
    assert swept.returncode == 0, swept.stderr
    time.sleep(1.1)  # past the dataset page's cache
    sign_in(page, registry, gitlab, "dev")
    row = page.locator("table.objects tbody tr").filter(has_text="data/")
    expect(row).to_contain_text("1 missing")
    page.goto(f"{registry.url}/ml/vision/-/data/?dataset=x")
    expect(page.get_by_text("That dataset is not in this registry.")).to_be_visible()
