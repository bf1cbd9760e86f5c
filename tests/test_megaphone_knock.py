"""Speaking to everyone (ADR 0022): an admin's megaphone announcements over REST and the office
socket, and knocking on a private room's door, through the public entry points.

Personas (tests/conftest.py): alice (member of the private Vault, door at 20,6), bob and carol
(members, not on the Vault's list), dana (admin)."""

from __future__ import annotations

import asyncio
import datetime as dt
import struct

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from rooms import selectors, services
from rooms.audio_clips import MAX_CLIP_BYTES
from rooms.models import Announcement, RoomGuestPass, RoomKnock
from tests.test_protocol_doc import assert_frame_matches

SOCKET = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- clips as a browser's MediaRecorder writes them (no encoder needed: only the container is read) ---

def _ebml(element_id: int, body: bytes, *, unknown_size: bool = False) -> bytes:
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    size = b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown_size else (0x10000000 | len(body)).to_bytes(4, "big")
    return id_bytes + size + body


def webm_clip(seconds: float, codec: bytes = b"A_OPUS") -> bytes:
    """An EBML header, then a segment and clusters of unknown size (as Chromium writes them), one 20 ms
    Opus block per 200 ms."""
    header = _ebml(0x1A45DFA3, _ebml(0x4282, b"webm"))
    tracks = _ebml(0x1654AE6B, _ebml(0xAE, _ebml(0xD7, b"\x01") + _ebml(0x86, codec)))
    clusters = b""
    for start_ms in range(0, int(seconds * 1000) + 1, 10_000):
        blocks = b"".join(_ebml(0xA3, b"\x81" + struct.pack(">h", offset) + b"\x80" + b"\xfc" * 40)
                          for offset in range(0, min(10_000, int(seconds * 1000) - start_ms + 1), 200))
        clusters += _ebml(0x1F43B675, _ebml(0xE7, start_ms.to_bytes(4, "big")) + blocks, unknown_size=True)
    return header + _ebml(0x18538067, _ebml(0x1549A966, _ebml(0x2AD7B1, (1_000_000).to_bytes(3, "big"))) + tracks
                          + clusters, unknown_size=True)


def ogg_clip(seconds: float) -> bytes:
    def page(granule: int, packet: bytes) -> bytes:
        return b"OggS\x00\x00" + struct.pack("<qIII", granule, 7, 0, 0) + bytes([1, len(packet)]) + packet

    head = b"OpusHead\x01\x01" + struct.pack("<HIhB", 312, 48000, 0, 0)
    return page(0, head) + page(0, b"OpusTags" + b"\x00" * 8) + page(312 + int(seconds * 48000), b"\xfc" * 60)


def post_announcement(client, map_id: int, **fields):
    if "audio" in fields:
        return client.post(f"/api/maps/{map_id}/announcements/", fields)  # multipart
    return client.post(f"/api/maps/{map_id}/announcements/", fields, content_type="application/json")


# --- the megaphone over REST ---

def test_a_member_is_told_only_admins_use_the_megaphone(office, people, client_of):
    # when bob (a member) tries to announce
    response = post_announcement(client_of(people["bob"]), office["map"].id, text="Free pizza!")
    # then he is refused with a message, and nothing is stored
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "only admins may use the megaphone"
    assert not Announcement.objects.exists()


def test_an_admin_announces_to_the_map_with_a_clip_and_members_list_and_hear_it(office, people, client_of):
    # given dana (an admin) records a 3-second clip
    clip = webm_clip(3)
    # when she announces it to the whole map
    response = post_announcement(client_of(people["dana"]), office["map"].id, text="Fire drill at 3",
                                 audio=SimpleUploadedFile("clip.webm", clip, content_type="audio/webm"))
    # then it is stored and listed for a member, with its clip served to them
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["author"] == {"id": people["dana"].id, "name": "Dana Admin"}
    assert made["room"] is None and made["text"] == "Fire drill at 3"
    listed = client_of(people["bob"]).get(f"/api/maps/{office['map'].id}/announcements/").json()
    assert [a["id"] for a in listed] == [made["id"]]
    audio = client_of(people["bob"]).get(made["audio_url"])
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/webm" and audio.content == clip


@pytest.mark.parametrize(("clip", "problem"), [
    (ogg_clip(45), "lasts 45 seconds; at most 30"),
    (webm_clip(40), "lasts 40 seconds; at most 30"),
    (webm_clip(2, codec=b"V_VP8"), "must hold Opus audio"),
    (b"RIFF....WAVEfmt ", "must be Opus in WebM or Ogg"),
    (b"OggS" + b"\x00" * (MAX_CLIP_BYTES + 10), "larger than 512 KiB"),
])
def test_a_clip_that_is_long_large_or_not_opus_is_refused_with_a_reason(office, people, client_of, clip, problem):
    response = post_announcement(client_of(people["dana"]), office["map"].id, text="Hello",
                                 audio=SimpleUploadedFile("clip", clip))
    assert response.status_code == 400
    assert problem in response.json()["error"]["message"]
    assert not Announcement.objects.exists()


def test_a_short_ogg_clip_is_taken(office, people, client_of):
    response = post_announcement(client_of(people["dana"]), office["map"].id, text="Hello",
                                 audio=SimpleUploadedFile("clip.ogg", ogg_clip(29.5)))
    assert response.status_code == 201, response.content


def test_an_admin_may_speak_into_a_private_room_whose_announcements_only_its_members_list(office, people, client_of):
    # when dana announces to the private Vault (she is not on its list)
    response = post_announcement(client_of(people["dana"]), office["map"].id, text="Vault audit today",
                                 room=office["vault"].id)
    # then it is made; alice (a member) lists it, bob (not one) does not
    assert response.status_code == 201, response.content
    assert response.json()["room_name"] == "Vault"
    url = f"/api/maps/{office['map'].id}/announcements/"
    assert [a["text"] for a in client_of(people["alice"]).get(url).json()] == ["Vault audit today"]
    assert client_of(people["bob"]).get(url).json() == []


def test_a_room_of_another_map_or_bad_text_is_refused(office, people, client_of):
    other = services.office_map_create(name="Annex", slug="annex", width=20, height=20, spawn_x=1, spawn_y=1)
    dana = client_of(people["dana"])
    assert post_announcement(dana, other.id, text="Hi", room=office["atlas"].id).status_code == 400
    assert post_announcement(dana, office["map"].id, text="   ").status_code == 400
    assert post_announcement(dana, office["map"].id, text="x" * 501).status_code == 400
    assert post_announcement(dana, 999_999, text="Hi").status_code == 404


def test_the_announcement_is_stored_before_anyone_hears_of_it(office, people, monkeypatch):
    # given a record of what the channel layer is asked to send, and whether the row existed then
    sent = []
    monkeypatch.setattr("office.events.send_event", lambda group, event: sent.append(
        (group, event, Announcement.objects.filter(pk=event.get("announcement", {}).get("id")).exists())))
    # when dana announces
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        made = services.announcement_make(author=people["dana"], office_map=office["map"], text="Lunch is here")
    # then nothing went out before the commit, and when it did the row was there
    assert sent == []
    for callback in callbacks:
        callback()
    assert sent == [(f"map.{office['map'].id}", {"type": "announcement.made",
                                                 "announcement": selectors.announcement_payload(made)}, True)]


# --- the megaphone on the office socket ---

@SOCKET
async def test_a_map_wide_announcement_reaches_every_page_on_the_map(office, people, sockets):
    bob = await sockets(people["bob"], office["map"].id)
    carol = await sockets(people["carol"], office["map"].id)
    # when dana announces to the whole map
    made = await database_sync_to_async(services.announcement_make)(
        author=people["dana"], office_map=office["map"], text="All hands in 5")
    # then both pages show the banner, with the author's name
    for page in (bob, carol):
        frame = await page.wait_for("announcement")
        assert frame["announcement"]["id"] == made.id
        assert_frame_matches(frame)  # exactly the fields docs/protocol.md lists
        assert frame["announcement"]["author"]["name"] == "Dana Admin"


@SOCKET
async def test_a_room_announcement_reaches_only_those_in_the_room_and_who_walk_in(office, people, sockets):
    # given carol at her desk inside Atlas, and bob at his desk outside Atlas's door (6,6)
    await database_sync_to_async(services.desk_create)(office_map=office["map"], label="C", x=5, y=3,
                                                       owner=people["carol"])
    await database_sync_to_async(services.desk_create)(office_map=office["map"], label="B", x=6, y=7,
                                                       owner=people["bob"])
    carol = await sockets(people["carol"], office["map"].id)
    bob = await sockets(people["bob"], office["map"].id)
    assert carol.hello["you"]["room"] == office["atlas"].id
    # when dana speaks into Atlas only
    made = await database_sync_to_async(services.announcement_make)(
        author=people["dana"], office_map=office["map"], room=office["atlas"], text="Atlas: wrap up please")
    # then carol sees it and bob, in the hallway, does not
    assert (await carol.wait_for("announcement"))["announcement"]["id"] == made.id
    assert [f for f in await bob.collect(0.6) if f["type"] == "announcement"] == []
    # and when bob walks in while it still shows, he sees it too
    await bob.send({"type": "move", "x": 6, "y": 6, "seq": 1})
    assert (await bob.wait_for("announcement"))["announcement"]["room"] == office["atlas"].id


@SOCKET
async def test_a_page_opened_while_an_announcement_shows_gets_it_and_a_rolled_back_one_never_goes_out(
        office, people, sockets):
    await database_sync_to_async(services.announcement_make)(author=people["dana"], office_map=office["map"],
                                                             text="Still showing")

    def announce_then_fail():
        with transaction.atomic():
            services.announcement_make(author=people["dana"], office_map=office["map"], text="Never happened")
            raise RuntimeError("rolled back")

    # when bob opens the page, then an announcement is rolled back
    bob = await sockets(people["bob"], office["map"].id)
    assert (await bob.wait_for("announcement"))["announcement"]["text"] == "Still showing"
    with pytest.raises(RuntimeError):
        await database_sync_to_async(announce_then_fail)()
    # then bob never hears of the one that was rolled back
    assert [f for f in await bob.collect(0.6) if f["type"] == "announcement"] == []


# --- knocking ---

async def bob_at_the_vault_door(office, people, sockets):
    """Bob's desk is just outside the Vault's door (20,6), so his page opens there."""
    await database_sync_to_async(services.desk_create)(office_map=office["map"], label="B", x=20, y=7,
                                                       owner=people["bob"])
    return await sockets(people["bob"], office["map"].id)


@SOCKET
async def test_a_knock_reaches_the_rooms_members_only(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    carol = await sockets(people["carol"], office["map"].id)
    dana = await sockets(people["dana"], office["map"].id)
    bob = await bob_at_the_vault_door(office, people, sockets)
    # given bob is refused at the door
    await bob.send({"type": "move", "x": 20, "y": 6, "seq": 1})
    assert "private" in (await bob.wait_for("move.rejected"))["reason"]
    # when he knocks
    await bob.send({"type": "room.knock", "room": office["vault"].id})
    # then he waits, alice (a member) is asked, carol and dana (not members) are not
    waiting = await bob.wait_for("room.knock.result")
    assert waiting["result"] == "waiting" and waiting["answer_within"] == services.KNOCK_ANSWER_SECONDS
    asked = await alice.wait_for("room.knock")
    assert asked["knock"]["user"] == {"id": people["bob"].id, "name": "Bob Baker"}
    assert_frame_matches(asked)
    assert_frame_matches(waiting)
    assert asked["knock"]["room_name"] == "Vault"
    for other in (carol, dana):
        assert [f for f in await other.collect(0.3) if f["type"] == "room.knock"] == []


@SOCKET
async def test_knocking_twice_within_the_interval_is_refused_with_a_clear_error(office, people, sockets):
    bob = await bob_at_the_vault_door(office, people, sockets)
    await bob.send({"type": "room.knock", "room": office["vault"].id})
    await bob.wait_for("room.knock.result")
    await bob.send({"type": "room.knock", "room": office["vault"].id})
    error = await bob.wait_for("error")
    assert error["code"] == "knock_rate_limited" and error["ref"] == "room.knock"
    assert "less than 30 seconds ago" in error["message"]
    assert await database_sync_to_async(RoomKnock.objects.count)() == 1


@SOCKET
async def test_only_someone_at_the_door_who_may_not_enter_can_knock(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)  # a member, at the spawn point
    carol = await sockets(people["carol"], office["map"].id)  # not a member, far from the door
    await alice.send({"type": "room.knock", "room": office["vault"].id})
    assert "already enter" in (await alice.wait_for("error"))["message"]
    await carol.send({"type": "room.knock", "room": office["vault"].id})
    assert "stand at the door" in (await carol.wait_for("error"))["message"]
    await carol.send({"type": "room.knock", "room": office["atlas"].id})
    assert (await carol.wait_for("error"))["code"] == "cannot_knock"


@SOCKET
async def test_let_in_lets_the_knocker_step_in_at_once_and_the_pass_ends_when_they_leave(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    carol = await sockets(people["carol"], office["map"].id)
    bob = await bob_at_the_vault_door(office, people, sockets)
    await bob.send({"type": "room.knock", "room": office["vault"].id})
    knock = (await alice.wait_for("room.knock"))["knock"]["id"]
    # when alice lets him in
    await alice.send({"type": "room.knock.answer", "knock": knock, "let_in": True})
    # then bob is told who let him in, and his very next step into the Vault is taken
    result = await bob.wait_for("room.knock.result", where=lambda f: f["result"] != "waiting")
    assert result == {"type": "room.knock.result", "knock": knock, "room": office["vault"].id, "result": "accepted",
                      "by": "Alice Archer", "answer_within": None}
    closed = await alice.wait_for("room.knock.closed")
    assert closed["result"] == "accepted"
    assert_frame_matches(closed)
    assert_frame_matches(result)
    await bob.send({"type": "move", "x": 20, "y": 6, "seq": 1})
    await bob.wait_for("moves", where=lambda f: [people["bob"].id, 20, 6, 1] in f["m"])
    assert not [f for f in bob.frames if f["type"] == "move.rejected"]
    # and carol (not a member) was never asked
    assert not [f for f in await carol.collect(0.2) if f["type"].startswith("room.knock")]
    # when he walks out, the pass ends: he cannot walk back in
    await asyncio.sleep(0.25)
    await bob.send({"type": "move", "x": 20, "y": 7, "seq": 2})
    await bob.wait_for("moves", where=lambda f: [people["bob"].id, 20, 7, 2] in f["m"])
    await asyncio.sleep(0.25)
    await bob.send({"type": "move", "x": 20, "y": 6, "seq": 3})
    assert (await bob.wait_for("move.rejected"))["seq"] == 3


@SOCKET
async def test_ignore_keeps_the_door_shut_and_a_second_answer_is_refused(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    carol = await sockets(people["carol"], office["map"].id)
    bob = await bob_at_the_vault_door(office, people, sockets)
    await bob.send({"type": "room.knock", "room": office["vault"].id})
    knock = (await alice.wait_for("room.knock"))["knock"]["id"]
    # given carol (not a member) cannot answer it
    await carol.send({"type": "room.knock.answer", "knock": knock, "let_in": True})
    assert (await carol.wait_for("error"))["code"] == "not_found"
    # when alice ignores it
    await alice.send({"type": "room.knock.answer", "knock": knock, "let_in": False})
    result = await bob.wait_for("room.knock.result", where=lambda f: f["result"] != "waiting")
    assert result["result"] == "ignored" and result["by"] == "Alice Archer"
    # then bob's step is still refused, and a change of mind comes too late
    await bob.send({"type": "move", "x": 20, "y": 6, "seq": 1})
    assert "private" in (await bob.wait_for("move.rejected"))["reason"]
    await alice.send({"type": "room.knock.answer", "knock": knock, "let_in": True})
    assert "already answered" in (await alice.wait_for("error"))["message"]
    assert not await database_sync_to_async(RoomGuestPass.objects.exists)()


@SOCKET
async def test_an_unanswered_knock_lapses_and_the_knocker_is_told(office, people, sockets, monkeypatch):
    monkeypatch.setattr(services, "KNOCK_ANSWER_SECONDS", 0.5)
    alice = await sockets(people["alice"], office["map"].id)
    bob = await bob_at_the_vault_door(office, people, sockets)
    await bob.send({"type": "room.knock", "room": office["vault"].id})
    knock = (await alice.wait_for("room.knock"))["knock"]["id"]
    # when no one answers in time
    result = await bob.wait_for("room.knock.result", where=lambda f: f["result"] != "waiting", timeout=4)
    # then bob is told, alice's prompt closes, and a late answer lets no one in
    assert result["result"] == "unanswered" and result["by"] is None
    assert (await alice.wait_for("room.knock.closed"))["knock"] == knock
    await alice.send({"type": "room.knock.answer", "knock": knock, "let_in": True})
    assert (await alice.wait_for("error"))["code"] == "invalid"
    assert not await database_sync_to_async(RoomGuestPass.objects.exists)()


@SOCKET
async def test_a_knock_lapses_when_the_knockers_page_closes(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    bob = await bob_at_the_vault_door(office, people, sockets)
    await bob.send({"type": "room.knock", "room": office["vault"].id})
    knock = (await alice.wait_for("room.knock"))["knock"]["id"]
    # when bob closes his page before anyone answers
    await bob.communicator.disconnect()
    # then alice's prompt closes at once, and a late "let in" lets no one in
    assert (await alice.wait_for("room.knock.closed", timeout=3))["knock"] == knock
    await alice.send({"type": "room.knock.answer", "knock": knock, "let_in": True})
    assert (await alice.wait_for("error"))["code"] == "invalid"
    assert not await database_sync_to_async(RoomGuestPass.objects.exists)()


def test_beat_lapses_knocks_past_their_answer_time_whose_page_timer_is_gone(office, people):
    from rooms.tasks import knocks_lapse_overdue

    # given two knocks no socket is timing (their web process stopped): one past its 30 s, one fresh
    overdue = RoomKnock.objects.create(room=office["vault"], user=people["bob"])
    RoomKnock.objects.filter(pk=overdue.pk).update(created_at=timezone.now() - dt.timedelta(seconds=31))
    fresh = RoomKnock.objects.create(room=office["vault"], user=people["carol"])
    # when beat's task runs
    assert knocks_lapse_overdue() == 1
    # then only the overdue one lapsed, as unanswered, and running again changes nothing
    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert overdue.answer == RoomKnock.Answer.UNANSWERED and overdue.answered_at is not None
    assert fresh.answered_at is None
    assert knocks_lapse_overdue() == 0


def test_a_guest_pass_counts_as_membership_until_it_expires_or_ends(office, people):
    bob, vault, map_id = people["bob"], office["vault"], office["map"].id
    now = timezone.now()
    pass_ = RoomGuestPass.objects.create(room=vault, user=bob, granted_by=people["alice"],
                                         expires_at=now + dt.timedelta(minutes=30))
    assert selectors.private_room_ids_for(bob, map_id) == {vault.id}
    assert selectors.private_room_ids_for(people["carol"], map_id) == set()
    RoomGuestPass.objects.filter(pk=pass_.pk).update(expires_at=now - dt.timedelta(seconds=1))
    assert selectors.private_room_ids_for(bob, map_id) == set()
    RoomGuestPass.objects.filter(pk=pass_.pk).update(expires_at=now + dt.timedelta(minutes=5))
    assert services.room_guest_pass_end(user=bob, room_id=vault.id) == 1
    assert selectors.private_room_ids_for(bob, map_id) == set()
