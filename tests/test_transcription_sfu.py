"""The transcriber hears an SFU room through the SFU (transcription/sfu_listener.py, docs/adr/0025).

A real Janus (Debian package `janus`), real speech (espeak-ng) published by aiortc the way a page
publishes its microphone (tests/janus_client.py), a transcription worker with the bundled Whisper
model, all media on 127.0.0.1. Personas: alice consents to transcription, bob opted out.
"""

from __future__ import annotations

import asyncio
import re

import pytest
import redis
from aiortc import VideoStreamTrack
from aiortc.contrib.media import MediaPlayer
from channels.db import database_sync_to_async
from django.conf import settings as django_settings

from rooms.sfu import JanusSfu
from tests.audio import espeak_available, utterance_wav
from tests.janus_client import JanusTestClient
from tests.walking import walk_into_atlas
from transcription.audio_bus import stream_key
from transcription.models import TranscriptSegment
from transcription.sfu_listener import sfu_listeners

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not espeak_available(), reason="espeak-ng makes the test speech (make test installs it)"),
]



@pytest.fixture
def sfu_on(janus, settings) -> JanusSfu:
    """Atlas (a meeting room with the assistant) goes through the SFU from two people on."""
    settings.OFFICE_SFU_URL, settings.OFFICE_SFU_ADMIN_URL = janus.url, janus.admin_url
    settings.OFFICE_SFU_ADMIN_SECRET, settings.OFFICE_SFU_FROM_PARTICIPANTS = janus.admin_secret, 2
    yield JanusSfu(url=janus.url, admin_url=janus.admin_url, admin_secret=janus.admin_secret)
    sfu_listeners.stop()


async def frame_of(socket, frame_type: str, timeout: float = 5, where=lambda f: True) -> dict:
    """A frame already received (while waiting for another) or the next matching one."""
    for frame in socket.frames:
        if frame["type"] == frame_type and where(frame):
            return frame
    return await socket.wait_for(frame_type, timeout=timeout, where=where)


async def eventually(predicate, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(predicate):
        assert loop.time() < deadline, f"not within {timeout}s"
        await asyncio.sleep(0.1)


async def test_the_transcriber_hears_consenting_speakers_through_the_sfu_and_no_one_else(
        sfu_on, office, people, sockets, worker, tmp_path, caplog):
    # given alice and bob in Atlas, a meeting room with the assistant, and bob opted out
    atlas, alice, bob = office["atlas"], people["alice"], people["bob"]
    alice_socket = await sockets(alice, office["map"].id)
    meeting = await walk_into_atlas(alice_socket)
    bob_socket = await sockets(bob, office["map"].id)
    await walk_into_atlas(bob_socket)
    await bob_socket.send({"type": "meeting.consent", "transcribe": False})

    # then the room is in the SFU, and both pages are told that the server listens there
    alice_grant = (await frame_of(alice_socket, "sfu.join"))["sfu"]
    bob_grant = (await frame_of(bob_socket, "sfu.join"))["sfu"]
    for socket in (alice_socket, bob_socket):
        frame = await frame_of(socket, "meeting.audio_via_sfu", where=lambda f: f["active"])
        assert frame == {"type": "meeting.audio_via_sfu", "room": atlas.id, "active": True}
    # and an upload is refused meanwhile (the page sends its microphone once, to the SFU)
    await alice_socket.send({"type": "rtc.offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"})
    assert (await alice_socket.wait_for("error"))["code"] == "audio_via_sfu"

    # when both publish speech to the SFU with their grants
    alice_page = JanusTestClient(alice_grant["url"], alice_grant["token"])
    alice_camera = JanusTestClient(alice_grant["url"], alice_grant["token"])
    bob_page = JanusTestClient(bob_grant["url"], bob_grant["token"])
    # (said again and again: however long the subscription takes, the transcriber hears a whole sentence)
    alice_player = MediaPlayer(utterance_wav("The quarterly report is due on Friday.", tmp_path / "alice.wav"), loop=True)
    bob_player = MediaPlayer(utterance_wav("My bank password is seven seven one.", tmp_path / "bob.wav"), loop=True)
    try:
        await alice_page.open()
        await bob_page.open()
        await bob_page.publish(atlas.id, bob_player.audio, display="alice")  # a page may claim any name
        alice_feed = await alice_page.publish(atlas.id, alice_player.audio, display="alice")
        # (and her camera, a publisher of its own on her grant, as a page in the SFU sends it)
        await alice_camera.open()
        camera_feed = await alice_camera.publish(atlas.id, VideoStreamTrack(), display=f"{alice.id}:camera")

        # then alice's words come back as captions attributed to her
        heard: set[str] = set()
        async with asyncio.timeout(45):
            while not {"quarterly", "report", "friday"} <= heard:
                segment = (await alice_socket.wait_for("caption.final", timeout=45))["segment"]
                assert segment["speaker"]["id"] == alice.id
                heard |= set(re.findall(r"[a-z]+", segment["text"].lower()))
        # and only her microphone is listened to: not her camera (not even tried), nothing of bob's
        assert await asyncio.to_thread(sfu_listeners.listened_feeds, atlas.id) == {alice_feed: alice.id}
        assert camera_feed != alice_feed
        assert not [r for r in caplog.records if f"feed {camera_feed} " in r.getMessage()]
        client = redis.Redis.from_url(django_settings.REDIS_URL)
        assert not client.exists(stream_key(meeting["id"], bob.id))
        client.close()
        speakers = await database_sync_to_async(lambda: set(TranscriptSegment.objects.filter(
            meeting_id=meeting["id"]).values_list("speaker_id", flat=True)))()
        assert speakers == {alice.id}

        # when carol comes in while the server listens, then her page is told on entering
        carol_socket = await sockets(people["carol"], office["map"].id)
        await walk_into_atlas(carol_socket)
        frame = await frame_of(carol_socket, "meeting.audio_via_sfu")
        assert frame == {"type": "meeting.audio_via_sfu", "room": atlas.id, "active": True}

        # when alice withdraws her consent, then her feed is unsubscribed at once
        await alice_socket.send({"type": "meeting.consent", "transcribe": False})
        await eventually(lambda: sfu_listeners.listened_speakers(atlas.id) == set(), timeout=1.5)

        # when the room leaves the SFU, then both pages are told to upload again
        await asyncio.to_thread(sfu_on.destroy_room, atlas.id)
        for socket in (alice_socket, bob_socket, carol_socket):
            frame = await socket.wait_for("meeting.audio_via_sfu", timeout=5, where=lambda f: not f["active"])
            assert frame["room"] == atlas.id
    finally:
        alice_player.audio.stop()
        bob_player.audio.stop()
        await alice_page.close()
        await alice_camera.close()
        await bob_page.close()
