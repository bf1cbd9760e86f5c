"""Consent changes are recorded with who and when, and the meeting page lists them."""

from __future__ import annotations

import pytest

from transcription import services
from transcription.models import ConsentChange, Meeting, MeetingParticipant

pytestmark = pytest.mark.django_db


def test_each_consent_change_is_recorded_once_and_shown_on_the_meeting_page(office, people, client_of):
    meeting = Meeting.objects.create(room=office["atlas"])
    for name in ("alice", "bob"):
        MeetingParticipant.objects.create(meeting=meeting, user=people[name])

    services.meeting_set_consent(user=people["bob"], meeting_id=meeting.pk, transcribe=False)
    services.meeting_set_consent(user=people["bob"], meeting_id=meeting.pk, transcribe=False)  # no change
    services.meeting_set_consent(user=people["bob"], meeting_id=meeting.pk, transcribe=True)

    changes = list(ConsentChange.objects.filter(meeting=meeting))
    assert [(c.user, c.transcribe) for c in changes] == [(people["bob"], False), (people["bob"], True)]
    assert changes[0].at <= changes[1].at

    html = client_of(people["alice"]).get(f"/meetings/{meeting.pk}/").content.decode()
    section = html[html.index('id="meeting-consent"'):html.index('id="meeting-notes"')]
    assert section.index("Bob Baker") < section.index("opted out of transcription") < section.index("agreed to be transcribed again")
    assert "alice" not in section.lower()  # she never changed hers


def test_a_meeting_without_changes_says_so(office, people, client_of):
    meeting = Meeting.objects.create(room=office["atlas"])
    MeetingParticipant.objects.create(meeting=meeting, user=people["alice"])
    html = client_of(people["alice"]).get(f"/meetings/{meeting.pk}/").content.decode()
    assert "Nobody changed their consent" in html
