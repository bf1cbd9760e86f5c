"""Real speech through a real aiortc client into the server peer, through the Redis audio streams
and a transcription worker running the bundled Whisper model, to persisted, attributed segments."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from channels.db import database_sync_to_async

from tests.audio import espeak_available, utterance_wav
from tests.walking import walk_into_atlas
from transcription.models import Meeting, TranscriptSegment

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not espeak_available(), reason="espeak-ng makes the test speech (make test installs it)"),
]



def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


async def speak_into_meeting(socket, wav_path: str) -> RTCPeerConnection:
    """What a browser does: offer its microphone track over the office socket, apply the answer."""
    player = MediaPlayer(wav_path)
    pc = RTCPeerConnection()
    pc.addTrack(player.audio)
    await pc.setLocalDescription(await pc.createOffer())
    await socket.send({"type": "rtc.offer", "sdp": pc.localDescription.sdp})
    answer = await socket.wait_for("rtc.answer", timeout=10)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    return pc


async def test_two_people_talking_at_once_are_transcribed_with_the_right_names(office, people, sockets, worker,
                                                                               tmp_path):
    # given alice and bob in Atlas, a room with the assistant on
    alice = await sockets(people["alice"], office["map"].id)
    meeting = await walk_into_atlas(alice)
    assert meeting["recording"] is True
    bob = await sockets(people["bob"], office["map"].id)
    await walk_into_atlas(bob)
    # when both speak at the same time, each through their own microphone track
    alice_wav = utterance_wav("The quarterly report is due on Friday.", tmp_path / "alice.wav")
    bob_wav = utterance_wav("I will review the marketing budget tomorrow.", tmp_path / "bob.wav")
    peers = await asyncio.gather(speak_into_meeting(alice, alice_wav), speak_into_meeting(bob, bob_wav))
    # then the room's sockets get final captions with the speakers' names
    finals = {}
    async with asyncio.timeout(60):
        while len(finals) < 2:
            frame = await alice.wait_for("caption.final", timeout=60)
            segment = frame["segment"]
            finals.setdefault(segment["speaker"]["name"], []).append(segment["text"])
    for pc in peers:
        await pc.close()
    # and the stored transcript holds the words, attributed to the right person
    def stored():
        return list(TranscriptSegment.objects.filter(meeting_id=meeting["id"]).values_list(
            "speaker__username", "text", "seq", "model_id"))

    await asyncio.sleep(1)
    rows = await database_sync_to_async(stored)()
    by_speaker = {}
    for username, text, _seq, model_id in rows:
        by_speaker.setdefault(username, set()).update(words(text))
        assert model_id
    assert {"quarterly", "report", "friday"} <= by_speaker["alice"]
    assert {"marketing", "budget", "tomorrow"} <= by_speaker["bob"]
    assert sorted(seq for _u, _t, seq, _m in rows) == list(range(1, len(rows) + 1))
    assert set(finals) == {"Alice Archer", "Bob Baker"}


async def test_opting_out_means_no_audio_is_taken(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    await walk_into_atlas(alice)
    await alice.send({"type": "meeting.consent", "transcribe": False})
    state = await alice.wait_for("meeting.state", where=lambda f: not f["meeting"]["participants"][0]["transcribed"])
    assert state["meeting"]["participants"][0]["name"] == "Alice Archer"
    await alice.send({"type": "rtc.offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"})
    error = await alice.wait_for("error")
    assert error["code"] == "not_transcribed"


async def test_garbage_offers_and_offers_outside_meetings_get_clear_errors(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    await alice.send({"type": "rtc.offer", "sdp": "v=0"})
    assert (await alice.wait_for("error"))["code"] == "no_meeting"  # standing in the open space
    await walk_into_atlas(alice)
    await alice.send({"type": "rtc.offer", "sdp": "this is not SDP m=audio"})
    error = await alice.wait_for("error")
    assert error["code"] == "bad_sdp" and error["ref"] == "rtc.offer"
    await alice.send({"type": "ping"})
    assert (await alice.wait_for("pong"))["type"] == "pong"  # the socket carries on


async def test_the_meeting_ends_when_the_last_person_leaves(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    meeting = await walk_into_atlas(alice)
    await alice.communicator.disconnect()
    await asyncio.sleep(0.5)
    ended = await database_sync_to_async(lambda: Meeting.objects.get(pk=meeting["id"]).ended_at)()
    assert ended is not None


async def test_voice_signalling_is_relayed_only_between_people_within_earshot(office, people, sockets):
    alice = await sockets(people["alice"], office["map"].id)
    bob = await sockets(people["bob"], office["map"].id)
    offer = {"type": "offer", "sdp": "v=0\r\n"}
    # alice and bob both stand at the spawn point: bob gets alice's offer
    await alice.send({"type": "voice.signal", "to": people["bob"].id, "signal": offer})
    relayed = await bob.wait_for("voice.signal")
    assert relayed == {"type": "voice.signal", "from": people["alice"].id, "signal": offer}
    # once alice is inside Atlas (a walled room), bob outside cannot reach her
    await walk_into_atlas(alice)
    await bob.send({"type": "voice.signal", "to": people["alice"].id, "signal": offer})
    assert (await bob.wait_for("error"))["code"] == "not_nearby"


async def test_hanging_up_mid_sentence_keeps_what_was_said(office, people, sockets, worker, tmp_path):
    # given alice talking in Atlas
    alice = await sockets(people["alice"], office["map"].id)
    meeting = await walk_into_atlas(alice)
    wav = utterance_wav("The new office opens in March and everyone gets a desk by the window.", tmp_path / "a.wav",
                        tail_s=0.0)  # about 4.5 s of speech; she hangs up after about 2.5 s of it
    pc = await speak_into_meeting(alice, wav)
    # when her connection drops while she is still speaking
    await asyncio.sleep(3.5)
    await alice.communicator.disconnect(timeout=10)  # Daphne gives a closing app 10 s as well
    await pc.close()

    # then what she had said so far is still stored as final text
    def alice_words():
        texts = TranscriptSegment.objects.filter(meeting_id=meeting["id"], speaker=people["alice"]).values_list(
            "text", flat=True)
        return words(" ".join(texts))

    async with asyncio.timeout(30):
        while not {"march", "everyone"} <= await database_sync_to_async(alice_words)():  # noqa: ASYNC110 (polls the DB)
            await asyncio.sleep(0.5)
