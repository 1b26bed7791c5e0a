"""Browsers get pages, in a real Chromium against the registry under gunicorn and the simulated GitLab:
an object URL (the one pasted in chat) opened signed out asks to sign in and, signed in, is the object's
page with a download that saves the file; an unknown route, an expired sign-in and GitLab down are pages
too; while requests asking for JSON or `*/*` on the same URLs get exactly the JSON and redirects they got
before. Screenshots land beside the registry's log."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, Response, expect

from scripts.harness import RegistryServer, Simulator
from tests.conftest import TOKENS
from tests.e2e.conftest import start_signin_registry
from tests.unit.test_browser_errors import CHROMIUM_NAVIGATION

pytestmark = pytest.mark.e2e
BODY = os.urandom(4321)
OBJECT = "/ml/vision/-/data/models/weights v2.bin"  # a space: the download keeps the name as it is
QUOTED = "/ml/vision/-/data/models/weights%20v2.bin"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    # permissions cached for 1 s and never served stale, so "GitLab down" shows at once
    server = start_signin_registry(
        tmp_path_factory.mktemp("registry"),
        gitlab,
        REGISTRY_AUTH_CACHE_TTL="1",
        REGISTRY_AUTH_STALE_GRACE="0",
    )
    requests.put(
        server.url + QUOTED, data=BODY, headers={"Authorization": f"Bearer {TOKENS['developer']}"}, timeout=10
    ).raise_for_status()
    yield server
    server.stop()


def shot(page: Page, registry: RegistryServer, name: str) -> None:
    page.screenshot(path=str(registry.log.parent / f"{name}.png"))


def json_answers(registry: RegistryServer, path: str, **headers: str) -> list[requests.Response]:
    """The same URL asked as requests, DVC and curl ask (`*/*`) and as a JSON client."""
    return [
        requests.get(
            registry.url + path, headers={"Accept": accept, **headers}, timeout=10, allow_redirects=False
        )
        for accept in ("*/*", "application/json")
    ]


def test_an_object_url_asks_to_sign_in_then_shows_the_object(
    registry: RegistryServer, gitlab: Simulator, page: Page, tmp_path: Path
) -> None:
    gitlab.world.signed_in_user = "dev"
    with page.expect_request(lambda r: r.is_navigation_request()) as navigation:
        answer = page.goto(registry.url + QUOTED)
    assert answer is not None and answer.status == 404  # the status a JSON client gets: the project is hidden
    # the Accept header the unit tests try the rule with is the one this Chromium sends
    assert navigation.value.all_headers()["accept"] == CHROMIUM_NAVIGATION
    expect(page.get_by_role("heading", name="Sign in to see this")).to_be_visible()
    expect(page.get_by_text("ml/vision is not public, or it does not exist")).to_be_visible()
    shot(page, registry, "object-signed-out")

    page.get_by_role("main").get_by_role("link", name="Sign in with GitLab").click()  # to GitLab and back
    expect(page.get_by_text("Signed in as @dev")).to_be_visible()
    assert page.url == registry.url + QUOTED
    expect(page.get_by_role("heading", name="weights v2.bin")).to_be_visible()
    details = page.locator("dl.details")
    expect(details).to_contain_text("models/weights v2.bin")
    expect(details).to_contain_text("4.2 KiB")
    expect(details).to_contain_text("4,321 bytes")
    expect(details).to_contain_text(hashlib.md5(BODY).hexdigest())
    expect(details.locator("time")).to_contain_text(time.strftime("%Y-%m-%d", time.gmtime()))
    shot(page, registry, "object-page")
    page.set_viewport_size({"width": 375, "height": 740})  # a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, registry, "object-page-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    with page.expect_download() as got:
        page.get_by_role("link", name="Download weights v2.bin").click()
    assert got.value.suggested_filename == "weights v2.bin"
    saved = tmp_path / got.value.suggested_filename
    got.value.save_as(saved)
    assert saved.read_bytes() == BODY

    # the same URL for clients: JSON and redirects exactly as before, the browser's cookie or not
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}["registry_session"]
    for asked in json_answers(registry, QUOTED, Cookie=f"registry_session={cookie}"):
        assert asked.status_code == 404 and asked.json()["error"]["code"] == "project_not_found"
    for asked in json_answers(registry, QUOTED, Authorization=f"Bearer {TOKENS['reporter']}"):
        assert asked.status_code == 200 and asked.headers["X-Checksum-MD5"] == hashlib.md5(BODY).hexdigest()
    head = requests.head(
        registry.url + QUOTED, headers={"Authorization": f"Bearer {TOKENS['reporter']}"}, timeout=10
    )
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(BODY))


def test_an_unknown_route_is_a_page_and_nothing_chromium_loads_is_json(
    registry: RegistryServer, page: Page
) -> None:
    answers: list[Response] = []
    page.on("response", lambda answered: answers.append(answered))
    answer = page.goto(f"{registry.url}/ml/vision/settings")
    assert answer is not None and answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_text("There is no page at /ml/vision/settings")).to_be_visible()
    expect(page.get_by_text("HTTP 404 Not Found")).to_be_visible()
    shot(page, registry, "unknown-route")
    page.get_by_role("link", name="Back to the start page").click()
    expect(page.get_by_role("heading", name="Data for every GitLab project")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert answers and not [a.url for a in answers if "json" in a.headers.get("content-type", "")]
    icon = page.request.get(f"{registry.url}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"

    for asked in json_answers(registry, "/ml/vision/settings"):
        assert asked.status_code == 404 and asked.json()["error"]["code"] == "not_found"


def test_an_expired_sign_in_offers_to_sign_in_again(
    registry: RegistryServer, gitlab: Simulator, page: Page
) -> None:
    gitlab.world.signed_in_user = "dev"
    gitlab.world.oauth_lifetime = 30  # GitLab's tokens are due for a refresh at once
    try:
        page.goto(f"{registry.url}/-/auth/sign_in?return_to=/")
        expect(page.get_by_text("Signed in as @dev")).to_be_visible()
        gitlab.world.refresh_tokens.clear()  # and GitLab no longer refreshes them: the sign-in is over
        answer = page.goto(registry.url + QUOTED)
        assert answer is not None and answer.status == 404
        expect(page.get_by_role("heading", name="Your sign-in has expired")).to_be_visible()
        again = page.get_by_role("main").get_by_role("link", name="Sign in with GitLab")
        expect(again).to_have_attribute("href", f"/-/auth/sign_in?return_to={QUOTED.replace('%20', '+')}")
        shot(page, registry, "sign-in-expired")
        gitlab.world.oauth_lifetime = 7200
        again.click()
        expect(page.get_by_role("heading", name="weights v2.bin")).to_be_visible()  # back where it was
    finally:
        gitlab.world.oauth_lifetime = 7200


def test_gitlab_down_is_a_503_page_for_the_browser(
    registry: RegistryServer, gitlab: Simulator, page: Page
) -> None:
    gitlab.world.signed_in_user = "dev"
    page.goto(f"{registry.url}/-/auth/sign_in?return_to={QUOTED}")
    expect(page.get_by_role("heading", name="weights v2.bin")).to_be_visible()
    time.sleep(1.2)  # past the cached permission
    gitlab.world.fault = 503
    try:
        answer = page.goto(registry.url + QUOTED)
        assert answer is not None and answer.status == 503
        assert int(answer.headers["retry-after"]) > 0
        expect(page.get_by_role("heading", name="GitLab is unreachable")).to_be_visible()
        expect(page.get_by_text(f"Try again in {answer.headers['retry-after']} seconds.")).to_be_visible()
        expect(page.get_by_text("Signed in as @dev")).to_be_visible()  # still signed in: only GitLab is down
        shot(page, registry, "gitlab-down")
        for asked in json_answers(registry, QUOTED, Authorization=f"Bearer {TOKENS['reporter']}"):
            assert asked.status_code == 503 and asked.json()["error"]["code"] == "gitlab_unavailable"
    finally:
        gitlab.world.fault = None
