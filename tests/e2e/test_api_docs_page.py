"""`/api/v1/docs` in a real Chromium with every request outside the registry refused: the page renders
from the registry's own assets, lists every operation of the OpenAPI document with its description and
examples, shows formatted text (no Markdown syntax), fits a phone, and links to and from the UI."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import Page, Route, expect

from scripts.harness import RegistryServer

PHONE = {"width": 375, "height": 812}


def test_api_reference_renders_offline(registry: RegistryServer, page: Page) -> None:
    outside: list[str] = []

    def only_the_registry(route: Route) -> None:
        if route.request.url.startswith(registry.url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_registry)
    page.goto(f"{registry.url}/api/v1/docs")

    document = requests.get(f"{registry.url}/api/v1/openapi.json", timeout=10).json()
    operations = [(method.upper(), path) for path, methods in document["paths"].items() for method in methods]
    assert len(operations) >= 13
    for method, path in operations:
        expect(
            page.locator("section.operation h2", has_text=path).filter(has_text=method).first
        ).to_be_visible()
    # the stylesheet came from the registry and applies: a GET badge is green, the layout has its sidebar
    badge = page.locator("section.operation .method.get").first
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(16, 133, 72)"
    assert page.locator("nav").evaluate("e => getComputedStyle(e).borderRightStyle") == "solid"
    assert outside == []

    page.locator("section.operation", has_text="/objects/exists").get_by_role(
        "link", name="ExistsRequest"
    ).click()
    expect(page.locator("#schema-ExistsRequest")).to_be_in_viewport()
    expect(page.locator("#schema-ExistsRequest")).to_contain_text("at most 1000 items")
    page.screenshot(path=str(registry.log.parent / "api-docs.png"), full_page=True)


def test_descriptions_are_formatted_and_everything_has_an_example(
    registry: RegistryServer, page: Page
) -> None:
    document = requests.get(f"{registry.url}/api/v1/openapi.json", timeout=10).json()
    page.goto(f"{registry.url}/api/v1/docs")
    text = page.locator("body").inner_text()
    for syntax in ("`", "**", "]("):
        assert syntax not in text, f"raw Markdown {syntax!r} on the page"
    # formatted: the descriptions' `code` and **bold** became elements
    upload = page.locator("section.operation", has=page.locator("h2", has_text="/uploads")).first
    expect(upload.locator(".description code", has_text="complete").first).to_be_visible()
    expect(upload.locator(".description strong", has_text="Developer")).to_be_visible()
    expect(upload.locator(".description li")).to_have_count(2)

    for path, methods in document["paths"].items():
        for method, op in methods.items():
            section = page.locator("#" + re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-"))
            expect(section.locator("h2")).to_have_text(f"{method.upper()} {path}")
            expect(section.locator(".description")).not_to_be_empty()
            expect(section.locator(".example-request pre")).to_contain_text("curl ")
            answers = [code for code, a in op["responses"].items() if code.startswith("2") and "content" in a]
            expect(section.locator(".example-answer pre")).to_have_count(len(answers))
            for parameter in op.get("parameters", []):
                row = section.locator(
                    "tr", has=page.locator("td:first-child code", has_text=parameter["name"])
                )
                expect(row.locator("td").nth(3)).not_to_have_text("")
                expect(row.locator(".example")).to_have_count(1)
    for name, schema in document["components"]["schemas"].items():
        rows = page.locator(f"#schema-{name} tbody tr")
        expect(rows).to_have_count(len(schema.get("properties", {})))
        for field in schema.get("properties", {}):
            name_cell = page.locator("td:first-child > code", has_text=re.compile(f"^{field}$"))
            row = rows.filter(has=name_cell)
            expect(row).to_have_count(1)
            expect(row.locator("td").nth(2)).not_to_have_text("", timeout=1000)
            if not row.locator("td").nth(1).locator("a").count():  # a nested schema shows its own examples
                expect(row.locator(".example"), f"{name}.{field} has no example").to_have_count(
                    1, timeout=1000
                )


def test_the_reference_fits_a_phone(registry: RegistryServer, page: Page) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{registry.url}/api/v1/docs")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # long lines scroll inside their own box, not the page
    curl = page.locator(".example-request pre").first
    assert curl.evaluate("e => getComputedStyle(e).overflowX") == "auto"
    page.screenshot(path=str(registry.log.parent / "api-docs-phone.png"), full_page=True)


def test_the_ui_and_the_reference_link_to_each_other(registry: RegistryServer, page: Page) -> None:
    page.goto(f"{registry.url}/api/v1/docs")
    page.get_by_role("link", name="GitLab Data Registry").first.click()
    expect(page).to_have_url(f"{registry.url}/")
    page.get_by_role("link", name="API reference").click()
    expect(page).to_have_url(f"{registry.url}/api/v1/docs")
    expect(page.locator("h1")).to_contain_text("JSON API")
