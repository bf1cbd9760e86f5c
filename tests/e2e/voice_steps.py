"""Steps the voice and video browser tests share."""

from __future__ import annotations

# A page's direct call with another person (static/office/voice.js) is up.
CALL_CONNECTED = "id => window.officeClient.voice.peers.get(id)?.pc.connectionState === 'connected'"

# A video element is showing frames (poll it with tests.page_polling.wait_for_async: it is async).
PLAYING = """async (selector) => {
  const video = document.querySelector(selector);
  if (!video || !video.srcObject || video.videoWidth === 0) return false;
  const t0 = video.currentTime;
  await new Promise((resolve) => setTimeout(resolve, 400));
  return video.currentTime > t0;
}"""


def tile(user_id: int, kind: str = "camera") -> str:
    return f'.video-tile[data-kind="{kind}"][data-user="{user_id}"]'


def join_audio_and_connect(alice, bob, alice_id: int, bob_id: int, *, both_sides: bool = True) -> None:
    """Both pages join audio; wait until alice's call with bob is up (and bob's with alice)."""
    alice.click("#audio-join")
    bob.click("#audio-join")
    alice.wait_for_function(CALL_CONNECTED, arg=bob_id, timeout=15000)
    if both_sides:
        bob.wait_for_function(CALL_CONNECTED, arg=alice_id, timeout=15000)
