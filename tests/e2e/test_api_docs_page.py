"""`/api/v1/docs` in a real Chromium with every request outside the registry refused: the page renders
from the registry's own assets, lists every operation of the OpenAPI document, and its links work."""

from __future__ import annotations

import requests
from playwright.sync_api import Page, Route, expect

from scripts.harness import RegistryServer


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
