"""Single sign-on against a real OpenID Connect provider (django-oidc-provider in its own process on
127.0.0.1): the office is driven with Django's test client, the person's browser at the provider with
requests, through the provider's own sign-in form."""

from __future__ import annotations

import logging
import re
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client

from rooms.models import Profile
from tests.conftest import PASSWORD

CLIENT_ID, CLIENT_SECRET = "office-tests", "office-tests-secret-0123456789"
OFFICE = "http://testserver"
User = get_user_model()


@pytest.fixture(scope="module")
def provider(oidc_provider):
    oidc_provider.set_client(CLIENT_ID, secret=CLIENT_SECRET, redirect_uris=[f"{OFFICE}/oidc/callback/"],
                             post_logout_redirect_uris=[f"{OFFICE}/login/"])
    return oidc_provider


@pytest.fixture
def sign_on(settings, provider):
    """The office with single sign-on through the test provider, as OIDC_* from the environment make it."""
    settings.OIDC_ENABLED = True
    settings.OFFICE_OIDC_PROVIDER_NAME = "Test ID"
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    for setting, path in (("AUTHORIZATION", "authorize"), ("TOKEN", "token"), ("USER", "userinfo"),
                          ("JWKS", "jwks"), ("LOGOUT", "end-session")):
        setattr(settings, f"OIDC_OP_{setting}_ENDPOINT", f"{provider.issuer}/{path}")
    settings.OFFICE_OIDC_ADMIN_GROUP = "office-admins"
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "rooms.oidc.OidcMemberBackend"]
    return provider


def _form_field(html: str, name: str) -> str:
    return unescape(re.search(rf'name="{name}" value="([^"]*)"', html).group(1))


def sign_in_through_provider(office: Client, browser: requests.Session, provider, username: str):
    """Click "Sign in with Test ID", sign in at the provider if it asks, follow it back to the office;
    returns the office's answer to the callback."""
    start = office.get("/oidc/authenticate/")
    assert start.status_code == 302 and start["Location"].startswith(f"{provider.issuer}/authorize?")
    at_provider = browser.get(start["Location"], allow_redirects=False)
    if urlsplit(at_provider.headers["Location"]).path == "/accounts/login/":
        form_url = urljoin(provider.url, at_provider.headers["Location"])
        form = browser.get(form_url)
        at_provider = browser.post(form_url, allow_redirects=False, data={
            "csrfmiddlewaretoken": _form_field(form.text, "csrfmiddlewaretoken"),
            "username": username, "password": PASSWORD, "next": _form_field(form.text, "next")})
        assert at_provider.status_code == 302, "the provider did not accept the password"
        at_provider = browser.get(urljoin(provider.url, at_provider.headers["Location"]), allow_redirects=False)
    assert at_provider.status_code == 302, f"the provider answered {at_provider.status_code}: {at_provider.text}"
    back = at_provider.headers["Location"]
    assert back.startswith(f"{OFFICE}/oidc/callback/?"), back
    return office.get(back.removeprefix(OFFICE))


def test_first_sign_in_creates_the_member_with_name_and_address_from_the_claims(sign_on, caplog, db):
    # given erin, who has an account at the provider only
    sub = sign_on.set_user("erin", password=PASSWORD, first_name="Erin", last_name="Example",
                           email="erin@example.test")
    office, browser = Client(), requests.Session()
    # when she opens the sign-in page, then it offers the provider beside the password form
    page = office.get("/login/").content.decode()
    assert "Sign in with Test ID" in page and 'name="password"' in page

    # when she signs in through the provider
    with caplog.at_level(logging.INFO, logger="rooms.services"):
        landed = sign_in_through_provider(office, browser, sign_on, "erin")

    # then she is in the office, as the member the provider described
    assert landed.status_code == 302 and landed["Location"] == "/"
    me = office.get("/api/me/").json()
    assert (me["username"], me["name"], me["role"]) == ("erin", "Erin Example", "member")
    erin = User.objects.get(username="erin")
    assert erin.email == "erin@example.test" and not erin.has_usable_password()
    assert erin.profile.oidc_subject == sub
    assert any(getattr(r, "audit", None) == "member.sign_on_created" and r.user_id == erin.pk for r in caplog.records)


def test_a_second_sign_in_is_the_same_member_with_the_name_brought_up_to_date(sign_on, db):
    # given frank signed in through the provider once
    sign_on.set_user("frank", password=PASSWORD, first_name="Frank", last_name="First", email="frank@example.test")
    sign_in_through_provider(Client(), requests.Session(), sign_on, "frank")
    frank = User.objects.get(username="frank")
    # when the provider renames him (name and address) and he signs in again from another browser
    sign_on.set_user("frank", password=PASSWORD, first_name="Frank", last_name="Renamed",
                     email="frank.renamed@example.test")
    office = Client()
    landed = sign_in_through_provider(office, requests.Session(), sign_on, "frank")
    # then he is the same member, no second account, with the new name and address
    assert landed.status_code == 302
    me = office.get("/api/me/").json()
    assert (me["id"], me["name"]) == (frank.pk, "Frank Renamed")
    assert Profile.objects.filter(oidc_subject=frank.profile.oidc_subject).count() == 1
    assert User.objects.filter(username__startswith="frank").count() == 1
    assert User.objects.get(pk=frank.pk).email == "frank.renamed@example.test"


def test_a_local_username_is_never_taken_over_by_a_provider_account_of_that_name(sign_on, people):
    # given alice, a password member here, and someone else called alice at the provider
    sign_on.set_user("alice", password=PASSWORD, first_name="Alice", last_name="Other", email="other@example.test")
    # when that person signs in through the provider
    office = Client()
    sign_in_through_provider(office, requests.Session(), sign_on, "alice")
    # then they get a member of their own, and alice's account is untouched
    me = office.get("/api/me/").json()
    assert (me["username"], me["name"]) == ("alice-2", "Alice Other")
    assert me["id"] != people["alice"].pk
    people["alice"].refresh_from_db()
    assert people["alice"].profile.display_name == "Alice Archer" and people["alice"].profile.oidc_subject is None


def test_an_existing_account_with_the_verified_address_is_linked_once(sign_on, db):
    # given gail, who has had a password account here, and her account at the provider (same address)
    from rooms import services

    gail = services.member_create(username="gail.local", password=PASSWORD, display_name="Gail")
    User.objects.filter(pk=gail.pk).update(email="gail@example.test")
    sign_on.set_user("gail", password=PASSWORD, first_name="Gail", last_name="Gardner", email="gail@example.test")
    # when she signs in through the provider
    office = Client()
    sign_in_through_provider(office, requests.Session(), sign_on, "gail")
    # then she is her old member, named by the provider, and her password still works for the demo
    me = office.get("/api/me/").json()
    assert (me["id"], me["name"]) == (gail.pk, "Gail Gardner")
    assert Client().post("/login/", {"username": "gail.local", "password": PASSWORD})["Location"] == "/"


def test_the_admin_group_grants_the_admin_role_and_leaving_it_revokes_it(sign_on, db):
    # given hank, in the provider's office-admins group
    sign_on.set_user("hank", password=PASSWORD, first_name="Hank", email="hank@example.test", groups=("office-admins",))
    office = Client()
    sign_in_through_provider(office, requests.Session(), sign_on, "hank")
    # then he is an admin here
    assert office.get("/api/me/").json()["role"] == "admin"
    assert office.get("/admin/").status_code == 200
    # when the provider takes him out of the group and he signs in again
    sign_on.set_user("hank", password=PASSWORD, first_name="Hank", email="hank@example.test", groups=("staff",))
    office = Client()
    sign_in_through_provider(office, requests.Session(), sign_on, "hank")
    # then he is a member only
    assert office.get("/api/me/").json()["role"] == "member"
    assert office.get("/admin/").status_code == 302


def test_a_callback_with_a_state_this_browser_never_asked_for_is_refused_with_a_message(sign_on, db):
    # given ivy started a sign-in, and a link with a forged state and someone's code
    sign_on.set_user("ivy", password=PASSWORD, first_name="Ivy", email="ivy@example.test")
    office, browser = Client(), requests.Session()
    start = office.get("/oidc/authenticate/")
    at_provider = browser.get(start["Location"], allow_redirects=False)
    assert at_provider.status_code == 302
    # when the forged callback arrives (and one in a browser that started nothing)
    forged = office.get("/oidc/callback/?code=stolen-code&state=forged-state")
    stray = Client().get("/oidc/callback/?code=stolen-code&state=forged-state")
    # then both are sent back to the sign-in page with a message, and nobody is signed in
    for refused in (forged, stray):
        assert refused.status_code == 302 and refused["Location"] == "/login/"
    page = office.get("/login/")
    assert "Signing in with Test ID did not work out" in page.content.decode()
    assert office.get("/api/me/").status_code == 403
    assert not User.objects.filter(username="ivy").exists()


def test_signing_out_ends_the_session_at_the_provider_and_comes_back_to_sign_in(sign_on, db):
    # given jack signed in through the provider
    sign_on.set_user("jack", password=PASSWORD, first_name="Jack", email="jack@example.test")
    office, browser = Client(), requests.Session()
    sign_in_through_provider(office, browser, sign_on, "jack")
    # when he signs out
    signed_out = office.post("/logout/")
    # then the office sends him to the provider's end-session with his ID token, coming back to /login/
    end_session = urlsplit(signed_out["Location"])
    assert signed_out.status_code == 302 and signed_out["Location"].startswith(f"{sign_on.issuer}/end-session?")
    query = parse_qs(end_session.query)
    assert query["post_logout_redirect_uri"] == [f"{OFFICE}/login/"] and query["id_token_hint"][0].count(".") == 2
    back = browser.get(signed_out["Location"], allow_redirects=False)
    assert back.status_code == 302 and back.headers["Location"] == f"{OFFICE}/login/"
    # and he is signed out on both sides: the office asks for a session, the provider for his password
    assert office.get("/api/me/").status_code == 403
    again = browser.get(office.get("/oidc/authenticate/")["Location"], allow_redirects=False)
    assert urlsplit(again.headers["Location"]).path == "/accounts/login/"


def test_password_sign_in_and_out_stay_as_they_were_with_single_sign_on_on(sign_on, people):
    # when alice signs in with her password and out again
    office = Client()
    assert office.post("/login/", {"username": "alice", "password": PASSWORD})["Location"] == "/"
    # then signing out does not involve the provider
    assert office.post("/logout/")["Location"] == "/login/"


def test_with_single_sign_on_off_there_is_no_button_and_no_sign_on_urls(settings, db):
    # given the default: OIDC_ENABLED off
    settings.OIDC_ENABLED = False
    # then the sign-in page offers only the password, and the sign-on addresses do not exist
    page = Client().get("/login/").content.decode()
    assert "Sign in with" not in page and 'name="password"' in page
    assert Client().get("/oidc/authenticate/").status_code == 404
    assert Client().get("/oidc/callback/?code=x&state=y").status_code == 404
