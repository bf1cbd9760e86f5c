"""A member speaks in a meeting room through a (fake) microphone in a real Chromium: the browser
attaches its track to the server peer, the transcription worker transcribes it, and the sidebar
shows the live caption with the speaker's name."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.voice_steps import join_audio_and_connect

pytestmark = pytest.mark.django_db(transaction=True)


def test_speech_in_a_meeting_room_shows_up_as_a_caption_with_the_speakers_name(
    office, people, live_office, transcription_worker, sign_in_with_microphone
):
    alice = sign_in_with_microphone("alice", PASSWORD)
    # no meeting in the open space, and no microphone until asked for
    assert alice.locator("#meeting-panel").is_hidden()
    assert alice.locator("#audio-join").is_visible()

    # when alice walks into Atlas (the assistant's room, door at 6,6)
    alice.evaluate("window.officeClient.moveTo(6, 4)")
    # then the meeting panel says, in red, that everything is transcribed
    alice.wait_for_selector("#meeting-panel:not([hidden])", timeout=15000)
    indicator = alice.locator("#recording-indicator")
    indicator.wait_for(state="visible")
    assert "Transcribing" in indicator.inner_text()
    alice.wait_for_selector(f'#meeting-participants li[data-user-id="{people["alice"].id}"][data-transcribed="true"]')
    assert alice.locator("#consent-toggle").is_checked()

    # when she joins audio (her microphone plays the sentence in a loop)
    alice.click("#audio-join")
    alice.wait_for_selector("#mic-toggle", state="visible")
    assert alice.locator("#mic-select option").count() >= 1
    alice.wait_for_function("window.officeClient.meeting.attachState === 'on'", timeout=15000)

    # then her words come back as a final caption with her name
    final = alice.locator("#captions .caption.final").first
    final.wait_for(timeout=40000)
    assert final.locator(".caption-speaker").inner_text() == "Alice Archer"
    assert final.get_attribute("data-speaker") == str(people["alice"].id)
    assert final.get_attribute("data-seq") == "1"
    assert re.search("quarterly", final.locator(".caption-text").inner_text(), re.IGNORECASE)
    assert indicator.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "meeting-alice.png"))

    # and the meeting page lists the segment, found by search with the match highlighted
    meeting_id = alice.get_attribute("#meeting-panel", "data-meeting")
    page = alice.context.new_page()
    page.goto(f"{live_office}/meetings/{meeting_id}/")
    page.wait_for_selector('#segments .segment[data-seq="1"]')
    page.fill("#transcript-search", "quarterly")
    page.wait_for_selector("#segments .segment mark")
    assert page.locator("#segments mark").first.inner_text().lower() == "quarterly"
    page.screenshot(path=str(ARTIFACTS / "meeting-transcript.png"))

    # when she opts out, her microphone is detached
    alice.click("#consent-toggle")
    alice.wait_for_selector(f'#meeting-participants li[data-user-id="{people["alice"].id}"][data-transcribed="false"]')
    assert alice.evaluate("window.officeClient.meeting.pc") is None


def test_people_near_each_other_hear_each_other_and_the_speaker_gets_a_ring(office, people, sign_in_with_microphone):
    alice_id, bob_id = people["alice"].id, people["bob"].id
    # given alice and bob at the spawn point in the open space, both with audio joined
    alice = sign_in_with_microphone("alice", PASSWORD)
    bob = sign_in_with_microphone("bob", PASSWORD)
    # then their browsers connect directly (alice, the lower id, offers) and play each other's voice
    join_audio_and_connect(alice, bob, alice_id, bob_id)
    bob.wait_for_selector(f'#voice-audio audio[data-user="{alice_id}"]', state="attached")
    assert bob.evaluate(f"document.querySelector('#voice-audio audio[data-user=\"{alice_id}\"]').volume") == 1
    # and bob sees alice speaking (her fake microphone plays speech in a loop)
    bob.wait_for_function("id => window.officeClient.state.speaking.has(id)", arg=alice_id, timeout=15000)

    # when alice walks into Atlas (a walled room), the connection is closed on both sides
    alice.evaluate("window.officeClient.moveTo(6, 4)")
    gone = "id => !window.officeClient.voice.peers.has(id)"
    alice.wait_for_function(gone, arg=bob_id, timeout=15000)
    bob.wait_for_function(gone, arg=alice_id, timeout=15000)
    assert bob.locator(f'#voice-audio audio[data-user="{alice_id}"]').count() == 0
