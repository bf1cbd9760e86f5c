"""The transcriber's server peer takes a speaker's microphone and nothing else: a client that also
offers video (a camera, a shared screen) gets those m-lines answered `inactive`, so no video is ever
sent to the server, while the audio still reaches the transcription stream."""

from __future__ import annotations

import asyncio

import pytest
import redis
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.sdp import SessionDescription
from django.conf import settings

from tests.test_transcription_path import walk_into_atlas
from transcription.audio_bus import STREAMS_KEY, stream_key


@pytest.fixture
def streams():
    connection = redis.Redis.from_url(settings.REDIS_URL)
    yield connection
    connection.close()


def directions(sdp: str) -> list[tuple[str, str]]:
    return [(media.kind, media.direction) for media in SessionDescription.parse(sdp).media]


async def camera_and_microphone_offer() -> RTCPeerConnection:
    """What a browser with its camera on and a screen shared would offer, were it to send them."""
    pc = RTCPeerConnection()
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())  # camera
    pc.addTrack(VideoStreamTrack())  # shared screen
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def test_the_server_peer_answers_video_inactive_and_still_takes_the_audio(streams):
    from transcription.peer import SpeakerPeer

    # given a speaker's browser that offers its microphone, a camera and a shared screen
    browser = await camera_and_microphone_offer()
    assert directions(browser.localDescription.sdp) == [("audio", "sendrecv"), ("video", "sendrecv"),
                                                         ("video", "sendrecv")]
    peer = SpeakerPeer(meeting_id=987650, user_id=42)
    key = stream_key(987650, 42)
    try:
        # when the server peer answers
        answer = await peer.answer(browser.localDescription.sdp)
        # then it receives the audio and refuses both video m-lines
        assert directions(answer) == [("audio", "recvonly"), ("video", "inactive"), ("video", "inactive")]
        await browser.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        # and once connected, the browser sends no video while the audio reaches the transcription stream
        for _ in range(150):
            if streams.xlen(key):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("no audio reached the transcription stream within 15 s")
        video_senders = [t for t in browser.getTransceivers() if t.kind == "video"]
        assert [t.currentDirection for t in video_senders] == ["inactive", "inactive"]
        server_video = [t for t in peer.pc.getTransceivers() if t.kind == "video"]
        assert [t.currentDirection for t in server_video] == ["inactive", "inactive"]
        assert peer.pump is not None  # the one audio track is pumped
    finally:
        await browser.close()
        await peer.close()
        streams.delete(key)
        streams.srem(STREAMS_KEY, key)


@pytest.mark.django_db(transaction=True)
async def test_an_rtc_offer_with_video_gets_an_answer_that_refuses_the_video(office, people, sockets):
    # given alice in Atlas, where the assistant transcribes the meeting
    alice = await sockets(people["alice"], office["map"].id)
    await walk_into_atlas(alice)
    browser = await camera_and_microphone_offer()
    try:
        # when her client offers audio and video over the office socket
        await alice.send({"type": "rtc.offer", "sdp": browser.localDescription.sdp})
        answer = await alice.wait_for("rtc.answer", timeout=10)
        # then the answer takes the audio only
        assert directions(answer["sdp"]) == [("audio", "recvonly"), ("video", "inactive"), ("video", "inactive")]
    finally:
        await browser.close()
