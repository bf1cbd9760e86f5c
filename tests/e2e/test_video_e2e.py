"""Camera and screen sharing between two people near each other, in real Chromium pages: the video
rides on their proximity voice connection (renegotiated over `voice.signal`), shows as a tile with
their name and mute state, and a shared screen takes the stage (presenter view) until it stops.

Chromium's fake devices stand in for the camera (`--use-fake-device-for-media-stream`) and for the
screen: with `--use-fake-ui-for-media-stream`, getDisplayMedia in headless Chromium returns a fake
1280x720 "screen" without a picker, so no test hook is needed."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS, _signer
from tests.e2e.voice_steps import CALL_CONNECTED, PLAYING, join_audio_and_connect, tile
from tests.page_polling import wait_for_async
from transcription.audio_bus import STREAMS_KEY

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sign_in_with_camera(media_browser, live_office):
    """Like `sign_in_with_microphone`, with the fake camera allowed too."""
    contexts = []
    yield _signer(media_browser, live_office, contexts, permissions=["microphone", "camera"])
    for context in contexts:
        context.close()


def test_a_camera_and_a_shared_screen_reach_the_person_nearby(office, people, sign_in_with_camera):
    alice_id, bob_id = people["alice"].id, people["bob"].id
    # given alice and bob at the spawn point in the open space, talking (audio joined)
    alice = sign_in_with_camera("alice", PASSWORD)
    bob = sign_in_with_camera("bob", PASSWORD)
    join_audio_and_connect(alice, bob, alice_id, bob_id)
    # then each sees a tile per person, nobody's camera on yet
    bob.wait_for_selector(f'{tile(alice_id)}[data-video="off"]')
    bob.wait_for_selector(f'{tile(bob_id)}[data-video="off"]')
    assert bob.inner_text(f"{tile(alice_id)} .vt-name") == "Alice Archer"
    assert bob.inner_text(f"{tile(bob_id)} .vt-name") == "Bob Baker (you)"

    # when alice turns her camera on
    alice.click("#camera-toggle")
    alice.wait_for_selector('#camera-toggle[aria-pressed="true"]')
    # then bob sees her video playing in her tile
    bob.wait_for_selector(f'{tile(alice_id)}[data-video="on"]', timeout=15000)
    wait_for_async(bob, PLAYING, f"{tile(alice_id)} video", timeout_ms=15000)
    # and her camera is sent within the cap for a group of two (720p at most)
    params = alice.wait_for_function("""() => {
      const peer = [...window.officeClient.voice.peers.values()][0];
      const p = peer.video.tx.camera.sender.getParameters();
      return p.encodings && p.encodings[0] && p.encodings[0].maxBitrate ? p.encodings[0] : null;
    }""", timeout=10000).json_value()
    assert params["maxBitrate"] == 1_200_000 and params["maxFramerate"] == 30

    # when she mutes, bob's tile says so and her camera stays on; unmuting clears it
    alice.click("#mic-toggle")
    bob.wait_for_selector(f'{tile(alice_id)}[data-muted="true"] .vt-mic:text("muted")')
    assert alice.get_attribute("#camera-toggle", "aria-pressed") == "true"
    assert bob.get_attribute(tile(alice_id), "data-video") == "on"
    alice.click("#mic-toggle")
    bob.wait_for_selector(f'{tile(alice_id)}[data-muted="false"]')
    ARTIFACTS.mkdir(exist_ok=True)
    bob.screenshot(path=str(ARTIFACTS / "video-grid-bob.png"))

    # when alice shares her screen
    alice.click("#screen-toggle")
    alice.wait_for_selector('#screen-toggle[aria-pressed="true"]')
    # then bob's stage switches to the presenter view: her screen large, the people as a strip
    bob.wait_for_selector('#video-stage[data-layout="presenter"]', timeout=15000)
    screen = f'#video-main {tile(alice_id, "screen")}'
    bob.wait_for_selector(screen)
    wait_for_async(bob, PLAYING, f"{screen} video", timeout_ms=15000)
    assert "screen" in bob.inner_text(f"{screen} .vt-name")
    assert bob.locator(f"#video-tiles {tile(alice_id)}").count() == 1
    assert bob.locator(f"#video-tiles {tile(bob_id)}").count() == 1
    bob.screenshot(path=str(ARTIFACTS / "video-presenter-bob.png"))
    alice.screenshot(path=str(ARTIFACTS / "video-presenter-alice.png"))

    # when carol comes along while alice presents (her first call with alice carries the video already)
    carol = sign_in_with_camera("carol", PASSWORD)
    carol.click("#audio-join")
    # then carol sees the presenter view too, with everyone in the strip
    carol.wait_for_selector('#video-stage[data-layout="presenter"]', timeout=15000)
    wait_for_async(carol, PLAYING, f"#video-main {tile(alice_id, 'screen')} video", timeout_ms=15000)
    wait_for_async(carol, PLAYING, f"{tile(alice_id)} video", timeout_ms=15000)
    assert carol.locator("#video-tiles .video-tile").count() == 3
    carol.screenshot(path=str(ARTIFACTS / "video-presenter-carol.png"))

    # when bob shares his screen too, carol's stage shows the newest share and alice's waits in the strip
    bob.click("#screen-toggle")
    bob_screen = tile(bob_id, "screen")
    carol.wait_for_selector(f"#video-main {bob_screen}", timeout=15000)
    wait_for_async(carol, PLAYING, f"#video-main {bob_screen} video", timeout_ms=15000)
    waiting = f'#video-tiles {tile(alice_id, "screen")}[data-place="strip"]'
    carol.wait_for_selector(waiting)
    # ...while bob keeps watching alice's, his own share in his strip
    bob.wait_for_selector(f'#video-tiles {bob_screen}[data-place="strip"]', timeout=10000)
    assert bob.locator(f'#video-main {tile(alice_id, "screen")}').count() == 1
    # when carol clicks alice's share, it is on her stage again, and bob's waits in the strip
    carol.click(waiting)
    carol.wait_for_selector(f'#video-main {tile(alice_id, "screen")}')
    assert carol.locator(f'#video-tiles {bob_screen}[data-place="strip"]').count() == 1
    carol.screenshot(path=str(ARTIFACTS / "video-two-shares-carol.png"))
    # and when bob stops sharing, his tile goes and alice's share stays on her stage
    bob.click("#screen-toggle")
    carol.wait_for_selector(f"#video-tiles {bob_screen}", state="detached", timeout=15000)
    assert carol.locator(f'#video-main {tile(alice_id, "screen")}').count() == 1

    # when the browser ends the share (its own "Stop sharing" button ends the track)
    alice.evaluate("window.officeClient.video.local.screen.track.dispatchEvent(new Event('ended'))")
    # then both are back to the grid, alice's camera still on
    bob.wait_for_selector('#video-stage[data-layout="grid"]', timeout=15000)
    assert bob.locator("#video-main .video-tile").count() == 0
    assert alice.get_attribute("#screen-toggle", "aria-pressed") == "false"
    wait_for_async(bob, PLAYING, f"{tile(alice_id)} video", timeout_ms=10000)

    # when she turns the camera off, her tile shows her initials again
    alice.click("#camera-toggle")
    bob.wait_for_selector(f'{tile(alice_id)}[data-video="off"]', timeout=15000)
    assert bob.inner_text(f"{tile(alice_id)} .vt-face") == "AA"
    # and the voice connection carried all of it: still the same call
    assert bob.evaluate(CALL_CONNECTED, alice_id)


def test_the_bandwidth_policy_caps_video_by_group_size(office, people, sign_in_with_camera):
    page = sign_in_with_camera("alice", PASSWORD)
    policy = page.evaluate("""async () => {
      const { videoSendPolicy } = await import('/static/office/video.js');
      const at = (source, peers, sourceHeight) => videoSendPolicy({ source, peers, sourceHeight });
      return {
        cam1: at('camera', 1, 720), cam2: at('camera', 2, 720), cam4: at('camera', 4, 720),
        cam6: at('camera', 6, 720), cam_small: at('camera', 6, 120),
        scr1: at('screen', 1, 2160), scr4: at('screen', 4, 1080), scr8: at('screen', 8, 1080),
      };
    }""")
    # cameras: 720p for up to 2 peers, 360p up to 4, 180p beyond; never upscaled
    assert [policy[k]["scaleResolutionDownBy"] for k in ("cam1", "cam2", "cam4", "cam6", "cam_small")] == [1, 1, 2, 4, 1]
    assert policy["cam1"]["maxBitrate"] > policy["cam4"]["maxBitrate"] > policy["cam6"]["maxBitrate"]
    assert policy["cam6"]["maxFramerate"] < policy["cam1"]["maxFramerate"]
    # screens keep their resolution and give up frame rate first
    assert policy["scr1"]["scaleResolutionDownBy"] == 2  # 4K down to 1080p
    assert policy["scr4"]["scaleResolutionDownBy"] == 1
    assert policy["scr8"]["scaleResolutionDownBy"] == 1.5  # 720p for a crowd
    assert policy["scr4"]["maxFramerate"] < policy["cam4"]["maxFramerate"]
    assert {policy[k]["degradationPreference"] for k in ("scr1", "scr4", "scr8")} == {"maintain-resolution"}


def _let_go_of_audio_streams(timeout: float = 10.0) -> None:
    """No transcription worker runs here: once the pages are gone and each server peer has written
    its end marker, take the meeting's audio streams off the worker's list ourselves."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        deadline = time.monotonic() + timeout
        keys = [k for k in client.smembers(STREAMS_KEY)]
        for key in keys:
            while time.monotonic() < deadline:
                last = client.xrevrange(key, count=1)
                if last and b"end" in last[0][1]:
                    break
                time.sleep(0.1)
            client.srem(STREAMS_KEY, key)
            client.delete(key)
    finally:
        client.close()


def test_video_in_a_meeting_room_goes_to_the_people_there_and_never_to_the_transcriber(
    office, people, sign_in_with_camera
):
    alice_id, bob_id = people["alice"].id, people["bob"].id
    # given alice and bob talking in the open space, bob with his camera on
    alice = sign_in_with_camera("alice", PASSWORD)
    bob = sign_in_with_camera("bob", PASSWORD)
    join_audio_and_connect(alice, bob, alice_id, bob_id, both_sides=False)
    bob.click("#camera-toggle")
    wait_for_async(alice, PLAYING, f"{tile(bob_id)} video", timeout_ms=15000)  # bob renegotiated (polite side)

    # when alice walks into Atlas, a meeting room the assistant transcribes, the call ends
    alice.evaluate("window.officeClient.moveTo(6, 4)")
    alice.wait_for_function("window.officeClient.meeting.attachState === 'on'", timeout=20000)
    alice.wait_for_function("id => !window.officeClient.voice.peers.has(id)", arg=bob_id, timeout=15000)
    first_call = bob.evaluate("id => window.officeClient.voice.peers.get(id)?.sid ?? null", alice_id)
    # and when bob follows her in
    bob.evaluate("window.officeClient.moveTo(5, 3)")
    # then they are on a new call in the room, and bob's camera (on before the call) reaches alice
    alice.wait_for_function(CALL_CONNECTED, arg=bob_id, timeout=20000)
    assert alice.evaluate("id => window.officeClient.voice.peers.get(id).sid", bob_id) != first_call
    wait_for_async(alice, PLAYING, f"{tile(bob_id)} video", timeout_ms=15000)
    # and when alice turns her camera on, bob sees it
    alice.click("#camera-toggle")
    wait_for_async(bob, PLAYING, f"{tile(alice_id)} video", timeout_ms=15000)
    bob.wait_for_timeout(800)  # a few more frames, so that the screenshot shows the picture
    bob.screenshot(path=str(ARTIFACTS / "video-meeting-room-bob.png"))
    # while the transcriber's connection carries her microphone only
    sdp = alice.evaluate("""() => ({
      meeting: window.officeClient.meeting.pc.localDescription.sdp,
      meetingRemote: window.officeClient.meeting.pc.remoteDescription.sdp,
      voice: [...window.officeClient.voice.peers.values()][0].pc.localDescription.sdp,
    })""")
    assert "m=video" in sdp["voice"]
    assert "m=video" not in sdp["meeting"] and "m=video" not in sdp["meetingRemote"]
    assert sdp["meeting"].count("m=audio") == 1

    alice.context.close()
    bob.context.close()
    _let_go_of_audio_streams()
