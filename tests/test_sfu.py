"""The SFU against a real Janus (Debian package `janus`, scripts/install-test-system-packages.sh).

Office creates the SFU room and grants tokens (rooms/sfu.py); aiortc clients speak Janus's HTTP API
the way a page would (tests/janus_client.py). All media stays on 127.0.0.1. Personas: alice and bob
are in the meeting, charlie is not.
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
import pytest
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError
from channels.db import database_sync_to_async

from office.embedded import free_port
from rooms import services
from rooms.sfu import JanusSfu, SfuUnavailable, sfu_room_reconcile
from tests.janus_client import JanusError, JanusTestClient

ALICE, BOB, CHARLIE = 101, 102, 103
MEETING, OTHER_MEETING = 9001, 9002


@pytest.fixture
def sfu(janus) -> JanusSfu:
    return JanusSfu(url=janus.url, admin_url=janus.admin_url, admin_secret=janus.admin_secret)


async def _wait_until(predicate, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await asyncio.to_thread(predicate):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout}s")


async def test_granted_people_exchange_audio_through_the_sfu_and_a_revoked_one_is_out_within_2s(sfu, tone_wav):
    # given a meeting's SFU room with alice and bob granted
    await asyncio.to_thread(sfu.ensure_room, MEETING)
    alice_join = await asyncio.to_thread(sfu.grant, MEETING, ALICE)
    bob_join = await asyncio.to_thread(sfu.grant, MEETING, BOB)
    assert alice_join.room == MEETING and alice_join.token != bob_join.token
    alice, bob = JanusTestClient(alice_join.url, alice_join.token), JanusTestClient(bob_join.url, bob_join.token)
    player = MediaPlayer(tone_wav, loop=True)
    try:
        # when alice publishes her microphone and bob subscribes to her feed
        await alice.open()
        feed = await alice.publish(MEETING, player.audio, display="alice")
        await alice.wait_for(lambda e: e.get("janus") == "webrtcup", timeout=10)
        participants = await asyncio.to_thread(sfu.participants, MEETING)
        assert [(p.feed_id, p.publisher) for p in participants] == [(feed, True)]
        await bob.open()
        track = await asyncio.wait_for(await bob.subscribe(MEETING, feed), timeout=10)

        # then bob hears her: decoded audio frames with the tone in them
        peaks = []
        for _ in range(50):
            frame = await asyncio.wait_for(track.recv(), timeout=5)
            peaks.append(int(np.abs(frame.to_ndarray()).max()))
        assert frame.sample_rate == 48_000
        assert max(peaks) > 3_000, peaks

        # when alice is revoked
        started = time.monotonic()
        await asyncio.to_thread(sfu.revoke, MEETING, ALICE)

        # then within 2 s bob stops hearing her, her feed is gone from the room and her token opens nothing
        while True:
            try:
                await asyncio.wait_for(track.recv(), timeout=0.5)
            except (TimeoutError, MediaStreamError):
                break
            assert time.monotonic() - started < 2.0, "bob still hears alice 2 s after her revoke"
        await _wait_until(lambda: all(p.feed_id != feed for p in sfu.participants(MEETING)), timeout=2)
        again = JanusTestClient(alice_join.url, alice_join.token)
        with pytest.raises(JanusError) as refused:
            await again.open()
        assert refused.value.code == 403
        assert time.monotonic() - started < 2.0
    finally:
        player.audio.stop()
        await alice.close()
        await bob.close()


async def test_without_a_token_or_with_another_rooms_token_nobody_joins(sfu):
    # given the meeting's room, and charlie granted only another meeting
    await asyncio.to_thread(sfu.ensure_room, MEETING)
    await asyncio.to_thread(sfu.ensure_room, OTHER_MEETING)
    other = await asyncio.to_thread(sfu.grant, OTHER_MEETING, CHARLIE)

    # when a client comes without a token, then Janus opens no session for it
    anonymous = JanusTestClient(other.url, None)
    with pytest.raises(JanusError) as refused:
        await anonymous.open()
    assert refused.value.code == 403

    # when charlie joins the meeting with his other room's token, then the room's allowed list refuses him
    charlie = JanusTestClient(other.url, other.token)
    try:
        await charlie.open()
        with pytest.raises(JanusError) as refused:
            await charlie._message({"request": "join", "ptype": "publisher", "room": MEETING, "token": other.token})
        assert refused.value.code == 433  # JANUS_VIDEOROOM_ERROR_UNAUTHORIZED
        assert await asyncio.to_thread(sfu.participants, MEETING) == []
    finally:
        await charlie.close()


def test_a_grant_is_idempotent_and_a_revoke_of_nobody_is_harmless(sfu):
    # given a room where bob was granted twice
    sfu.ensure_room(MEETING)
    sfu.ensure_room(MEETING)
    first, second = sfu.grant(MEETING, BOB), sfu.grant(MEETING, BOB)

    # then it is one token, listed once
    assert first == second
    assert sfu.token_for(MEETING, BOB) in sfu.allowed_tokens(MEETING)

    # when bob is revoked twice, and charlie who never was
    sfu.revoke(MEETING, BOB)
    sfu.revoke(MEETING, BOB)
    sfu.revoke(MEETING, CHARLIE)

    # then the room's allowed list no longer names him
    assert sfu.token_for(MEETING, BOB) not in sfu.allowed_tokens(MEETING)


def test_an_sfu_that_does_not_answer_is_unavailable_not_a_crash():
    # given an SFU URL where nothing listens, when Office asks it for a room, then it says unavailable
    sfu = JanusSfu(url="http://127.0.0.1:9/janus", admin_url=f"http://127.0.0.1:{free_port()}/admin",
                   admin_secret="x")
    with pytest.raises(SfuUnavailable):
        sfu.ensure_room(MEETING)


@pytest.mark.django_db(transaction=True)
async def test_a_private_room_moves_to_the_sfu_and_a_removed_member_is_out_within_2s(
        janus, sfu, settings, office, people, sockets, tone_wav):
    # given an SFU from two people on, and alice and carol members of the Vault with their desks inside it
    settings.OFFICE_SFU_URL, settings.OFFICE_SFU_ADMIN_URL = janus.url, janus.admin_url
    settings.OFFICE_SFU_ADMIN_SECRET, settings.OFFICE_SFU_FROM_PARTICIPANTS = janus.admin_secret, 2
    vault, alice, carol = office["vault"], people["alice"], people["carol"]
    await database_sync_to_async(services.room_set_members)(room=vault, user_ids=[alice.id, carol.id])
    for person, x in ((alice, 18), (carol, 19)):
        await database_sync_to_async(services.desk_create)(office_map=office["map"], label=person.username,
                                                           x=x, y=3, owner=person)

    # when alice opens the office alone, then the Vault stays a mesh
    alice_socket = await sockets(alice, office["map"].id)
    assert alice_socket.hello["you"]["room"] == vault.id
    assert not [f for f in await alice_socket.collect(0.5) if f["type"] == "sfu.join"]
    assert not await asyncio.to_thread(sfu.room_exists, vault.id)

    # when carol opens it too, then both are granted the Vault's SFU room
    carol_socket = await sockets(carol, office["map"].id)
    carol_join = await carol_socket.wait_for("sfu.join", timeout=5)
    alice_join = await alice_socket.wait_for("sfu.join", timeout=5)
    assert carol_join["room"] == alice_join["room"] == vault.id
    assert carol_join["sfu"]["room"] == vault.id and carol_join["sfu"]["url"] == janus.url
    assert carol_join["sfu"]["token"] != alice_join["sfu"]["token"]

    # when alice's page comes back while she is still granted (a reload whose leave and enter were
    # reconciled after both had committed), then she is told again
    await database_sync_to_async(sfu_room_reconcile)(room_id=vault.id, entered_user_id=alice.id, sfu=sfu)
    assert (await alice_socket.wait_for("sfu.join", timeout=5))["sfu"] == alice_join["sfu"]

    # and carol's page publishes her microphone with her grant
    carol_page = JanusTestClient(carol_join["sfu"]["url"], carol_join["sfu"]["token"])
    player = MediaPlayer(tone_wav, loop=True)
    try:
        await carol_page.open()
        # (under alice's name: a page names its own feeds)
        feed = await carol_page.publish(vault.id, player.audio, display=str(alice.id))
        await carol_page.wait_for(lambda e: e.get("janus") == "webrtcup", timeout=10)

        # then a page asking who published what hears it from the grant, not from the feed's name
        await alice_socket.send({"type": "sfu.feeds", "room": vault.id})
        owners = await alice_socket.wait_for("sfu.feeds", timeout=5)
        assert owners == {"type": "sfu.feeds", "room": vault.id, "owners": {str(feed): carol.id}}
        # ...and only about the room it stands in
        await alice_socket.send({"type": "sfu.feeds", "room": office["atlas"].id})
        refused = await alice_socket.wait_for("error", timeout=5)
        assert (refused["code"], refused["ref"]) == ("not_in_room", "sfu.feeds")

        # when an admin takes carol off the Vault's list
        started = time.monotonic()
        await database_sync_to_async(services.room_set_members)(room=vault, user_ids=[alice.id])

        # then within 2 s her feed is gone from the SFU room and her grant opens nothing any more
        await _wait_until(lambda: all(p.feed_id != feed for p in sfu.participants(vault.id)), timeout=2)
        again = JanusTestClient(carol_join["sfu"]["url"], carol_join["sfu"]["token"])
        with pytest.raises(JanusError):
            await again.open()
        assert time.monotonic() - started < 2.0
        assert sfu.token_for(vault.id, alice.id) in await asyncio.to_thread(sfu.allowed_tokens, vault.id)
    finally:
        player.audio.stop()
        await carol_page.close()


@pytest.mark.django_db(transaction=True)
async def test_without_an_answering_sfu_the_room_stays_a_mesh(settings, office, people, sockets):
    # given an SFU URL where nothing answers (Janus not installed, or down)
    settings.OFFICE_SFU_URL, settings.OFFICE_SFU_ADMIN_URL = "http://127.0.0.1:9/janus", f"http://127.0.0.1:{free_port()}/admin"
    settings.OFFICE_SFU_ADMIN_SECRET, settings.OFFICE_SFU_FROM_PARTICIPANTS = "x", 2
    vault, alice = office["vault"], people["alice"]
    await database_sync_to_async(services.room_set_members)(room=vault, user_ids=[alice.id, people["carol"].id])
    for person, x in ((alice, 18), (people["carol"], 19)):
        await database_sync_to_async(services.desk_create)(office_map=office["map"], label=person.username,
                                                           x=x, y=3, owner=person)

    # when two people stand in the Vault
    alice_socket = await sockets(alice, office["map"].id)
    await sockets(people["carol"], office["map"].id)

    # then nobody is sent to an SFU, and the office socket works on
    frames = await alice_socket.collect(1.0)
    assert not [f for f in frames if f["type"] == "sfu.join"]
    await alice_socket.send({"type": "ping"})
    assert (await alice_socket.wait_for("pong"))["t"] > 0


PAGE = """<!doctype html><meta charset="utf-8"><title>sfu</title>
<script type="module">
import { SfuSession } from "/sfu.js";
window.joinSfu = async (grant) => {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  window.sfu = new SfuSession(grant, { track: stream.getAudioTracks()[0], display: "page",
                                       onClosed: (why) => { window.sfuClosed = why; } });
  await window.sfu.start();
  return window.sfu.publisher.feed;
};
window.heardPackets = async () => {
  let n = 0;
  for (const { pc } of window.sfu.subscribers.values()) {
    (await pc.getStats()).forEach((r) => { if (r.type === "inbound-rtp" && r.kind === "audio") n += r.packetsReceived; });
  }
  return n;
};
</script>"""


@pytest.fixture
def sfu_page(tmp_path):
    """static/office/sfu.js and a bare page importing it, served on 127.0.0.1."""
    from tests.e2e.conftest import CHROMIUM

    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is missing (scripts/install-test-system-packages.sh)")
    import functools
    import http.server
    import shutil
    import threading
    from pathlib import Path

    shutil.copy(Path(__file__).resolve().parent.parent / "static" / "office" / "sfu.js", tmp_path / "sfu.js")
    (tmp_path / "index.html").write_text(PAGE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


async def test_a_browser_page_publishes_and_hears_through_the_sfu_and_is_out_within_2s_of_its_revoke(
        sfu, sfu_page, tone_wav):
    from playwright.async_api import async_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    room, page_user, speaker, listener = 9100, 201, 202, 203
    # given the room's SFU with someone (aiortc) already speaking in it
    await asyncio.to_thread(sfu.ensure_room, room)
    speaker_grant = await asyncio.to_thread(sfu.grant, room, speaker)
    speaking = JanusTestClient(speaker_grant.url, speaker_grant.token)
    player = MediaPlayer(tone_wav, loop=True)
    listening = None
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={tone_wav}", "--allow-loopback-in-peer-connection"])
        try:
            await speaking.open()
            await speaking.publish(room, player.audio, display="speaker")

            # when a page joins with its grant (what it gets in `sfu.join`)
            page_grant = await asyncio.to_thread(sfu.grant, room, page_user)
            page = await chromium.new_page()
            await page.goto(sfu_page)
            page_feed = await page.evaluate("(g) => window.joinSfu(g)", {
                "url": page_grant.url, "room": page_grant.room, "token": page_grant.token})

            # then the page hears the speaker through the SFU...
            # (polled here: `wait_for_function` would take the async predicate's promise as truthy)
            for _ in range(50):
                if (heard := await page.evaluate("window.heardPackets()")) > 20:
                    break
                await asyncio.sleep(0.2)
            assert heard > 20, heard
            # ...and someone else hears the page's microphone
            listener_grant = await asyncio.to_thread(sfu.grant, room, listener)
            listening = JanusTestClient(listener_grant.url, listener_grant.token)
            await listening.open()
            track = await asyncio.wait_for(await listening.subscribe(room, page_feed), timeout=10)
            peaks = [int(np.abs((await asyncio.wait_for(track.recv(), 5)).to_ndarray()).max()) for _ in range(50)]
            assert max(peaks) > 1_000, peaks  # the tone, through Chromium's capture and Opus

            # when the page's person is revoked, then within 2 s the page knows and its feed is gone
            started = time.monotonic()
            await asyncio.to_thread(sfu.revoke, room, page_user)
            await page.wait_for_function("() => Boolean(window.sfuClosed)", timeout=2_000)
            await _wait_until(lambda: all(p.feed_id != page_feed for p in sfu.participants(room)), timeout=2)
            assert time.monotonic() - started < 2.0
        finally:
            await chromium.close()
            player.audio.stop()
            await speaking.close()
            if listening is not None:
                await listening.close()


async def test_the_sfu_metrics_count_rooms_and_feeds_by_source_and_say_when_it_does_not_answer(
        sfu, janus, settings, tone_wav):
    from aiortc import VideoStreamTrack
    from prometheus_client import CollectorRegistry, generate_latest

    from rooms.sfu_metrics import SfuCollector

    settings.OFFICE_SFU_URL, settings.OFFICE_SFU_ADMIN_URL = janus.url, janus.admin_url
    settings.OFFICE_SFU_ADMIN_SECRET = janus.admin_secret
    registry = CollectorRegistry()
    registry.register(SfuCollector())

    def scrape() -> str:
        return generate_latest(registry).decode()

    # given two Office rooms on the SFU (and no other: earlier tests' go), alice's microphone and camera in one
    for room in await asyncio.to_thread(sfu.office_rooms):
        await asyncio.to_thread(sfu.destroy_room, room)
    for room in (MEETING, OTHER_MEETING):
        await asyncio.to_thread(sfu.ensure_room, room)
    grant = await asyncio.to_thread(sfu.grant, MEETING, ALICE)
    microphone, camera = JanusTestClient(grant.url, grant.token), JanusTestClient(grant.url, grant.token)
    player = MediaPlayer(tone_wav, loop=True)
    try:
        await microphone.open()
        await microphone.publish(MEETING, player.audio, display=str(ALICE))
        await camera.open()
        await camera.publish(MEETING, VideoStreamTrack(), display=f"{ALICE}:camera")
        for client in (microphone, camera):
            await client.wait_for(lambda e: e.get("janus") == "webrtcup", timeout=10)
        # when Prometheus scrapes
        body = await asyncio.to_thread(scrape)
    finally:
        player.audio.stop()
        await microphone.close()
        await camera.close()
        for room in (MEETING, OTHER_MEETING):
            await asyncio.to_thread(sfu.destroy_room, room)
    # then it sees both rooms and her two feeds, each by its source
    assert "office_sfu_up 1.0" in body
    assert "office_sfu_rooms 2.0" in body
    assert 'office_sfu_publishers{source="microphone"} 1.0' in body
    assert 'office_sfu_publishers{source="camera"} 1.0' in body
    assert 'office_sfu_publishers{source="screen"} 0.0' in body

    # when the SFU does not answer, then the scrape says so instead of failing
    settings.OFFICE_SFU_ADMIN_URL = f"http://127.0.0.1:{free_port()}/admin"
    body = await asyncio.to_thread(scrape)
    assert "office_sfu_up 0.0" in body and "office_sfu_rooms" not in body
