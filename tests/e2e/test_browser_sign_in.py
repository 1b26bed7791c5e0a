"""Sign-in with GitLab in a real Chromium against the registry under gunicorn and the simulator's OAuth
provider: click "Sign in", come back signed in to the page you started from, see your projects with
data, sign out. Screenshots land beside the registry's log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Page, expect

from scripts.harness import RegistryServer, Simulator
from tests.conftest import TOKENS
from tests.e2e.conftest import start_signin_registry

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_signin_registry(tmp_path_factory.mktemp("registry"), gitlab)
    requests.put(
        f"{server.url}/ml/vision/-/data/dvc/files/md5/00/11",
        data=b"model weights",
        headers={"Authorization": f"Bearer {TOKENS['developer']}"},
        timeout=10,
    ).raise_for_status()
    yield server
    server.stop()


def test_sign_in_and_out_in_a_browser(registry: RegistryServer, gitlab: Simulator, page: Page) -> None:
    page.goto(f"{registry.url}/")
    expect(page.get_by_role("heading", name="Data for every GitLab project")).to_be_visible()
    page.screenshot(path=str(registry.log.parent / "landing-signed-out.png"))

    page.get_by_role("link", name="Sign in with GitLab").first.click()  # to GitLab and back
    expect(page.get_by_text("Signed in as @dev")).to_be_visible()
    assert page.url == f"{registry.url}/"
    expect(page.get_by_role("link", name="ml/vision")).to_have_attribute("href", "/ml/vision/-/data/")
    expect(page.get_by_role("cell", name="13 B", exact=True)).to_be_visible()  # sizes as on every page
    page.screenshot(path=str(registry.log.parent / "landing-signed-in.png"))
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["registry_session"]["httpOnly"] and cookies["registry_session"]["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # nothing for scripts to read

    page.keyboard.press("Tab")  # the page works from the keyboard: focus reaches the sign-out button
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Sign in with GitLab").first).to_be_visible()
    assert "registry_session" not in {c["name"] for c in page.context.cookies()}


def test_reporters_get_no_controls_and_forged_forms_are_refused(
    registry: RegistryServer, gitlab: Simulator, page: Page
) -> None:
    requests.delete(
        f"{registry.url}/ml/vision/-/data/dvc/files/md5/00/11",
        headers={"Authorization": f"Bearer {TOKENS['maintainer']}"},
        timeout=10,
    ).raise_for_status()
    gitlab.world.signed_in_user = "rita"  # a Reporter of ml/vision
    page.goto(f"{registry.url}/ml/vision/-/data/?view=trash")  # private: sign in first, then back here
    expect(page.get_by_text("Signed in as @rita")).to_be_visible()
    expect(page.get_by_role("cell", name="dvc/files/md5/00/11")).to_be_visible()
    expect(page.get_by_role("checkbox")).to_have_count(0)
    expect(page.get_by_role("button", name="Restore the checked objects")).to_have_count(0)

    csrf = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    restore = f"{registry.url}/-/ui/projects/101/trash/restore"
    forged = page.request.post(restore, form={"csrf_token": csrf or "", "path": "dvc/files/md5/00/11"})
    assert forged.status == 403  # a Reporter's own valid form: GitLab's role says no
    without_csrf = page.request.post(restore, form={"path": "dvc/files/md5/00/11"})
    assert without_csrf.status == 403 and "CSRF" in without_csrf.text()


def test_an_expired_access_token_is_refreshed_transparently(
    registry: RegistryServer, gitlab: Simulator, page: Page
) -> None:
    gitlab.world.signed_in_user = "dev"
    gitlab.world.oauth_lifetime = 30  # GitLab's tokens now expire within the refresh margin
    try:
        page.goto(f"{registry.url}/-/auth/sign_in?return_to=/")
        expect(page.get_by_text("Signed in as @dev")).to_be_visible()
        refreshes = gitlab.world.calls["POST /oauth/token"]
        page.reload()
        expect(page.get_by_text("Signed in as @dev")).to_be_visible()
        expect(page.get_by_role("link", name="ml/vision")).to_be_visible()
        assert gitlab.world.calls["POST /oauth/token"] == refreshes + 1  # one refresh, no sign-in page
    finally:
        gitlab.world.oauth_lifetime = 7200
