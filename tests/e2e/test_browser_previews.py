"""Previews on object pages, in a real Chromium against the registry under gunicorn and the simulated
GitLab, the objects uploaded with the data plane (PUT): a content-addressed CSV opened by its dataset name
shows its column names and first rows (and scrolls inside its box on a phone), a PNG shows, a README
renders with its script inert, a binary says why there is no preview and offers its download."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from scripts.harness import RegistryServer, Simulator
from tests.conftest import TOKENS
from tests.e2e.conftest import start_signin_registry
from tests.unit.test_previews import png

pytestmark = pytest.mark.e2e
DATA = "/ml/vision/-/data/"
CSV_ADDRESS = "dvc/files/md5/3f/0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # no extension, as DVC stores it
COLUMNS = ["city", "population", *(f"measure_{i}" for i in range(18))]
CSV = ",".join(COLUMNS) + "\n" + "".join(f"town {i},{i * 100}" + ",1.5" * 18 + "\n" for i in range(300))
README = (
    "# Cats\n\nA *small* dataset. [Home](https://example.org)\n\n"
    "<script>window.previewPwned = true</script>\n\n"
    '<img src="nothing.png" onerror="window.previewPwned = true">\n'
)
BINARY = os.urandom(3000)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_signin_registry(tmp_path_factory.mktemp("registry"), gitlab)
    token = {"Authorization": f"Bearer {TOKENS['developer']}"}
    for path, body in (
        (CSV_ADDRESS, CSV.encode()),
        ("pics/cat.png", png(40, 30)),
        ("docs/README.md", README.encode()),
        ("models/weights.bin", BINARY),
    ):
        requests.put(server.url + DATA + path, data=body, headers=token, timeout=10).raise_for_status()
    yield server
    server.stop()


@pytest.fixture
def signed_in(page: Page, registry: RegistryServer, gitlab: Simulator) -> Page:
    gitlab.world.signed_in_user = "dev"
    page.goto(f"{registry.url}/-/auth/sign_in?return_to={DATA}")
    expect(page.get_by_text("Signed in as @dev")).to_be_visible()
    return page


def shot(page: Page, registry: RegistryServer, name: str) -> None:
    page.screenshot(path=str(registry.log.parent / f"{name}.png"), full_page=True)


def test_a_csv_shows_its_header_and_first_rows_and_scrolls_in_its_box_on_a_phone(
    signed_in: Page, registry: RegistryServer
) -> None:
    page = signed_in
    page.goto(f"{registry.url}{DATA}{CSV_ADDRESS}?name=data/towns.csv")
    expect(page.get_by_role("heading", name="towns.csv")).to_be_visible()
    table = page.get_by_role("region", name="First rows of towns.csv")
    expect(table.locator("thead th")).to_have_text(COLUMNS)
    expect(table.locator("tbody tr")).to_have_count(50)
    expect(table.locator("tbody tr").first.locator("td").first).to_have_text("town 0")
    expect(table.locator("tbody tr").last.locator("td").nth(1)).to_have_text("4900")
    expect(page.get_by_text("The first 50 rows.")).to_be_visible()
    expect(page.get_by_role("link", name="Download towns.csv")).to_be_visible()
    shot(page, registry, "preview-csv")

    page.set_viewport_size({"width": 375, "height": 740})  # a phone: the table scrolls, the page does not
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = table.element_handle()
    assert box is not None and box.evaluate("b => b.scrollWidth > b.clientWidth")
    shot(page, registry, "preview-csv-phone")


def test_a_png_shows(signed_in: Page, registry: RegistryServer) -> None:
    page = signed_in
    page.goto(f"{registry.url}{DATA}pics/cat.png")
    image = page.get_by_role("img", name="cat.png")
    expect(image).to_be_visible()
    assert image.evaluate("i => i.complete && i.naturalWidth") == 40
    shot(page, registry, "preview-png")


def test_a_readme_renders_with_its_script_inert(signed_in: Page, registry: RegistryServer) -> None:
    page = signed_in
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{registry.url}{DATA}docs/README.md")
    markdown = page.locator(".markdown")
    expect(markdown.get_by_role("heading", name="Cats")).to_be_visible()
    expect(markdown.locator("em")).to_have_text("small")
    expect(markdown.get_by_role("link", name="Home")).to_have_attribute("rel", "nofollow noopener noreferrer")
    page.wait_for_load_state("load")  # the image failed to load by now: an onerror would have run
    assert page.evaluate("window.previewPwned") is None
    assert markdown.locator("script, [onerror]").count() == 0  # gone, not only blocked by the CSP
    assert errors == []
    page.set_viewport_size({"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, registry, "preview-markdown")


def test_a_binary_says_why_and_offers_its_download(
    signed_in: Page, registry: RegistryServer, tmp_path: Path
) -> None:
    page = signed_in
    page.goto(f"{registry.url}{DATA}models/weights.bin")
    expect(page.get_by_text("No preview: There is no preview for .bin files (2.9 KiB).")).to_be_visible()
    with page.expect_download() as got:
        page.get_by_role("link", name="Download it").click()
    assert got.value.suggested_filename == "weights.bin"
    saved = tmp_path / "weights.bin"
    got.value.save_as(saved)
    assert saved.read_bytes() == BINARY
    shot(page, registry, "preview-binary")
