"""REST API and pages through the test client, against the real database."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from rooms import services
from rooms.models import ChatMessage, Room

pytestmark = pytest.mark.django_db


def open_thread_id(office) -> int:
    return office["open"].chat_thread.id


def vault_thread_id(office) -> int:
    return office["vault"].chat_thread.id


def test_every_entry_needs_a_session(office):
    anonymous = Client()
    assert anonymous.get("/api/chat/threads/").status_code == 403
    assert anonymous.get("/api/chat/threads/").json()["error"]["message"].startswith("Authentication credentials")
    page = anonymous.get(f"/office/{office['map'].id}/")
    assert page.status_code == 302 and page["Location"].startswith("/login/")
    assert anonymous.get("/login/").status_code == 200


def test_sign_in_leads_to_the_office(office):
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": "office-test-pass-1"})
    assert response.status_code == 302
    home = client.get("/", follow=True)
    assert home.status_code == 200
    assert f'data-map-id="{office["map"].id}"'.encode() in home.content


def test_wrong_password_is_refused_on_the_login_page(office):
    response = Client().post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


def test_members_cannot_read_or_write_a_private_room_chat_by_guessing_ids(office, people, client_of):
    # given a message in the Vault (alice is a member, bob is not)
    services.chat_message_send(user=people["alice"], thread_id=vault_thread_id(office), body="secret plan")
    bob = client_of(people["bob"])
    # when bob guesses the thread id
    read = bob.get(f"/api/chat/threads/{vault_thread_id(office)}/messages/")
    write = bob.post(f"/api/chat/threads/{vault_thread_id(office)}/messages/", {"body": "let me in"},
                     content_type="application/json")
    nonexistent = bob.get("/api/chat/threads/999999/messages/")
    # then he gets the same 404 as for a thread that does not exist, and nothing is written
    assert read.status_code == write.status_code == nonexistent.status_code == 404
    assert read.json() == nonexistent.json()
    assert ChatMessage.objects.filter(thread_id=vault_thread_id(office)).count() == 1
    assert bob.get(f"/api/rooms/{office['vault'].id}/").status_code == 404
    assert {r["id"] for r in bob.get("/api/rooms/").json()} == {office["open"].id, office["atlas"].id}


def test_history_pages_backwards_and_forwards(office, people, client_of):
    thread = open_thread_id(office)
    for n in range(1, 121):
        services.chat_message_send(user=people["alice"], thread_id=thread, body=f"m{n}")
    bob = client_of(people["bob"])
    latest = bob.get(f"/api/chat/threads/{thread}/messages/?limit=50").json()
    assert [m["seq"] for m in latest["messages"]] == list(range(71, 121)) and latest["more"] is True
    older = bob.get(f"/api/chat/threads/{thread}/messages/?limit=50&before=71").json()
    assert [m["seq"] for m in older["messages"]] == list(range(21, 71))
    oldest = bob.get(f"/api/chat/threads/{thread}/messages/?limit=50&before=21").json()
    assert [m["seq"] for m in oldest["messages"]] == list(range(1, 21)) and oldest["more"] is False
    after = bob.get(f"/api/chat/threads/{thread}/messages/?after=118").json()
    assert [m["body"] for m in after["messages"]] == ["m119", "m120"]
    assert bob.get(f"/api/chat/threads/{thread}/messages/?limit=0").status_code == 400
    assert bob.get(f"/api/chat/threads/{thread}/messages/?before=abc").status_code == 400


def test_unread_counts_follow_the_read_mark(office, people, client_of):
    thread = open_thread_id(office)
    for body in ("a", "b", "c"):
        services.chat_message_send(user=people["alice"], thread_id=thread, body=body)
    bob = client_of(people["bob"])
    unread = {t["id"]: t["unread"] for t in bob.get("/api/chat/threads/").json()}
    assert unread[thread] == 3
    marked = bob.post(f"/api/chat/threads/{thread}/read/", {"seq": 2}, content_type="application/json")
    assert marked.json() == {"thread": thread, "unread": 1}
    # the mark never moves back
    bob.post(f"/api/chat/threads/{thread}/read/", {"seq": 1}, content_type="application/json")
    assert {t["id"]: t["unread"] for t in bob.get("/api/chat/threads/").json()}[thread] == 1
    # own messages never count as unread
    alice_unread = {t["id"]: t["unread"] for t in client_of(people["alice"]).get("/api/chat/threads/").json()}
    assert alice_unread[thread] == 0


def test_sending_twice_with_one_client_id_stores_one_message(office, people, client_of):
    alice = client_of(people["alice"])
    url = f"/api/chat/threads/{open_thread_id(office)}/messages/"
    first = alice.post(url, {"body": "hello", "client_id": "k1"}, content_type="application/json")
    again = alice.post(url, {"body": "hello", "client_id": "k1"}, content_type="application/json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["seq"] == again.json()["seq"] == 1
    assert ChatMessage.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"body": "   "}, "message is empty"),
        ({"body": "x" * 4001}, "longer than 4000"),
        ({}, "This field is required"),
    ],
)
def test_bad_messages_are_400_with_a_reason(office, people, client_of, body, fragment):
    response = client_of(people["alice"]).post(
        f"/api/chat/threads/{open_thread_id(office)}/messages/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert fragment in json.dumps(response.json())


def test_malformed_and_hostile_bodies_are_400_not_500(office, people, client_of):
    alice = client_of(people["alice"])
    url = f"/api/chat/threads/{open_thread_id(office)}/messages/"
    assert alice.post(url, "{nope", content_type="application/json").status_code == 400
    deep = "[" * 50000 + "]" * 50000
    response = alice.post(url, deep, content_type="application/json")
    assert response.status_code == 400
    assert "nesting too deep" in response.json()["error"]["message"]
    assert alice.post(url, json.dumps(["a list"]), content_type="application/json").status_code == 400


def test_direct_conversations_are_private_to_their_two_people(office, people, client_of):
    alice = client_of(people["alice"])
    opened = alice.post("/api/chat/direct/", {"user": people["bob"].id}, content_type="application/json")
    assert opened.status_code == 201 and opened.json()["title"] == "Bob Baker"
    again = alice.post("/api/chat/direct/", {"user": people["bob"].id}, content_type="application/json")
    assert again.status_code == 200 and again.json()["id"] == opened.json()["id"]
    thread = opened.json()["id"]
    alice.post(f"/api/chat/threads/{thread}/messages/", {"body": "psst"}, content_type="application/json")
    assert client_of(people["bob"]).get(f"/api/chat/threads/{thread}/messages/").json()["messages"][0]["body"] == "psst"
    assert client_of(people["carol"]).get(f"/api/chat/threads/{thread}/messages/").status_code == 404
    to_self = alice.post("/api/chat/direct/", {"user": people["alice"].id}, content_type="application/json")
    assert to_self.status_code == 400


def test_admins_configure_rooms_and_the_layout_is_validated(office, people, client_of):
    dana, bob = client_of(people["dana"]), client_of(people["bob"])
    room = {"office_map": office["map"].id, "name": "Nook", "kind": "meeting", "x": 28, "y": 10, "width": 6,
            "height": 5, "doors": [[30, 14]], "capacity": 4, "assistant_enabled": True}
    assert bob.post("/api/rooms/", room, content_type="application/json").status_code == 403
    created = dana.post("/api/rooms/", room, content_type="application/json")
    assert created.status_code == 201, created.json()
    assert Room.objects.get(pk=created.json()["id"]).chat_thread is not None
    overlapping = dana.post("/api/rooms/", {**room, "name": "Clash", "x": 30}, content_type="application/json")
    assert overlapping.status_code == 400
    assert "overlap" in json.dumps(overlapping.json())
    bad_door = dana.post("/api/rooms/", {**room, "name": "Doorless", "x": 2, "y": 14, "doors": [[4, 16]]},
                         content_type="application/json")
    assert bad_door.status_code == 400 and "not on the edge" in json.dumps(bad_door.json())
    off_map = dana.post("/api/rooms/", {**room, "name": "Far", "x": 38}, content_type="application/json")
    assert off_map.status_code == 400 and "does not fit" in json.dumps(off_map.json())
    patched = dana.patch(f"/api/rooms/{created.json()['id']}/", {"capacity": 2}, content_type="application/json")
    assert patched.status_code == 200 and patched.json()["capacity"] == 2


def test_admins_set_private_room_members(office, people, client_of):
    dana = client_of(people["dana"])
    url = f"/api/rooms/{office['vault'].id}/members/"
    response = dana.put(url, {"users": [people["alice"].id, people["bob"].id]}, content_type="application/json")
    assert response.json() == {"users": sorted([people["alice"].id, people["bob"].id])}
    assert office["vault"].id in {r["id"] for r in client_of(people["bob"]).get("/api/rooms/").json()}
    assert client_of(people["bob"]).put(url, {"users": []}, content_type="application/json").status_code == 403
    unknown = dana.put(url, {"users": [999999]}, content_type="application/json")
    assert unknown.status_code == 400 and "unknown" in json.dumps(unknown.json())


def test_status_via_rest(office, people, client_of):
    alice = client_of(people["alice"])
    assert alice.patch("/api/me/", {"status": "away"}, content_type="application/json").json()["status"] == "away"
    assert alice.patch("/api/me/", {"status": "gone"}, content_type="application/json").status_code == 400


def test_openapi_schema_describes_the_api(office, people, client_of):
    schema = client_of(people["alice"]).get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/chat/threads/{thread_id}/messages/" in paths and "/api/rooms/" in paths


def test_health_checks_every_backing_service(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert {name for name, check in response.json()["checks"].items() if check["ok"]} == {"database", "redis", "mqtt"}


def test_health_reports_a_broken_service(db, settings):
    settings.MQTT_URL = "mqtt://127.0.0.1:1"
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["mqtt"]["ok"] is False


def test_metrics_need_an_admin_or_token(office, people, client_of, settings):
    assert client_of(people["bob"]).get("/metrics").status_code == 403
    assert b"office_http_requests_total" in client_of(people["dana"]).get("/metrics").content
    settings.METRICS_TOKEN = "t0ken"
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_request_ids_are_echoed_or_made(office, people, client_of):
    alice = client_of(people["alice"])
    assert alice.get("/api/me/", HTTP_X_REQUEST_ID="req-12345678").headers["X-Request-ID"] == "req-12345678"
    generated = alice.get("/api/me/", HTTP_X_REQUEST_ID="bad id with spaces").headers["X-Request-ID"]
    assert len(generated) == 32 and " " not in generated


def test_presence_api_hides_positions_inside_private_rooms_from_non_members(office, people, client_of):
    import redis
    from django.conf import settings

    from rooms.hub import presence_key

    client = redis.Redis.from_url(settings.REDIS_URL)
    base = {"name": "Alice Archer", "color": "#000000", "status": "available", "seq": 1, "conn": "c", "node": "n"}
    client.hset(presence_key(office["map"].id), str(people["alice"].id),
                json.dumps({**base, "user": people["alice"].id, "x": 20, "y": 3, "room": office["vault"].id,
                            "private": True}))
    bob_view = client_of(people["bob"]).get(f"/api/maps/{office['map'].id}/presence/").json()["people"]
    alice_view = client_of(people["alice"]).get(f"/api/maps/{office['map'].id}/presence/").json()["people"]
    assert bob_view == [{"user": people["alice"].id, "name": "Alice Archer", "status": "available",
                         "room": office["vault"].id}]
    assert (alice_view[0]["x"], alice_view[0]["y"]) == (20, 3)


def admin_room_form(office, **overrides) -> dict:
    form = {"office_map": office["map"].id, "name": "Nook", "slug": "nook", "kind": "meeting", "x": 28, "y": 10,
            "width": 6, "height": 5, "doors": "[[30, 14]]", "capacity": 4, "assistant_enabled": "on",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000"}
    form.update(overrides)
    return form


def test_admin_site_adds_rooms_through_the_same_rules(office, people, client_of):
    dana = client_of(people["dana"])
    added = dana.post("/admin/rooms/room/add/", admin_room_form(office))
    assert added.status_code == 302, added.content[:2000]
    nook = Room.objects.get(slug="nook")
    assert nook.assistant_enabled and nook.chat_thread is not None
    clash = dana.post("/admin/rooms/room/add/", admin_room_form(office, name="Clash", slug="clash", x=30))
    assert clash.status_code == 200
    assert b"overlap" in clash.content
    assert not Room.objects.filter(slug="clash").exists()
    assert client_of(people["bob"]).get("/admin/rooms/room/add/").status_code == 302  # members are sent to sign in


def test_repeated_failed_sign_ins_lock_that_name_from_that_address_for_a_while(office, settings):
    """Guessing is cut off after OFFICE_SIGNIN_MAX_FAILURES: even the right password is refused, with
    a message that says to wait; another member signing in from elsewhere is not affected."""
    from office.redis_client import redis_client

    settings.OFFICE_SIGNIN_MAX_FAILURES = 3
    redis_client().delete(*redis_client().keys("office:signin-fail:*") or ["none"])
    guesser = Client(REMOTE_ADDR="10.0.0.7")
    for guess in ("a", "b", "c"):
        refused = guesser.post("/login/", {"username": "alice", "password": guess})
        assert b"correct username and password" in refused.content
    locked = guesser.post("/login/", {"username": "alice", "password": "office-test-pass-1"})
    assert locked.status_code == 200 and b"Too many failed sign-ins" in locked.content
    assert "_auth_user_id" not in guesser.session
    elsewhere = Client(REMOTE_ADDR="10.0.0.8").post("/login/", {"username": "alice", "password": "office-test-pass-1"})
    assert elsewhere.status_code == 302
    unknown = Client(REMOTE_ADDR="10.0.0.9").post("/login/", {"username": "nobody", "password": "x"})
    assert b"correct username and password" in unknown.content  # the same words as a wrong password
    redis_client().delete(*redis_client().keys("office:signin-fail:*") or ["none"])
