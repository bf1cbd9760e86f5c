"""Steps the voice and video browser tests share."""

from __future__ import annotations

# A page's direct call with another person (static/office/voice.js) is up.
CALL_CONNECTED = "id => window.officeClient.voice.peers.get(id)?.pc.connectionState === 'connected'"


def join_audio_and_connect(alice, bob, alice_id: int, bob_id: int, *, both_sides: bool = True) -> None:
    """Both pages join audio; wait until alice's call with bob is up (and bob's with alice)."""
    alice.click("#audio-join")
    bob.click("#audio-join")
    alice.wait_for_function(CALL_CONNECTED, arg=bob_id, timeout=15000)
    if both_sides:
        bob.wait_for_function(CALL_CONNECTED, arg=alice_id, timeout=15000)
