"""Single sign-on in a real browser: a Daphne with OIDC on, the test provider (django-oidc-provider in
its own process), both on 127.0.0.1, and headless Chromium clicking through both."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS, running_daphne

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_ID, CLIENT_SECRET = "office-e2e", "office-e2e-secret-0123456789"


@pytest.fixture(scope="module")
def provider(oidc_provider):
    return oidc_provider


@pytest.fixture(scope="module")
def sso_office(provider, django_db_setup, django_db_blocker):
    """A Daphne of its own with single sign-on through the test provider (the session-wide one has it off)."""
    with running_daphne("daphne-oidc-e2e.log", **provider.office_env(client_id=CLIENT_ID, secret=CLIENT_SECRET)) as url:
        provider.set_client(CLIENT_ID, secret=CLIENT_SECRET, redirect_uris=[f"{url}/oidc/callback/"],
                            post_logout_redirect_uris=[f"{url}/login/"])
        yield url


def test_a_member_signs_in_through_the_provider_and_out_again_at_the_provider(office, sso_office, provider, browser):
    # given kim, who has an account at the provider only
    provider.set_user("kim", password=PASSWORD, first_name="Kim", last_name="Keller", email="kim@example.test")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    visited: list[str] = []
    page.on("request", lambda request: visited.append(request.url) if request.is_navigation_request() else None)
    try:
        # when she chooses the provider on the sign-in page and signs in there
        page.goto(f"{sso_office}/login/")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "oidc-sign-in-page.png"))
        page.click("text=Sign in with Test ID")
        page.wait_for_url(lambda url: url.startswith(f"{provider.url}/accounts/login/"))
        page.fill("#provider-username", "kim")
        page.fill("#provider-password", PASSWORD)
        page.click("#provider-sign-in")

        # then she lands in the office under the name the provider gave
        page.wait_for_selector("#office-app")
        assert page.url.startswith(f"{sso_office}/office/")
        assert page.inner_text("#me-name").strip() == "Kim Keller"
        page.wait_for_function("document.querySelector('#connection-state')?.textContent.trim() === 'connected'")
        page.screenshot(path=str(ARTIFACTS / "oidc-signed-in.png"))

        # when she signs out
        visited.clear()
        page.click("#signout-form button[type=submit]")
        # then she passes through the provider's end-session and is back on the office's sign-in page
        page.wait_for_url(f"{sso_office}/login/")
        page.wait_for_selector("#id_username")
        assert any(url.startswith(f"{provider.issuer}/end-session?") for url in visited), visited

        # and the provider forgot her too: signing in again asks for her password there
        page.click("text=Sign in with Test ID")
        page.wait_for_url(lambda url: url.startswith(f"{provider.url}/accounts/login/"))
    finally:
        context.close()
