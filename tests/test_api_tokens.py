"""API tokens for scripts: made and revoked by the member on a settings page, shown once, stored as
a hash, scoped read or read-and-write, accepted on REST only."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from rooms.models import ApiToken

pytestmark = pytest.mark.django_db


def create_token(client, name: str, scope: str) -> str:
    page = client.post("/settings/tokens/", {"name": name, "scope": scope})
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    return re.search(r'<code id="new-token">([^<]+)</code>', page.content.decode()).group(1)


def test_a_token_is_shown_once_stored_hashed_and_works_on_the_api(people, client_of):
    alice = client_of(people["alice"])
    token = create_token(alice, "report script", "read")
    row = ApiToken.objects.get(user=people["alice"])
    assert token not in row.token_hash and token.startswith(f"office_{row.prefix}_")
    assert token not in alice.get("/settings/tokens/").content.decode()  # never again

    script = Client()  # no session, no CSRF token: just the bearer token
    response = script.get("/api/me/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["username"] == "alice"
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_a_read_token_cannot_write_and_a_write_token_can(people, client_of):
    alice = client_of(people["alice"])
    read, write = create_token(alice, "reader", "read"), create_token(alice, "writer", "write")
    script = Client()
    body = {"title": "Water the plants"}
    refused = script.post("/api/tasks/", body, content_type="application/json", headers={"Authorization": f"Bearer {read}"})
    assert refused.status_code == 403 and "may only read" in refused.json()["error"]["message"]
    made = script.post("/api/tasks/", body, content_type="application/json", headers={"Authorization": f"Bearer {write}"})
    assert made.status_code == 201 and made.json()["created_by"] == people["alice"].pk


def test_a_revoked_or_wrong_token_is_refused_and_only_the_owner_revokes(people, client_of):
    alice = client_of(people["alice"])
    token = create_token(alice, "old script", "read")
    row = ApiToken.objects.get(name="old script")
    assert client_of(people["bob"]).post(f"/settings/tokens/{row.pk}/revoke/").status_code == 404
    assert alice.post(f"/settings/tokens/{row.pk}/revoke/").status_code == 302
    script = Client()
    gone = script.get("/api/me/", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 403 and "not valid" in gone.json()["error"]["message"]
    forged = script.get("/api/me/", headers={"Authorization": f"Bearer {token[:-3]}abc"})
    assert forged.status_code == 403
    assert script.get("/settings/tokens/", headers={"Authorization": f"Bearer {token}"}).status_code == 302  # pages: session only


def test_every_token_works_whatever_characters_its_secret_has(people, client_of):
    """The secret is URL-safe base64, which may contain "_" (the separator): 15 tokens in a row all work."""
    alice = client_of(people["alice"])
    for n in range(15):
        token = create_token(alice, f"script {n}", "read")
        assert Client().get("/api/me/", headers={"Authorization": f"Bearer {token}"}).status_code == 200, token
        alice.post(f"/settings/tokens/{ApiToken.objects.get(name=f'script {n}').pk}/revoke/")


def test_a_token_needs_a_name_and_a_known_scope(people, client_of):
    alice = client_of(people["alice"])
    page = alice.post("/settings/tokens/", {"name": " ", "scope": "read"}, follow=True)
    assert "give the token a name" in page.content.decode()
    page = alice.post("/settings/tokens/", {"name": "x", "scope": "admin"}, follow=True)
    assert "scope must be one of" in page.content.decode()
    assert not ApiToken.objects.exists()
