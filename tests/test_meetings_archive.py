"""The meetings archive (/meetings/) and its search over transcripts, notes and room chat: what a
person sees, the filters, the highlighted snippets, and that a private room's words stay inside it."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant import indexing
from assistant.models import ActionItem, MeetingSummary
from rooms import services as room_services
from tests.assistant_fixtures import MONDAY, PLANNING, record_meeting
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _set_times(meeting, start, *, minutes: int) -> None:
    meeting.started_at, meeting.ended_at = start, start + dt.timedelta(minutes=minutes)
    meeting.save(update_fields=["started_at", "ended_at"])


@pytest.fixture
def meetings(office, people):
    planning = record_meeting(office["atlas"], people, PLANNING, start=MONDAY)
    _set_times(planning, MONDAY, minutes=42)
    MeetingSummary.objects.create(meeting=planning, kind="final", summary="Launch plan for the mobile app reviewed.",
                                  decisions=["Ship on December 2 if QA signs off"], through_seq=planning.last_seq)
    ActionItem.objects.create(room=office["atlas"], meeting=planning, text="Fix the crash", status="approved",
                              dedupe_key="a")
    ActionItem.objects.create(room=office["atlas"], meeting=planning, text="Write notes", dedupe_key="b")
    vault = record_meeting(office["vault"], people, [("alice", "The Northwind acquisition closes in March.")],
                           start=MONDAY + dt.timedelta(days=1))
    _set_times(vault, MONDAY + dt.timedelta(days=1), minutes=5)
    risky = record_meeting(office["open"], people, [("carol", "Use <script>alert(1)</script> & the crash log.")],
                           start=MONDAY + dt.timedelta(days=2))
    _set_times(risky, MONDAY + dt.timedelta(days=2), minutes=70)
    for meeting in (planning, vault, risky):
        indexing.index_segments(list(meeting.segments.values_list("pk", flat=True)))
    message, _ = room_services.chat_message_send(user=people["bob"], thread_id=office["atlas"].chat_thread.pk,
                                                 body="The crash report for Android is in the tracker.")
    indexing.index_chat_messages([message.pk])
    return {"planning": planning, "vault": vault, "risky": risky}


def page(user, **params):
    r = client_for(user).get("/meetings/", params)
    return r, r.content.decode()


def test_the_archive_lists_readable_meetings_newest_first_with_people_notes_and_items(people, meetings):
    r, html = page(people["bob"])
    assert r.status_code == 200
    rows = html[html.index('id="meeting-table"'):]
    assert f'data-meeting-id="{meetings["risky"].pk}"' in rows and f'data-meeting-id="{meetings["planning"].pk}"' in rows
    assert f'data-meeting-id="{meetings["vault"].pk}"' not in rows  # private: bob is not a member
    assert rows.index(f'data-meeting-id="{meetings["risky"].pk}"') < rows.index(f'data-meeting-id="{meetings["planning"].pk}"')
    planning_row = rows[rows.index(f'data-meeting-id="{meetings["planning"].pk}"'):]
    planning_row = planning_row[:planning_row.index("</tr>")]
    assert "Alice Archer, Bob Baker, Carol Chen" in planning_row and "42 min" in planning_row
    assert "Launch plan for the mobile app reviewed." in planning_row and "1 approved, 1 to decide" in planning_row
    assert "1 h 10 min" in rows
    _, alice_html = page(people["alice"])
    assert f'data-meeting-id="{meetings["vault"].pk}"' in alice_html


def test_filters_by_room_person_and_dates(people, office, meetings):
    _, html = page(people["alice"], room=office["vault"].pk)
    assert f'data-meeting-id="{meetings["vault"].pk}"' in html and f'data-meeting-id="{meetings["planning"].pk}"' not in html
    _, html = page(people["alice"], person=people["bob"].pk)
    assert f'data-meeting-id="{meetings["planning"].pk}"' in html and f'data-meeting-id="{meetings["risky"].pk}"' not in html
    day = (MONDAY + dt.timedelta(days=2)).date().isoformat()
    _, html = page(people["alice"], since=day, until=day)
    assert "1 meeting<" in html and f'data-meeting-id="{meetings["risky"].pk}"' in html


def test_bad_filters_are_named_not_ignored(people, meetings):
    r, html = page(people["bob"], since="yesterday")
    assert r.status_code == 400 and "since:" in html and "Date has wrong format" in html
    r, html = page(people["bob"], since="2026-11-25", until="2026-11-24")
    assert r.status_code == 400 and "must not be before since" in html


def test_search_highlights_the_words_and_links_the_exact_segment(people, meetings):
    r, html = page(people["bob"], q="Android crash")
    assert r.status_code == 200
    hits = html[html.index('id="hits-transcript"'):]
    seq = next(i for i, (_, text) in enumerate(PLANNING, start=1) if "older Android phones" in text)
    assert f'href="/meetings/{meetings["planning"].pk}/#seg-{seq}"' in hits
    assert "<mark>crash</mark>" in hits and "<mark>Android</mark>" in hits
    # and the room chat and the notes are searched too
    assert 'id="hits-chat"' in html and "crash report for <mark>Android</mark>" in html.replace("<mark>crash</mark> report", "crash report")


def test_search_text_is_escaped_around_the_marks(people, meetings):
    _, html = page(people["bob"], q="crash log")
    hits = html[html.index('id="hits-transcript"'):]
    # PostgreSQL's headline drops what looks like a tag; the rest is escaped, only our marks are HTML
    assert "alert(1)  &amp; the <mark>crash</mark> <mark>log</mark>" in hits
    assert "<script" not in hits


def test_a_private_rooms_words_are_found_only_by_its_members(people, meetings):
    r = client_for(people["bob"]).get("/api/meetings/search/", {"q": "Northwind acquisition"})
    assert r.status_code == 200 and r.json()["transcript"] == [] and "closes in March" not in r.content.decode()
    r = client_for(people["alice"]).get("/api/meetings/search/", {"q": "Northwind acquisition"})
    [hit] = [h for h in r.json()["transcript"] if h["meeting"] == meetings["vault"].pk]
    assert "<mark>Northwind</mark>" in hit["snippet"] and "words" in hit["matched"]


def test_meaning_finds_a_turn_that_shares_no_word_with_the_query(people, meetings):
    r = client_for(people["bob"]).get("/api/meetings/search/", {"q": "smartphone application bug repair"})
    assert r.status_code == 200
    top = r.json()["transcript"][:3]
    assert any("Android" in h["snippet"] or "crash" in h["snippet"] for h in top), top
    assert all(h["matched"] == ["meaning"] for h in top)


def test_search_filters_by_person_in_transcripts_and_chat(people, meetings):
    r = client_for(people["alice"]).get("/api/meetings/search/", {"q": "crash", "person": people["bob"].pk})
    assert r.status_code == 200, r.content
    assert {h["speaker"] for h in r.json()["transcript"]} <= {"Bob Baker"}
    assert [h["speaker"] for h in r.json()["chat"]] == ["Bob Baker"]
    r = client_for(people["alice"]).get("/api/meetings/search/", {"q": "crash", "person": people["carol"].pk})
    assert r.json()["chat"] == [] and {h["speaker"] for h in r.json()["transcript"]} == {"Carol Chen"}


def test_notes_are_searched_with_their_decisions(people, meetings):
    r = client_for(people["carol"]).get("/api/meetings/search/", {"q": "December"})
    [hit] = r.json()["notes"]
    assert hit["meeting"] == meetings["planning"].pk and hit["url"].endswith("#meeting-notes")


def test_the_api_needs_a_query_and_valid_filters(people, meetings):
    client = client_for(people["bob"])
    assert client.get("/api/meetings/search/").status_code == 400
    r = client.get("/api/meetings/search/", {"q": "crash", "room": "atlas"})
    assert r.status_code == 400 and "room" in r.json()["error"]["detail"]
    from django.test import Client

    assert Client().get("/api/meetings/search/", {"q": "crash"}).status_code in (401, 403)
