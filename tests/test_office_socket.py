"""The office socket through its public entry point (ASGI app with origin + session checks),
against the real Redis channel layer and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.contrib.sessions.models import Session
from django.utils import timezone

from rooms import services
from rooms.models import ChatMessage

pytestmark = pytest.mark.django_db(transaction=True)


async def step_to(socket, path, start_seq=1, pace=0.2):
    """Walk a path at walking speed (the server allows 5 steps a second)."""
    for offset, (x, y) in enumerate(path):
        await socket.send({"type": "move", "x": x, "y": y, "seq": start_seq + offset})
        await asyncio.sleep(pace)


async def test_anonymous_socket_is_told_to_sign_in_and_closed(office, sockets):
    socket = await sockets(None, office["map"].id, expect_hello=False)
    error = await socket.receive()
    assert error == {"type": "error", "code": "not_signed_in", "message": "sign in first", "fatal": True}
    closed = await socket.communicator.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_foreign_origin_is_refused(office, people, sockets):
    socket = await sockets(people["alice"], office["map"].id, origin=b"http://evil.example", expect_hello=False)
    assert socket.connected is False


async def test_hello_lists_only_conversations_the_member_may_read(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    bob = await sockets(people["bob"], office["map"].id)
    alice_rooms = {t["room"] for t in alice.hello["threads"]}
    bob_rooms = {t["room"] for t in bob.hello["threads"]}
    assert office["vault"].id in alice_rooms
    assert office["vault"].id not in bob_rooms
    assert office["atlas"].id in bob_rooms
    assert bob.hello["you"] == {"x": 10, "y": 15, "room": office["open"].id}
    assert bob.hello["map"]["rooms"][1]["doors"] == [[6, 6]]
    assert {p["user"] for p in bob.hello["presence"]} == {people["alice"].id, people["bob"].id}


async def test_hello_names_the_ice_policy_and_the_node_holding_the_socket(office, people, sockets, settings):
    from rooms.hub import NODE_ID

    # given a deployment that sends voice only through its TURN servers
    settings.OFFICE_ICE_TRANSPORT_POLICY = "relay"
    # when alice connects
    alice = await sockets(people["alice"], office["map"].id)
    # then her page is told to use relay candidates only, and which node she is on
    assert alice.hello["ice_transport_policy"] == "relay"
    assert alice.hello["node"] == NODE_ID


async def test_a_move_reaches_a_nearby_member_in_a_batch(office, people, sockets):
    # given alice and bob both on the map near the spawn point
    alice = await sockets(people["alice"], office["map"].id)
    bob = await sockets(people["bob"], office["map"].id)
    # when alice walks three tiles east
    await step_to(alice, [(11, 15), (12, 15), (13, 15)])
    # then bob sees alice's latest position (moves are batched per tick, so several may coalesce)
    seen = await bob.wait_for("moves", where=lambda f: [people["alice"].id, 13, 15, 3] in f["m"])
    assert all(len(entry) == 4 for entry in seen["m"])


async def test_movement_frames_skip_the_session_middleware(office, people, sockets, monkeypatch):
    from channels.sessions import InstanceSessionWrapper

    through_middleware = []
    wrapped = InstanceSessionWrapper.send

    async def counting(self, message):
        through_middleware.append(message["type"])
        return await wrapped(self, message)

    monkeypatch.setattr(InstanceSessionWrapper, "send", counting)
    # given alice and bob on the map (their accepts go through the session middleware, as any send did)
    alice = await sockets(people["alice"], office["map"].id)
    bob = await sockets(people["bob"], office["map"].id)
    assert "websocket.accept" in through_middleware
    through_middleware.clear()
    # when alice walks, then bob gets her moves, and none of those frames went through the middleware
    await step_to(alice, [(11, 15), (12, 15)])
    await bob.wait_for("moves", where=lambda f: [people["alice"].id, 12, 15, 2] in f["m"])
    assert "websocket.send" not in through_middleware


async def test_watchers_see_a_member_walk_out_of_their_view(office, people, sockets, settings):
    # given small view cells (4 tiles) and bob standing still at the spawn point (10, 15)
    settings.OFFICE_AOI_CELL_TILES = 4
    alice = await sockets(people["alice"], office["map"].id)
    bob = await sockets(people["bob"], office["map"].id)
    # when alice walks east past the edge of bob's 3x3 cells (x 4..15)
    await step_to(alice, [(11, 15), (12, 15), (13, 15), (14, 15), (15, 15), (16, 15), (17, 15)])
    # then bob learns her first position outside his view, so he can stop drawing her
    await bob.wait_for("moves", where=lambda f: any(e[0] == people["alice"].id and e[1] >= 16 for e in f["m"]))
    await alice.wait_for("moves", where=lambda f: [people["alice"].id, 17, 15, 7] in f["m"])
    # and her moves further away are no longer sent to him
    await step_to(alice, [(18, 15), (19, 15)], start_seq=8)
    later = await bob.collect(0.4)
    assert not any(e[0] == people["alice"].id and e[1] >= 18 for f in later if f["type"] == "moves" for e in f["m"])


async def test_illegal_steps_are_refused_with_the_authoritative_position(office, people, sockets):
    bob = await sockets(people["bob"], office["map"].id)
    await bob.send({"type": "move", "x": 14, "y": 15, "seq": 1})  # four tiles at once
    rejected = await bob.wait_for("move.rejected")
    assert rejected == {"type": "move.rejected", "seq": 1, "x": 10, "y": 15, "reason": "too far in one step"}


async def test_walking_faster_than_five_steps_a_second_is_refused(office, people, sockets):
    bob = await sockets(people["bob"], office["map"].id)
    await step_to(bob, [(11, 15), (12, 15), (13, 15), (14, 15), (15, 15), (16, 15)], pace=0)
    rejected = await bob.wait_for("move.rejected")
    assert rejected["reason"].startswith("walking too fast")
    assert rejected["seq"] == 4  # a burst of three passes, the fourth in the same instant does not


async def test_only_members_may_enter_a_private_room(office, people, sockets):
    # given bob (not on the Vault's list) and alice (on it), both below the Vault's door at (20, 6)
    bob = await sockets(people["bob"], office["map"].id)
    path = [(11, 14), (12, 13), (13, 12), (14, 11), (15, 10), (16, 9), (17, 8), (18, 7), (19, 7), (20, 7)]
    await step_to(bob, path)
    await bob.wait_for("moves", where=lambda f: [people["bob"].id, 20, 7, 10] in f["m"])
    # when bob steps onto the door
    await bob.send({"type": "move", "x": 20, "y": 6, "seq": 11})
    # then the server refuses and keeps him outside
    rejected = await bob.wait_for("move.rejected")
    assert rejected["reason"] == "Vault is private: members only"
    assert (rejected["x"], rejected["y"]) == (20, 7)

    alice = await sockets(people["alice"], office["map"].id)
    await step_to(alice, [*path, (20, 6), (20, 5)])
    update = await alice.wait_for("presence.update", where=lambda f: f["person"]["user"] == people["alice"].id
                                  and f["person"]["room"] == office["vault"].id)
    assert update["person"]["name"] == "Alice Archer"
    # and bob, outside, hears that alice is in the Vault but never gets her position inside it
    frames = await bob.collect(0.6)
    inside = [e for f in frames if f["type"] == "moves" for e in f["m"] if e[0] == people["alice"].id and e[2] <= 6]
    assert inside == []


async def test_a_full_room_refuses_one_more(office, people, sockets):
    await database_sync_to_async(services.room_update)(room=office["atlas"], capacity=1)
    path = [(9, 14), (8, 13), (7, 12), (6, 11), (6, 10), (6, 9), (6, 8), (6, 7), (6, 6)]
    alice = await sockets(people["alice"], office["map"].id)
    await step_to(alice, path)
    await alice.wait_for("presence.update", where=lambda f: f["person"]["room"] == office["atlas"].id)
    bob = await sockets(people["bob"], office["map"].id)
    await step_to(bob, path)
    rejected = await bob.wait_for("move.rejected")
    assert rejected["reason"] == "Atlas is full (1 people)"


async def test_chat_is_persisted_then_delivered_with_sequence_numbers(office, people, sockets):
    thread_id = next(t["id"] for t in (await sockets(people["alice"], office["map"].id)).hello["threads"]
                     if t["room"] == office["open"].id)
    alice = await sockets(people["alice"], office["map"].id)  # replaces the first tab
    bob = await sockets(people["bob"], office["map"].id)
    await alice.send({"type": "chat.send", "thread": thread_id, "body": "standup in 5", "client_id": "c-1"})
    ack = await alice.wait_for("chat.ack")
    assert ack == {"type": "chat.ack", "thread": thread_id, "seq": 1, "client_id": "c-1"}
    delivered = await bob.wait_for_chat(1)
    assert delivered["author"] == {"id": people["alice"].id, "name": "Alice Archer"}
    stored = await database_sync_to_async(lambda: list(ChatMessage.objects.values_list("seq", "body")))()
    assert stored == [(1, "standup in 5")]
    # a resend with the same client_id (e.g. after a dropped ack) does not write twice
    await alice.send({"type": "chat.send", "thread": thread_id, "body": "standup in 5", "client_id": "c-1"})
    assert (await alice.wait_for("chat.ack"))["seq"] == 1
    assert await database_sync_to_async(ChatMessage.objects.count)() == 1


async def test_reconnect_resumes_with_exactly_the_missed_messages(office, people, sockets):
    # given bob saw message 1, then lost his connection
    alice = await sockets(people["alice"], office["map"].id)
    thread_id = next(t["id"] for t in alice.hello["threads"] if t["room"] == office["open"].id)
    bob = await sockets(people["bob"], office["map"].id)
    await alice.send({"type": "chat.send", "thread": thread_id, "body": "one"})
    assert (await bob.wait_for_chat(1))["body"] == "one"
    await bob.communicator.disconnect()
    # when alice writes three more and bob comes back asking for what follows seq 1
    for body in ("two", "three", "four"):
        await alice.send({"type": "chat.send", "thread": thread_id, "body": body})
        await alice.wait_for("chat.ack")
    bob = await sockets(people["bob"], office["map"].id)
    await bob.send({"type": "chat.resume", "thread": thread_id, "after": 1})
    backlog = await bob.wait_for("chat.backlog")
    # then he gets 2..4 once, in order, and live delivery continues without duplicates
    assert [m["body"] for m in backlog["messages"]] == ["two", "three", "four"]
    assert [m["seq"] for m in backlog["messages"]] == [2, 3, 4]
    await alice.send({"type": "chat.send", "thread": thread_id, "body": "five"})
    live = await bob.wait_for("chat.message")
    assert live["message"]["seq"] == 5
    assert [f for f in await bob.collect(0.3) if f["type"] == "chat.message"] == []


async def test_a_lost_live_event_is_filled_from_the_database(office, people, sockets):
    bob = await sockets(people["bob"], office["map"].id)
    thread_id = next(t["id"] for t in bob.hello["threads"] if t["room"] == office["open"].id)

    def write_without_announcing():
        from django.db import transaction

        with transaction.atomic():
            services.chat_message_send(user=people["alice"], thread_id=thread_id, body="lost nudge")
            transaction.set_rollback(False)
            # drop the on-commit nudge, as a full channel layer would
            transaction.get_connection().run_on_commit = []

    await database_sync_to_async(write_without_announcing)()
    await database_sync_to_async(services.chat_message_send)(user=people["alice"], thread_id=thread_id, body="next")
    first = await bob.wait_for("chat.backlog")
    assert [m["body"] for m in first["messages"]] == ["lost nudge", "next"]


async def test_bad_frames_get_error_frames_and_the_socket_stays_open(office, people, sockets, settings):
    bob = await sockets(people["bob"], office["map"].id)
    await bob.send("{not json")
    assert (await bob.wait_for("error"))["code"] == "bad_json"
    await bob.send({"type": "move", "x": "east", "y": 1, "seq": 1})
    error = await bob.wait_for("error")
    assert error["code"] == "bad_field" and "'x' must be int" in error["message"]
    await bob.send("x" * (64 * 1024 + 1))
    assert (await bob.wait_for("error"))["code"] == "too_large"
    await bob.send({"type": "chat.send", "thread": 999999, "body": "hi"})
    assert (await bob.wait_for("error"))["code"] == "not_found"
    await bob.send({"type": "ping"})
    assert (await bob.wait_for("pong"))["type"] == "pong"


async def test_flooding_is_rate_limited(office, people, sockets):
    bob = await sockets(people["bob"], office["map"].id)
    for _ in range(60):
        await bob.send({"type": "ping"})
    frames = await bob.collect(1.0)
    pongs = [f for f in frames if f["type"] == "pong"]
    errors = [f for f in frames if f["type"] == "error"]
    assert 35 <= len(pongs) < 60
    assert errors and errors[0]["code"] == "rate_limited"


async def test_expired_session_closes_the_socket_on_the_next_frame(office, people, sockets, settings):
    settings.OFFICE_ACCESS_RECHECK_SECONDS = 0
    bob = await sockets(people["bob"], office["map"].id)
    await database_sync_to_async(
        lambda: Session.objects.all().update(expire_date=timezone.now() - timezone.timedelta(seconds=1))
    )()
    await bob.send({"type": "ping"})
    error = await bob.wait_for("error")
    assert error["code"] == "session_expired" and error["fatal"] is True
    assert await bob.communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": 4408}


async def test_the_access_sweep_closes_an_idle_socket_whose_account_was_deactivated(office, people, sockets, settings):
    settings.OFFICE_ACCESS_RECHECK_SECONDS = 1
    alice = await sockets(people["alice"], office["map"].id)
    bob = await sockets(people["bob"], office["map"].id)
    await database_sync_to_async(lambda: type(people["bob"]).objects.filter(pk=people["bob"].id).update(
        is_active=False))()
    # bob sends nothing: the process's sweep finds out on its own within a period or two
    error = await bob.wait_for("error", timeout=4)
    assert error["code"] == "session_expired" and error["fatal"] is True
    await alice.send({"type": "ping"})
    assert (await alice.wait_for("pong"))["type"] == "pong"


async def test_one_sweep_hands_every_socket_its_current_rights(office, people):
    from rooms.access_sweep import AccessSweep

    class Socket:
        def __init__(self, user):
            self.user, self.seen = user, []

        def access_entry(self):
            return None, self.user.id, office["map"].id

        async def access_refreshed(self, access):
            self.seen.append(access)

    sweep = AccessSweep()
    bob, carol = Socket(people["bob"]), Socket(people["carol"])
    sweep.sockets = {id(bob): bob, id(carol): carol}
    await database_sync_to_async(services.room_set_members)(
        room=office["vault"], user_ids=[people["alice"].id, people["bob"].id])
    await sweep.sweep()
    assert bob.seen[-1].private_rooms == {office["vault"].id}
    assert carol.seen[-1].private_rooms == set()
    await database_sync_to_async(services.room_set_members)(room=office["vault"], user_ids=[people["alice"].id])
    await sweep.sweep()
    assert bob.seen[-1].private_rooms == set()


def test_socket_rights_are_read_in_the_same_queries_for_one_socket_or_many(office, people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rooms.socket_context import sockets_access_load

    one = {("key-a", people["alice"].id, office["map"].id)}
    many = {(f"key{i}", user.id, office["map"].id) for i, user in enumerate(people.values())}
    with CaptureQueriesContext(connection) as for_one:
        access = sockets_access_load(one)
    assert access[("key-a", people["alice"].id, office["map"].id)].private_rooms == {office["vault"].id}
    assert access[("key-a", people["alice"].id, office["map"].id)].session_expires_at is None  # no such session
    with CaptureQueriesContext(connection) as for_many:
        access = sockets_access_load(many)
    assert len(for_many) == len(for_one) <= 4
    assert all(a.private_rooms == ({office["vault"].id} if u == people["alice"].id else set())
               for (_, u, _), a in access.items())


async def test_removed_member_loses_the_private_chat_at_once(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    vault_thread = next(t["id"] for t in alice.hello["threads"] if t["room"] == office["vault"].id)
    await database_sync_to_async(services.room_set_members)(room=office["vault"], user_ids=[])
    removed = await alice.wait_for("thread.removed")
    assert removed["thread"] == vault_thread
    await alice.send({"type": "chat.send", "thread": vault_thread, "body": "still here?"})
    assert (await alice.wait_for("error"))["code"] == "not_found"
    assert await database_sync_to_async(ChatMessage.objects.count)() == 0


async def test_direct_messages_reach_only_the_two_people(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    bob = await sockets(people["bob"], office["map"].id)
    carol = await sockets(people["carol"], office["map"].id)
    await alice.send({"type": "dm.open", "user": people["bob"].id})
    opened = await alice.wait_for("dm.opened")
    added = await bob.wait_for("thread.added")
    assert added["thread"]["id"] == opened["thread"]
    assert added["thread"]["title"] == "Alice Archer"
    await alice.send({"type": "chat.send", "thread": opened["thread"], "body": "lunch?"})
    assert (await bob.wait_for_chat(1))["body"] == "lunch?"
    assert [f for f in await carol.collect(0.4) if f["type"] in ("chat.message", "thread.added")] == []


async def test_status_changes_are_broadcast(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    bob = await sockets(people["bob"], office["map"].id)
    await bob.send({"type": "status.set", "status": "busy"})
    update = await alice.wait_for("presence.update", where=lambda f: f["person"]["user"] == people["bob"].id)
    assert update["person"]["status"] == "busy"


async def test_leaving_is_announced(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    bob = await sockets(people["bob"], office["map"].id)
    await bob.communicator.disconnect()
    leave = await alice.wait_for("presence.leave")
    assert leave == {"type": "presence.leave", "user": people["bob"].id}
    await asyncio.sleep(0)
    assert json.dumps(leave)


async def test_resume_in_the_handshake_sends_the_gap_before_anything_live(office, people, sockets):
    # given bob last saw message 1 of the open-space chat, and alice wrote 2 and 3 since
    thread = office["open"].chat_thread.id
    for body in ("one", "two", "three"):
        await database_sync_to_async(services.chat_message_send)(user=people["alice"], thread_id=thread, body=body)
    # when bob reconnects naming his cursor in the URL
    bob = await sockets(people["bob"], office["map"].id, query=f"?resume={thread}.1,junk,9.x")
    # then the backlog follows hello directly with exactly 2 and 3
    backlog = await bob.wait_for("chat.backlog")
    assert [m["seq"] for m in backlog["messages"]] == [2, 3]
    # and a chat.resume naming an older point does not resend what was already delivered
    await bob.send({"type": "chat.resume", "thread": thread, "after": 1})
    again = await bob.wait_for("chat.backlog")
    assert [m["seq"] for m in again["messages"]] == []


async def test_personal_events_reach_the_open_socket(office, people, sockets):
    """Notifications, task and ticket changes sent to a user's group are forwarded, not a crash."""
    from channels.layers import get_channel_layer

    from office.events import user_group

    alice = await sockets(people["alice"], office["map"].id)
    layer = get_channel_layer()
    for event in ({"type": "notification.new", "notification": {"id": 1, "title": "Reminder"}},
                  {"type": "task.changed", "task": {"id": 7}}, {"type": "ticket.changed", "ticket": {"id": 3}}):
        await layer.group_send(user_group(people["alice"].pk), event)
        frame = await alice.wait_for(event["type"])
        assert frame == event
