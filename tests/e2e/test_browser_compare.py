"""Compare, history and the commands to use a dataset, in a real Chromium against real gunicorn: a real
Git + DVC repository pushes two versions of a directory and a model through the registry with the real
`dvc`; its commits (and a commit that touches only the README) become the simulated repository's, tags
v1 and v2; the Git repository itself is served by the simulator over dumb HTTP. The comparison of the
two tags lists the added, removed and changed files; the history lists the commits that changed
`data.dvc` and links to the comparison with the parent; the `dvc get` line shown on the page, run as
shown, fetches the same bytes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from scripts.harness import BIN, RegistryServer, Simulator
from tests.conftest import TOKENS
from tests.e2e.conftest import start_signin_registry
from tests.e2e.dvc import Dvc, same_tree

pytestmark = pytest.mark.e2e
PROJECT = "ml/vision"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_signin_registry(tmp_path_factory.mktemp("registry"), gitlab, REGISTRY_AUTH_CACHE_TTL="1")
    yield server
    server.stop()


@dataclass
class Pushed:
    root: Path  # the working copy, at v2
    v1: Path  # a copy of the data at v1
    shas: dict[str, str]  # the simulated repository's commits: v1, readme, v2


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _tracked(root: Path) -> dict[str, str]:
    """The files Git tracks that DVC reads: its config, the `.dvc` files, the README."""
    names = _git(root, "ls-files").split()
    return {n: (root / n).read_text() for n in names if n.endswith((".dvc", "config", ".md"))}


def _commit(gitlab: Simulator, root: Path, message: str) -> str:
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", message)
    answer = requests.post(
        f"{gitlab.url}/-/sim/repository",
        json={"project": PROJECT, "ref": "main", "files": _tracked(root), "message": message},
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["sha"])


def _tag(gitlab: Simulator, root: Path, tag: str) -> None:
    _git(root, "tag", tag)
    requests.post(f"{gitlab.url}/-/sim/tag", json={"project": PROJECT, "tag": tag, "ref": "main"}, timeout=10)


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer, gitlab: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    root = tmp_path_factory.mktemp("project") / "repo"
    (root / "data").mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    for name in ("a.csv", "b.csv", "c.csv"):
        (root / "data" / name).write_text(f"{name},1\n" * 10)
    (root / "model.pkl").write_bytes(os.urandom(3000))
    (root / "README.md").write_text("# vision\n")
    dvc = Dvc(root)
    dvc.run("init")
    dvc.add_remote(
        "registry", f"{registry.url}/{PROJECT}/-/data/dvc", auth="bearer", token=TOKENS["developer"]
    )
    dvc.run("remote", "default", "registry")
    dvc.run("add", "data", "model.pkl")
    dvc.run("push")
    shas = {"v1": _commit(gitlab, root, "First data")}
    _tag(gitlab, root, "v1")
    v1 = tmp_path_factory.mktemp("v1") / "data"
    subprocess.run(["cp", "-r", str(root / "data"), str(v1)], check=True)

    (root / "README.md").write_text("# vision\n\nMore words.\n")
    shas["readme"] = _commit(gitlab, root, "Words only")

    (root / "data" / "b.csv").write_text("b.csv,2\n" * 50)  # changed, larger
    (root / "data" / "c.csv").unlink()  # removed
    (root / "data" / "d.csv").write_text("d.csv,1\n")  # added
    (root / "data" / "z").mkdir()
    for i in range(150):  # more added: two pages of changes
        (root / "data" / "z" / f"{i:03d}.csv").write_text(f"{i}\n")
    (root / "model.pkl").write_bytes(os.urandom(4000))
    dvc.run("add", "data", "model.pkl")
    dvc.run("push")
    shas["v2"] = _commit(gitlab, root, "Second data")
    _tag(gitlab, root, "v2")

    bare = root.parent / "vision.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(root), str(bare)], check=True)
    subprocess.run(["git", "update-server-info"], cwd=bare, check=True)
    answer = requests.post(f"{gitlab.url}/-/sim/git", json={"project": PROJECT, "dir": str(bare)}, timeout=10)
    answer.raise_for_status()
    return Pushed(root, v1, shas)


def sign_in(page: Page, registry: RegistryServer, gitlab: Simulator, path: str = "") -> None:
    gitlab.world.signed_in_user = "dev"
    page.goto(f"{registry.url}/{PROJECT}/-/data/{path}")
    expect(page.get_by_text("Signed in as @dev")).to_be_visible()


def test_compare_two_tags(registry: RegistryServer, gitlab: Simulator, pushed: Pushed, page: Page) -> None:
    sign_in(page, registry, gitlab)
    page.get_by_label("Compare refs").fill("v1...v2")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", name="Compare v1 with v2")).to_be_visible()
    summary = page.locator("table.compare-summary tbody tr")
    expect(summary.filter(has_text="data")).to_contain_text("changed")
    data = page.locator("section.dataset-diff").filter(has=page.get_by_role("heading", name="data changed"))
    rows = data.locator("tbody tr")
    expect(rows).to_have_count(100)
    for cell in ("b.csv", "changed", "80 B", "400 B"):
        expect(rows.nth(0)).to_contain_text(cell)
    expect(rows.nth(1)).to_contain_text("c.csv")
    expect(rows.nth(1)).to_contain_text("removed")
    expect(rows.nth(2)).to_contain_text("d.csv")
    expect(rows.nth(2)).to_contain_text("added")
    expect(data.locator("caption")).to_have_text(
        "151 files added, 1 file removed, 1 file changed · page 1 of 2"
    )
    model = page.locator("section.dataset-diff").filter(
        has=page.get_by_role("heading", name="model.pkl changed")
    )
    for cell in ("model.pkl", "changed", "2.9 KiB", "3.9 KiB"):
        expect(model.locator("tbody tr")).to_contain_text(cell)
    page.screenshot(path=str(registry.log.parent / "compare.png"), full_page=True)
    data.get_by_role("link", name="Page 2").click()  # that dataset alone, its second page
    expect(page.locator("section.dataset-diff")).to_have_count(1)
    rows = page.locator("section.dataset-diff tbody tr")
    expect(rows).to_have_count(53)
    expect(rows.first).to_contain_text("z/097.csv")
    expect(page.locator("section.dataset-diff caption")).to_contain_text("page 2 of 2")
    page.set_viewport_size({"width": 375, "height": 740})  # a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.goto(f"{registry.url}/{PROJECT}/-/data/")
    page.get_by_text("Use model.pkl").click()  # every dataset, a file one too, has its lines
    expect(page.locator("details.use pre.dvc-get").filter(has_text="model.pkl")).to_contain_text(
        f"dvc get {gitlab.url}/{PROJECT}.git model.pkl --rev main --remote-config auth=custom"
    )
    expect(page.locator("details.use pre.download").filter(has_text="model.pkl")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(registry.log.parent / "datasets-use-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    answer = page.goto(f"{registry.url}/{PROJECT}/-/data/?compare=v1...nope")
    assert answer is not None and answer.status == 404
    expect(page.get_by_text("No branch, tag or commit 'nope' in this repository")).to_be_visible()
    answer = page.goto(f"{registry.url}/{PROJECT}/-/data/?compare=v1")
    assert answer is not None and answer.status == 400
    expect(page.get_by_text("compare needs two refs")).to_be_visible()


def test_history_of_a_dvc_file(
    registry: RegistryServer, gitlab: Simulator, pushed: Pushed, page: Page
) -> None:
    sign_in(page, registry, gitlab)
    page.get_by_role("link", name="history of data").click()
    expect(page.get_by_role("heading", name="History of data")).to_be_visible()
    rows = page.locator("table.history tbody tr")
    expect(rows).to_have_count(2)  # not the commit that changed only the README
    expect(rows.nth(0)).to_contain_text("Second data")
    expect(rows.nth(0)).to_contain_text(pushed.shas["v2"][:8])
    expect(rows.nth(0)).to_contain_text("Administrator")
    expect(rows.nth(1)).to_contain_text("First data")
    page.screenshot(path=str(registry.log.parent / "history.png"), full_page=True)
    rows.nth(0).get_by_role("link", name="with its parent").click()
    expect(
        page.get_by_role("heading", name=f"Compare {pushed.shas['readme']} with {pushed.shas['v2']}")
    ).to_be_visible()
    files = page.locator("section.dataset-diff tbody tr")
    expect(files.filter(has_text="d.csv")).to_contain_text("added")
    expect(files.filter(has_text="c.csv")).to_contain_text("removed")


def test_the_dvc_get_line_works_when_run(
    registry: RegistryServer, gitlab: Simulator, pushed: Pushed, page: Page, tmp_path: Path
) -> None:
    sign_in(page, registry, gitlab, "?ref=v1")
    page.get_by_role("link", name="data/").first.click()
    block = page.locator("pre.dvc-get")
    expect(block).to_contain_text("dvc get")
    line = next(x for x in block.inner_text().splitlines() if x.startswith("dvc get "))
    assert line.startswith(f"dvc get {gitlab.url}/{PROJECT}.git data --rev v1 --remote-config ")
    assert TOKENS["developer"] not in page.content()
    run_as_shown(line, tmp_path, {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    assert same_tree(tmp_path / "data", pushed.v1)

    page.get_by_role("link", name="b.csv").click()  # a file's page: its own lines
    expect(page.locator("pre.dvc-get")).to_contain_text(
        f"dvc get {gitlab.url}/{PROJECT}.git data/b.csv --rev v1"
    )
    expect(page.locator("pre.download")).to_contain_text("data-registry download ")
    expect(page.locator("pre.python")).to_contain_text("dvc.api.open(")


TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "dvc-s3" / "bin"  # dvc with dvc-s3


def test_the_dvc_get_line_of_an_s3_remote_works_when_run(
    registry: RegistryServer, gitlab: Simulator, pushed: Pushed, page: Page, tmp_path: Path
) -> None:
    """A branch whose default remote is DVC's s3 remote through the project's S3 door (the same objects
    the http remote pushed): the line passes the token as the key pair, and the tools' dvc runs it."""
    if not (TOOLS / "dvc").exists():
        pytest.skip("needs dvc with dvc-s3 in .tools/dvc-s3 (scripts/bootstrap test)")
    root = pushed.root
    _git(root, "checkout", "-q", "-b", "s3-door", "v2")
    config = root / ".dvc" / "config"
    config.write_text(
        "[core]\n    remote = door\n"
        f"['remote \"door\"']\n    url = s3://dvc\n    endpointurl = {registry.url}/{PROJECT}/-/s3\n"
    )
    _git(root, "commit", "-qam", "The S3 door")
    files = {**_tracked(root), ".dvc/config": config.read_text()}
    requests.post(
        f"{gitlab.url}/-/sim/repository",
        json={"project": PROJECT, "ref": "s3-door", "files": files, "message": "The S3 door"},
        timeout=10,
    ).raise_for_status()
    bare = root.parent / "vision.git"
    _git(root, "push", "-q", str(bare), "s3-door")
    subprocess.run(["git", "update-server-info"], cwd=bare, check=True)

    sign_in(page, registry, gitlab, "?ref=s3-door")
    page.get_by_text("Use data").click()
    block = page.locator("details.use pre.dvc-get").first
    line = next(x for x in block.inner_text().splitlines() if x.startswith("dvc get "))
    assert line == (
        f"dvc get {gitlab.url}/{PROJECT}.git data --rev s3-door --remote-config "
        '"access_key_id=$GITLAB_TOKEN" "secret_access_key=$GITLAB_TOKEN"'
    )
    run_as_shown(line, tmp_path, {"PATH": f"{TOOLS}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert same_tree(tmp_path / "data", root / "data")


def run_as_shown(line: str, cwd: Path, env: dict[str, str]) -> None:
    """A command line from the page, run by bash with a Reporter's token in GITLAB_TOKEN."""
    run = subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        env={
            **env,
            "GITLAB_TOKEN": TOKENS["reporter"],
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(cwd / "site-cache"),
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"{line}\n{run.stdout}\n{run.stderr}"
