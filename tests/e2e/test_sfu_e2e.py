"""A meeting room moves from the browser mesh to the SFU (Janus) when the third person comes in, in
real Chromium pages: the pages hang up their mesh calls with each other, publish their (fake)
microphones to Janus and play the others from there; an aiortc participant (tests/janus_client.py,
standing in the room through an office socket) hears them and they hear it. Whoever walks out is
back on the mesh. The meeting panel says which.

Its own Daphne runs with the SFU from 3 people (the default is 5) and a Janus of its own; all media
stays on 127.0.0.1 (office/janus.py's loopback shim, --allow-loopback-in-peer-connection)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest
from aiortc.contrib.media import MediaPlayer

from rooms import services
from tests.conftest import PASSWORD, session_cookie
from tests.e2e.conftest import ARTIFACTS, _signer, running_daphne
from tests.e2e.voice_steps import CALL_CONNECTED, PLAYING, tile
from tests.janus_client import JanusTestClient
from tests.page_polling import wait_for_async

pytestmark = pytest.mark.django_db(transaction=True)

FORUM_INSIDE = [(29, 3), (31, 3), (30, 4)]  # alice, bob, dana's desk
SFU_FROM = 3


@pytest.fixture(scope="module")
def sfu_office(janus, django_db_setup, django_db_blocker):
    """Daphne on the test database with the SFU from three people on."""
    with running_daphne("daphne-sfu-e2e.log", OFFICE_SFU_URL=janus.url, OFFICE_SFU_ADMIN_URL=janus.admin_url,
                        OFFICE_SFU_ADMIN_SECRET=janus.admin_secret,
                        OFFICE_SFU_FROM_PARTICIPANTS=str(SFU_FROM)) as url:
        yield url


@pytest.fixture
def sign_in_sfu(media_browser, sfu_office):
    contexts = []
    yield _signer(media_browser, sfu_office, contexts, permissions=["microphone", "camera"])
    for context in contexts:
        context.close()
    _drop_unconsumed_audio_streams()


def _drop_unconsumed_audio_streams(timeout: float = 10.0) -> None:
    """No transcription worker runs here to consume (and forget) the meeting's audio streams, which
    the settling before the database flush would wait for in vain: once everyone is gone, drop them."""
    import redis
    from django.conf import settings

    from transcription.audio_bus import STREAMS_KEY, owner_key

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:  # the server's peers may still write a last chunk meanwhile
            present = any(client.hlen(k) for k in client.scan_iter("office:presence:*"))
            streams = client.smembers(STREAMS_KEY)
            for key in streams:
                client.pipeline().delete(key, owner_key(key.decode())).srem(STREAMS_KEY, key).execute()
            if present or streams:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 1.0:
                return
            time.sleep(0.1)
    finally:
        client.close()


class OfficeSocketThread:
    """An office socket held open from a thread (the aiortc participant's presence); keeps its frames."""

    def __init__(self, base_url: str, map_id: int, user) -> None:
        from websockets.sync.client import connect

        ws_url = base_url.replace("http://", "ws://") + f"/ws/office/{map_id}/"
        self.ws = connect(ws_url, origin=base_url, additional_headers={"Cookie": session_cookie(user).decode()})
        self.frames: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in self.ws:
                self.frames.append(json.loads(message))
        except Exception:  # closed
            return

    def wait_for(self, frame_type: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.frames:
                if frame.get("type") == frame_type:
                    return frame
            time.sleep(0.05)
        raise AssertionError(f"no {frame_type} within {timeout}s; got {[f.get('type') for f in self.frames]}")

    def close(self) -> None:
        self.ws.close()
        self.thread.join(timeout=5)


class AiortcParticipant:
    """Dana's client: publishes a tone to the SFU room and subscribes to the given feeds (own event loop)."""

    def __init__(self, grant: dict, tone_wav: str) -> None:
        self.grant, self.tone_wav = grant, tone_wav
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.clients: list[JanusTestClient] = []
        self.player = None

    def run(self, coro, timeout: float = 20.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _publish(self, display: str) -> int:
        self.player = MediaPlayer(self.tone_wav, loop=True)
        client = JanusTestClient(self.grant["url"], self.grant["token"])
        self.clients.append(client)
        await client.open()
        feed = await client.publish(self.grant["room"], self.player.audio, display=display)
        await client.wait_for(lambda e: e.get("janus") == "webrtcup", timeout=10)
        return feed

    async def _hear(self, feed: int, frames: int = 200) -> tuple[int, int]:
        """Frames received from a feed and their peak, over `frames` frames (4 s of 20 ms frames)."""
        client = JanusTestClient(self.grant["url"], self.grant["token"])
        self.clients.append(client)
        await client.open()
        track = await asyncio.wait_for(await client.subscribe(self.grant["room"], feed), timeout=10)
        got, peak = 0, 0
        for _ in range(frames):
            frame = await asyncio.wait_for(track.recv(), timeout=5)
            got += 1
            peak = max(peak, int(np.abs(frame.to_ndarray()).max()))
        return got, peak

    def publish(self, display: str) -> int:
        return self.run(self._publish(display))

    def hear(self, feeds: list[int]) -> list[tuple[int, int]]:
        async def both():
            return await asyncio.gather(*(self._hear(feed) for feed in feeds))
        return self.run(both(), timeout=30)

    def close(self) -> None:
        async def shut():
            if self.player is not None:
                self.player.audio.stop()
            for client in self.clients:
                await client.close()
            pollers = [c._poller for c in self.clients if c._poller is not None]
            if pollers:  # each ends within a second of close()
                await asyncio.wait(pollers, timeout=3)
        try:
            self.run(shut(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


INBOUND_BYTES = """async () => {
  const sfu = window.officeClient.voice.sfu;
  if (!sfu) return -1;
  let total = 0;
  for (const { pc } of sfu.session.subscribers.values()) {
    for (const s of (await pc.getStats()).values()) if (s.type === "inbound-rtp" && s.kind === "audio") total += s.bytesReceived;
  }
  return total;
}"""

OUTBOUND_BYTES = """async () => {
  const sfu = window.officeClient.voice.sfu;
  const pc = sfu && sfu.session.publisher && sfu.session.publisher.pc;
  if (!pc) return -1;
  let total = 0;
  for (const s of (await pc.getStats()).values()) if (s.type === "outbound-rtp" && s.kind === "audio") total += s.bytesSent;
  return total;
}"""


def _arrive(page, x: int, y: int, tries: int = 4) -> None:
    """Walk there. A loaded machine can get a step refused ("walking too fast": the server counts steps
    when it gets to them, and a room change delays the next ones); the page then stops, as a person
    would, and walks on when told again."""
    there = f"() => window.officeClient.state.you.x === {x} && window.officeClient.state.you.y === {y}"
    for _ in range(tries):
        page.evaluate(f"window.officeClient.moveTo({x}, {y})")
        try:
            page.wait_for_function(there, timeout=10000)
            return
        except Exception:
            continue
    pytest.fail(f"could not walk to {x},{y}: at {page.evaluate('window.officeClient.state.you')}")


def _growing(page, script: str, wait_s: float = 1.0) -> tuple[int, int]:
    """The count once it has started, and a second later."""
    before = wait_for_async(page, f"async () => {{ const n = await ({script})(); return n > 0 ? n : 0; }}")
    time.sleep(wait_s)
    return before, page.evaluate(script)


def _forum_with_danas_desk(office, people) -> None:
    """Forum, a meeting room (transcribed) with a desk of dana's inside."""
    _off_the_browser_thread(lambda: (
        services.room_create(office_map=office["map"], name="Forum", kind="meeting", x=26, y=1, width=9, height=6,
                             doors=[[30, 6]], capacity=12, assistant_enabled=True),
        services.desk_create(office_map=office["map"], label="dana", x=FORUM_INSIDE[2][0], y=FORUM_INSIDE[2][1],
                             owner=people["dana"])))


def _alice_and_bob_in_forum(sign_in_sfu):
    """Alice's and bob's pages, audio joined, standing in Forum."""
    alice = sign_in_sfu("alice", PASSWORD)
    bob = sign_in_sfu("bob", PASSWORD)
    for page, (x, y) in ((alice, FORUM_INSIDE[0]), (bob, FORUM_INSIDE[1])):
        page.click("#audio-join")
        page.evaluate(f"window.officeClient.moveTo({x}, {y})")
    for page, (x, y) in ((alice, FORUM_INSIDE[0]), (bob, FORUM_INSIDE[1])):
        _arrive(page, x, y)
    return alice, bob


def test_the_third_person_moves_the_room_to_the_sfu_everyone_hears_everyone_and_walking_out_is_mesh_again(
        office, people, janus, sfu_office, sign_in_sfu, tone_wav):
    started = time.monotonic()
    alice_id, bob_id, dana_id = people["alice"].id, people["bob"].id, people["dana"].id
    # given Forum, a meeting room (transcribed) with a desk of dana's inside
    _forum_with_danas_desk(office, people)

    # when alice and bob join audio and walk into Forum
    alice, bob = _alice_and_bob_in_forum(sign_in_sfu)
    # then two people are a mesh: a browser-to-browser call, and the panel says so
    connected = "id => window.officeClient.voice.peers.get(id)?.pc.connectionState === 'connected'"
    alice.wait_for_function(connected, arg=bob_id, timeout=20000)
    alice.wait_for_selector("#meeting-panel:not([hidden])", timeout=15000)
    alice.wait_for_function("document.querySelector('#media-mode').textContent === 'Mesh (2 people)'", timeout=10000)

    # when dana comes in too (her desk is inside), an aiortc client standing in for her page
    dana_socket = OfficeSocketThread(sfu_office, office["map"].id, people["dana"])
    dana = None
    try:
        grant = dana_socket.wait_for("sfu.join", timeout=10)["sfu"]
        dana = AiortcParticipant(grant, tone_wav)
        # (her feed named as alice's: pages must still hear it as dana, who holds the grant)
        dana_feed = dana.publish(display=str(alice_id))

        # then alice and bob hang up their mesh call and hear the room through the SFU
        for page, other in ((alice, bob_id), (bob, alice_id)):
            page.wait_for_function("() => window.officeClient.voice.sfu?.feeds.size === 2", timeout=20000)
            assert not page.evaluate(f"window.officeClient.voice.peers.has({other})")
            page.wait_for_function(
                "document.querySelector('#media-mode').textContent === 'Through the SFU (3 people)'", timeout=10000)
            before, after = _growing(page, INBOUND_BYTES)
            assert after > before > 0, (before, after)
            sent_before, sent_after = _growing(page, OUTBOUND_BYTES)
            assert sent_after > sent_before > 0, (sent_before, sent_after)
        assert alice.locator("#media-mode").is_visible()
        # ...dana's tone among them (its level drives the speaking ring), played from Janus's feed
        alice.wait_for_function("id => window.officeClient.state.speaking.has(id)", arg=dana_id, timeout=10000)
        assert alice.locator(f'#voice-audio audio[data-via="sfu"][data-user="{dana_id}"]').count() == 1
        # ...and when the transcriber listens through the SFU too (`meeting.audio_via_sfu`, sent by the
        # transcription side where it does), the page keeps no upload of its own
        if alice.evaluate("window.officeClient.meeting.audioViaSfu"):
            alice.wait_for_function("window.officeClient.meeting.pc === null", timeout=5000)
            assert "through the SFU" in alice.inner_text("#meeting-mic-state")
        ARTIFACTS.mkdir(exist_ok=True)
        alice.screenshot(path=str(ARTIFACTS / "sfu-alice-through-the-sfu.png"))

        # and dana hears both pages' (fake) microphones from the SFU
        feeds = {int(p.display): p.feed_id for p in _sfu(janus).participants(grant["room"])
                 if p.publisher and p.feed_id != dana_feed}
        assert set(feeds) == {alice_id, bob_id}
        heard = dana.hear([feeds[alice_id], feeds[bob_id]])
        for frames, peak in heard:
            assert frames == 200 and peak > 1000, heard

        # when bob walks out into the open space
        _arrive(bob, 13, 13)  # near the spawn point
        # then he is back on the mesh, and alice no longer plays his feed (the room stays on the SFU)
        bob.wait_for_function("() => window.officeClient.voice.sfu === null", timeout=15000)
        hears_bob = "id => [...(window.officeClient.voice.sfu?.feeds.values() || [])].some((h) => h.user === id)"
        try:
            alice.wait_for_function(f"id => !({hears_bob})(id)", arg=bob_id, timeout=15000)
        except Exception:
            feeds_now = alice.evaluate("[...window.officeClient.voice.sfu.feeds].map(([f, h]) => [f, h.user])")
            in_janus = [(p.feed_id, p.display) for p in _sfu(janus).participants(grant["room"])]
            pytest.fail(f"alice still plays bob: her feeds {feeds_now}, Janus has {in_janus}")
        assert bob.locator('#voice-audio audio[data-via="sfu"]').count() == 0
        # ...and talks to carol next to him over a browser-to-browser call again
        carol = sign_in_sfu("carol", PASSWORD)
        carol.click("#audio-join")
        try:
            bob.wait_for_function(connected, arg=people["carol"].id, timeout=20000)
        except Exception:
            seen = bob.evaluate("""id => { const v = window.officeClient.voice;
              return {me: v.me(), carol: v.where(id), inRange: v.inRange(id), sfu: !!v.sfu,
                      peers: [...v.peers].map(([u, p]) => [u, p.pc.connectionState])}; }""", people["carol"].id)
            pytest.fail(f"bob and carol are not connected: {seen}")
        bob.wait_for_function("document.querySelector('#media-mode').textContent === 'Mesh (2 people)'",
                              timeout=5000)
        bob.screenshot(path=str(ARTIFACTS / "sfu-bob-back-on-the-mesh.png"))
    finally:
        if dana is not None:
            dana.close()
        dana_socket.close()
    assert time.monotonic() - started < 90


def _off_the_browser_thread(write) -> None:
    """Playwright keeps an event loop on the test's thread, where the services' on-commit announcements
    (async_to_sync) cannot run: writes go through another thread."""
    from django.db import connections

    failed: list[BaseException] = []

    def run():
        try:
            write()
        except BaseException as exc:
            failed.append(exc)
        finally:
            connections.close_all()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if failed:
        raise failed[0]


def _sfu(janus):
    from rooms.sfu import JanusSfu

    return JanusSfu(url=janus.url, admin_url=janus.admin_url, admin_secret=janus.admin_secret)


SFU_VIDEO = "[...(window.officeClient.voice.sfu?.videoFeeds.values() || [])].map((v) => [v.user, v.source])"


def test_in_a_room_on_the_sfu_camera_and_screen_go_through_the_sfu(
        office, people, janus, sfu_office, sign_in_sfu, tone_wav):
    alice_id, bob_id, dana_id = people["alice"].id, people["bob"].id, people["dana"].id
    _forum_with_danas_desk(office, people)
    # given alice and bob in Forum, a mesh of two, bob's camera on (alice sees it over their call)
    alice, bob = _alice_and_bob_in_forum(sign_in_sfu)
    alice.wait_for_function(CALL_CONNECTED, arg=bob_id, timeout=20000)
    bob.click("#camera-toggle")
    wait_for_async(alice, PLAYING, f"{tile(bob_id)} video", timeout_ms=15000)
    # when dana comes in (an aiortc client at her desk): the room goes to the SFU
    dana_socket = OfficeSocketThread(sfu_office, office["map"].id, people["dana"])
    dana = None
    try:
        grant = dana_socket.wait_for("sfu.join", timeout=10)["sfu"]
        dana = AiortcParticipant(grant, tone_wav)
        dana.publish(display=str(dana_id))
        for page in (alice, bob):
            page.wait_for_function("() => window.officeClient.voice.sfu?.feeds.size === 2", timeout=20000)
        # then bob's camera moved with him: alice plays it from the SFU now
        alice.wait_for_function(f"() => JSON.stringify({SFU_VIDEO}) === '[[{bob_id},\"camera\"]]'", timeout=15000)
        wait_for_async(alice, PLAYING, f"{tile(bob_id)} video", timeout_ms=15000)
        assert not alice.evaluate(f"window.officeClient.voice.peers.has({bob_id})")
        # ...and each sees a tile per person, dana's too (no camera: her initials)
        bob.wait_for_selector(f'{tile(dana_id)}[data-video="off"]', timeout=10000)
        bob.wait_for_selector(f'{tile(alice_id)}[data-video="off"]', timeout=10000)

        # when alice turns her camera on
        alice.click("#camera-toggle")
        alice.wait_for_selector('#camera-toggle[aria-pressed="true"]')
        # then bob sees her video playing in her tile, from the SFU: a feed of its own, no call between them
        bob.wait_for_selector(f'{tile(alice_id)}[data-video="on"]', timeout=15000)
        wait_for_async(bob, PLAYING, f"{tile(alice_id)} video", timeout_ms=15000)
        assert bob.evaluate(SFU_VIDEO) == [[alice_id, "camera"]]
        assert not bob.evaluate(f"window.officeClient.voice.peers.has({alice_id})")
        # ...capped for a room of three (each of the two others downloads it)
        cap = alice.wait_for_function("""() => {
          const sender = window.officeClient.voice.sfu?.session.videoSender("camera");
          const p = sender && sender.getParameters();
          return p && p.encodings && p.encodings[0] && p.encodings[0].maxBitrate ? p.encodings[0] : null;
        }""", timeout=10000).json_value()
        policy = alice.evaluate("""async () => (await import("/static/office/video.js"))
          .videoSendPolicy({ source: "camera", peers: 2 })""")
        assert cap["maxBitrate"] == policy["maxBitrate"] == 1_200_000

        # when she mutes, bob's tile says so (the media state still goes over voice.signal)
        alice.click("#mic-toggle")
        bob.wait_for_selector(f'{tile(alice_id)}[data-muted="true"]', timeout=10000)
        alice.click("#mic-toggle")
        bob.wait_for_selector(f'{tile(alice_id)}[data-muted="false"]', timeout=10000)

        # when bob shares his screen, alice gets the presenter view with his screen playing
        bob.click("#screen-toggle")
        alice.wait_for_selector('#video-stage[data-layout="presenter"]', timeout=15000)
        screen = f'#video-main {tile(bob_id, "screen")}'
        alice.wait_for_selector(screen, timeout=10000)
        wait_for_async(alice, PLAYING, f"{screen} video", timeout_ms=15000)
        ARTIFACTS.mkdir(exist_ok=True)
        alice.screenshot(path=str(ARTIFACTS / "sfu-video-presenter-alice.png"))
        # ...and Janus has each source as a publisher of its own
        displays = {p.display for p in _sfu(janus).participants(grant["room"]) if p.publisher}
        assert {f"{alice_id}:camera", f"{bob_id}:camera", f"{bob_id}:screen", str(alice_id), str(bob_id)} <= displays

        # when alice turns her camera off, bob's tile shows her initials again and her feed is gone
        alice.click("#camera-toggle")
        bob.wait_for_selector(f'{tile(alice_id)}[data-video="off"]', timeout=15000)
        assert bob.inner_text(f"{tile(alice_id)} .vt-face") == "AA"
        displays = {p.display for p in _sfu(janus).participants(grant["room"]) if p.publisher}
        assert f"{alice_id}:camera" not in displays and f"{bob_id}:screen" in displays
        # and when bob stops sharing, alice is back to the grid
        bob.click("#screen-toggle")
        alice.wait_for_selector('#video-stage[data-layout="grid"]', timeout=15000)
        assert alice.evaluate(SFU_VIDEO) == [[bob_id, "camera"]]
    finally:
        if dana is not None:
            dana.close()
        dana_socket.close()
