"""Large folders, the trash and the small things, in a real Chromium against real gunicorn: the real `dvc`
pushes a 2,500-file directory; its tree pages by numbers and its search finds a file in a sub-folder; the
trash names a deleted dataset file; a trashed dataset says "in the trash — restore" and comes back; on a
375 px phone no page is wider than the screen and no size wraps."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from playwright.sync_api import Page, expect

from scripts.harness import RegistryServer, Simulator
from tests.conftest import TOKENS
from tests.e2e.conftest import start_signin_registry
from tests.e2e.dvc import Dvc

pytestmark = pytest.mark.e2e
VISION = 101
DATA = "/ml/vision/-/data/"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_signin_registry(  # scope api: Maintainers restore from the UI
        tmp_path_factory.mktemp("registry"), gitlab, REGISTRY_AUTH_CACHE_TTL="1", REGISTRY_OAUTH_SCOPES="api"
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def manifest(registry: RegistryServer, gitlab: Simulator, tmp_path_factory: pytest.TempPathFactory) -> str:
    """2,500 files pushed with the real dvc (2,400 in `many/`, 100 deep in `sub/deep/`) and the `.dvc`
    file naming them `data` at `main`; returns the `.dir` manifest's path."""
    root = tmp_path_factory.mktemp("project") / "repo"
    (root / "data" / "many").mkdir(parents=True)
    (root / "data" / "sub" / "deep").mkdir(parents=True)
    for i in range(2400):
        (root / "data" / "many" / f"f{i:04d}.bin").write_bytes(os.urandom(64) + b"%d" % i)
    for i in range(100):
        (root / "data" / "sub" / "deep" / f"needle-{i:02d}.txt").write_text(f"needle {i}\n")
    dvc = Dvc(root)
    dvc.run("init", "--no-scm")
    dvc.run("add", "data")
    dvc.add_remote(
        "registry", f"{registry.url}/ml/vision/-/data/dvc", auth="bearer", token=TOKENS["developer"]
    )
    dvc.run("remote", "default", "registry")
    assert "2501 files pushed" in dvc.run("push", "-j", "8").stdout
    gitlab.world.repositories[VISION] = {
        "main": {
            ".dvc/config": (root / ".dvc" / "config").read_bytes(),
            "data.dvc": (root / "data.dvc").read_bytes(),
        }
    }
    md5 = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    return f"dvc/files/md5/{md5[:2]}/{md5[2:]}"


def sign_in(page: Page, registry: RegistryServer, gitlab: Simulator, user: str) -> None:
    gitlab.world.signed_in_user = user
    page.goto(f"{registry.url}{DATA}")  # private: off to sign in, and back here
    expect(page.get_by_text(f"Signed in as @{user}")).to_be_visible()


def test_a_large_dataset_pages_by_numbers_and_its_search_finds_a_file_below(
    registry: RegistryServer, gitlab: Simulator, manifest: str, page: Page
) -> None:
    sign_in(page, registry, gitlab, "dev")
    page.get_by_role("link", name="data/").click()
    page.get_by_role("link", name="many/").click()
    caption = page.locator("table.objects caption")
    expect(caption).to_have_text("2,400 files in this folder · page 1 of 24")
    pager = page.get_by_role("navigation", name="Pages")
    expect(pager.locator("[aria-current=page]")).to_have_text("1")
    pager.get_by_role("link", name="Page 3").click()
    expect(caption).to_have_text("2,400 files in this folder · page 3 of 24")
    expect(pager.locator("[aria-current=page]")).to_have_text("3")
    expect(page.get_by_role("link", name="f0200.bin", exact=True)).to_be_visible()
    expect(page.locator("table.objects tbody tr")).to_have_count(100)
    pager.get_by_role("link", name="Last").click()
    expect(pager.locator("[aria-current=page]")).to_have_text("24")
    expect(page.get_by_role("link", name="f2399.bin", exact=True)).to_be_visible()
    pager.get_by_role("link", name="Previous").click()
    expect(pager.locator("[aria-current=page]")).to_have_text("23")

    page.get_by_label("Search data").fill("needle-4")  # from many/, across the whole dataset
    page.get_by_role("button", name="Search").click()
    expect(caption).to_have_text("10 files with “needle-4” in the path")
    row = page.locator("table.objects tbody tr").filter(has_text="sub/deep/needle-42.txt")
    expect(row).to_have_count(1)
    page.screenshot(path=str(registry.log.parent / "dataset-search.png"))
    with page.expect_download() as got:
        row.get_by_role("link", name="download").click()
    assert got.value.suggested_filename == "needle-42.txt"
    assert Path(got.value.path()).read_text() == "needle 42\n"
    row.get_by_role("link", name="sub/deep/needle-42.txt").click()  # the object's page, not a download
    assert "name=sub%2Fdeep%2Fneedle-42.txt" in page.url and "ref=main" in page.url
    assert f"dataset={manifest.replace('/', '%2F')}" in page.url
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def test_the_trash_names_a_deleted_dataset_file_and_a_trashed_dataset_comes_back(
    registry: RegistryServer, gitlab: Simulator, manifest: str, page: Page
) -> None:
    """`dvc gc -c`'s way: the `.dir` goes to the trash, then a file it lists."""
    entries = requests.get(f"{registry.url}{DATA}{manifest}", headers=_maintainer(), timeout=10).json()
    needle = next(e for e in entries if e["relpath"] == "sub/deep/needle-07.txt")["md5"]
    file_path = f"dvc/files/md5/{needle[:2]}/{needle[2:]}"
    for gone in (manifest, file_path):
        deleted = requests.delete(f"{registry.url}{DATA}{gone}", headers=_maintainer(), timeout=10)
        assert deleted.status_code == 204, deleted.text

    sign_in(page, registry, gitlab, "rita")  # a Reporter: sees the trash, restores nothing
    page.goto(f"{registry.url}{DATA}?view=trash")
    row = page.locator("table.objects tbody tr").filter(has_text=file_path)
    expect(row).to_contain_text("data/sub/deep/needle-07.txt")
    expect(page.locator("table.objects tbody tr").filter(has_text=manifest)).to_contain_text("data")
    expect(row.locator("time").first).to_have_text("just now")
    page.screenshot(path=str(registry.log.parent / "trash-names.png"))
    page.goto(f"{registry.url}{DATA}")
    data = page.locator("table.objects tbody tr").filter(has_text="data")
    expect(data).to_contain_text("in the trash — see the trash")
    expect(data).not_to_contain_text("not pushed")

    page.context.clear_cookies()
    sign_in(page, registry, gitlab, "maya")  # a Maintainer restores it from the datasets page
    data = page.locator("table.objects tbody tr").filter(has_text="data")
    expect(data).to_contain_text("in the trash — restore")
    data.get_by_role("button", name="restore data").click()
    expect(page.get_by_role("status")).to_have_text("Restored 2 objects.")  # the .dir and its trashed file
    data = page.locator("table.objects tbody tr").filter(has_text="data/")
    expect(data).to_contain_text("complete")
    head = requests.head(f"{registry.url}{DATA}{file_path}", headers=_maintainer(), timeout=10)
    assert head.status_code == 200


def _maintainer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS['maintainer']}"}


def test_on_a_phone_no_page_is_wider_than_the_screen_and_sizes_keep_to_one_line(
    registry: RegistryServer, gitlab: Simulator, manifest: str, page: Page
) -> None:
    long_name = "a-rather-long-run-name-without-any-break-" * 3 + ".json"
    for path in (f"runs/{long_name}", "runs/small.json"):
        put = requests.put(f"{registry.url}{DATA}{path}", data=b"{}" * 700, headers=_maintainer(), timeout=10)
        assert put.status_code == 201, put.text
    gone = requests.delete(f"{registry.url}{DATA}runs/small.json", headers=_maintainer(), timeout=10)
    assert gone.status_code == 204
    sign_in(page, registry, gitlab, "maya")
    page.set_viewport_size({"width": 375, "height": 740})
    tree = f"{DATA}?dataset={manifest}&name=data&ref=main"
    for url in ("/", DATA, tree + "&dir=many", tree + "&q=needle", f"{DATA}runs/", f"{DATA}?view=trash"):
        page.goto(registry.url + url)
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], (url, width)
        wrapped = page.evaluate(WRAPPED_SIZES)
        assert wrapped["sizes"] > 0 and not wrapped["wrapped"], (url, wrapped)
        page.screenshot(path=str(registry.log.parent / f"phone-{len(url)}.png"))


# The cells of each table's "Size" column (found by its header), and those whose text takes two lines.
WRAPPED_SIZES = """(() => {
  let sizes = 0; const wrapped = [];
  for (const table of document.querySelectorAll('table')) {
    const heads = [...table.querySelectorAll('thead th')].map(th => th.textContent.trim());
    const column = heads.indexOf('Size') !== -1 ? heads.indexOf('Size') : heads.indexOf('Usage');
    if (column === -1) continue;
    for (const row of table.querySelectorAll('tbody tr')) {
      const cell = row.children[column];
      if (!cell || !cell.textContent.trim()) continue;
      sizes += 1;
      const tops = new Set();  // the lines its text (not a meter beside it) takes
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.textContent.trim()) continue;
        const range = document.createRange(); range.selectNodeContents(node);
        for (const r of range.getClientRects()) tops.add(Math.round(r.top));
      }
      if (tops.size > 1) wrapped.push(cell.textContent.trim());
    }
  }
  return {sizes, wrapped: wrapped.length ? wrapped : null};
})()"""
