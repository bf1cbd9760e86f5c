"""A meeting's transcript, notes and everything else as files people take elsewhere; the subtitle
formats parse back (with the libraries players use) to the very cues that were written."""

from __future__ import annotations

import datetime as dt
import html
import io
import json

import pytest
import srt
import webvtt

from assistant.models import ActionItem, MeetingSummary
from tests.assistant_fixtures import MONDAY, PLANNING, record_meeting
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

LINES = [*PLANNING, ("bob", "Budget < 5k & no overtime, agreed?")]  # markup characters must survive
NAMES = {"alice": "Alice Archer", "bob": "Bob Baker", "carol": "Carol Chen"}


@pytest.fixture
def meeting(office, people):
    return record_meeting(office["atlas"], people, LINES, start=MONDAY)


def download(user, url):
    r = client_for(user).get(url)
    assert r.status_code == 200, r.content
    assert r["Content-Disposition"].startswith("attachment; filename=")
    return r


def test_srt_parses_back_to_one_cue_per_turn_with_speaker_and_time(people, meeting):
    r = download(people["alice"], f"/api/meetings/{meeting.pk}/transcript.srt")
    assert r["Content-Type"].startswith("application/x-subrip")
    cues = list(srt.parse(r.content.decode()))
    assert [c.content for c in cues] == [f"{NAMES[who]}: {text}" for who, text in LINES]
    # record_meeting: turn i starts 5 s after turn i-1 and lasts 4 s
    assert [c.start for c in cues] == [dt.timedelta(seconds=5 * i) for i in range(len(LINES))]
    assert all(c.end - c.start == dt.timedelta(seconds=4) for c in cues)


def test_webvtt_names_each_speaker_as_the_cue_voice_and_parses_back(people, meeting):
    r = download(people["alice"], f"/api/meetings/{meeting.pk}/transcript.vtt")
    assert r["Content-Type"].startswith("text/vtt")
    cues = webvtt.from_buffer(io.StringIO(r.content.decode())).captions
    assert [(c.voice, html.unescape(c.text)) for c in cues] == [(NAMES[who], text) for who, text in LINES]
    assert [c.start for c in cues][:3] == ["00:00:00.000", "00:00:05.000", "00:00:10.000"]
    assert cues[0].end == "00:00:04.000"


def test_text_and_markdown_hold_every_turn_in_order(people, meeting):
    text = download(people["alice"], f"/api/meetings/{meeting.pk}/transcript.txt").content.decode()
    assert text.startswith(f"Atlas, meeting of {meeting.started_at:%Y-%m-%d %H:%M} UTC\n")
    assert "[00:00:05] Bob Baker: The beta build is ready" in text
    positions = [text.index(t) for _, t in LINES]
    assert positions == sorted(positions)
    md = download(people["alice"], f"/api/meetings/{meeting.pk}/transcript.md").content.decode()
    assert md.startswith("# Atlas") and "**Carol Chen** `00:00:20`" in md


def test_notes_markdown_and_the_json_export_hold_the_notes_and_the_shown_items(people, office, meeting):
    MeetingSummary.objects.create(meeting=meeting, kind="final", summary="Launch plan reviewed.",
                                  decisions=["Ship on December 2 if QA signs off"],
                                  open_questions=["Press kit or blog post?"], through_seq=meeting.last_seq)
    ActionItem.objects.create(room=office["atlas"], meeting=meeting, text="Fix the crash on older Android phones",
                              owner=people["bob"], due_date=dt.date(2026, 11, 25), status="approved", dedupe_key="a")
    ActionItem.objects.create(room=office["atlas"], meeting=meeting, text="Shadow ranker guess", shadow=True,
                              dedupe_key="b")
    md = download(people["alice"], f"/api/meetings/{meeting.pk}/notes.md").content.decode()
    assert "## Summary\n\nLaunch plan reviewed." in md
    assert "- Ship on December 2 if QA signs off" in md and "- Press kit or blog post?" in md
    assert "- [x] Fix the crash on older Android phones (Bob Baker, due 2026-11-25; approved)" in md
    assert "Shadow" not in md
    data = json.loads(download(people["alice"], f"/api/meetings/{meeting.pk}/export.json").content)
    assert data["meeting"]["id"] == meeting.pk and data["meeting"]["room_name"] == "Atlas"
    assert [s["text"] for s in data["transcript"]] == [t for _, t in LINES]
    assert data["notes"]["final"]["decisions"] == ["Ship on December 2 if QA signs off"]
    assert [i["text"] for i in data["action_items"]] == ["Fix the crash on older Android phones"]
    assert "Bob Baker: The beta build is ready" in data["transcript_text"]


def test_exports_follow_room_access_and_name_bad_formats(people, office):
    vault_meeting = record_meeting(office["vault"], people, [("alice", "The deal closes in March.")])
    for url in (f"/api/meetings/{vault_meeting.pk}/transcript.srt", f"/api/meetings/{vault_meeting.pk}/notes.md",
                f"/api/meetings/{vault_meeting.pk}/export.json"):
        assert client_for(people["bob"]).get(url).status_code == 404
    r = client_for(people["alice"]).get(f"/api/meetings/{vault_meeting.pk}/transcript.docx")
    assert r.status_code == 404 and "txt, md, srt, vtt" in r.json()["error"]["message"]


def test_the_meeting_page_links_every_export(people, meeting):
    html_page = client_for(people["alice"]).get(f"/meetings/{meeting.pk}/").content.decode()
    for suffix in ("transcript.txt", "transcript.md", "transcript.srt", "transcript.vtt", "notes.md", "export.json"):
        assert f'href="/api/meetings/{meeting.pk}/{suffix}"' in html_page
