"""Agendas of booked meetings (docs/adr/0021): drafted OFFICE_AGENDA_LEAD_MINUTES before a booking from
the room's open action items, the last meeting's open questions and the documents added since, posted
to the room's chat once, and edited by the participants with a version check (409 when stale).

Personas (tests/conftest.py): alice (member of the private Vault), bob and carol (members), dana (admin)."""

from __future__ import annotations

import datetime as dt

import pytest
from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.test import TestCase
from django.utils import timezone

from assistant import services as assistant_services
from assistant.models import ActionItem, MeetingSummary
from automation import services as work
from automation.models import Task
from iot import services
from iot.models import Agenda
from rooms import services as room_services
from rooms.models import ChatMessage
from tests.assistant_fixtures import record_meeting
from tests.channel_events import drain, listen
from tests.conftest import client_for
from transcription import services as meetings

pytestmark = pytest.mark.django_db


# --- helpers ---

def book(user, room, *, in_minutes: int = 10, minutes: int = 30, title: str = "Launch sync"):
    start = timezone.now().replace(microsecond=0) + dt.timedelta(minutes=in_minutes)
    return services.booking_create(user=user, room=room, title=title, start=start,
                                   end=start + dt.timedelta(minutes=minutes))


def room_messages(room) -> list[ChatMessage]:
    return list(ChatMessage.objects.filter(thread__room=room, author__username="office").order_by("seq"))


def item(room, meeting, text: str, **fields) -> ActionItem:
    return ActionItem.objects.create(room=room, meeting=meeting, text=text, confidence=0.8, dedupe_key=text,
                                     model_id="rules", prompt_version="rules.v1", **fields)


def put(user, agenda_id: int, body: dict):
    return client_for(user).put(f"/api/agendas/{agenda_id}/", body, content_type="application/json")


@pytest.fixture
def atlas_history(office, people):
    """Atlas's past: an older meeting and the last one (both ended, with final notes), action items in
    every state, and documents added before and after the last meeting."""
    atlas = office["atlas"]
    older = record_meeting(atlas, people, [("alice", "We talked about the old roadmap.")])
    meetings.meeting_end(meeting=older)
    MeetingSummary.objects.create(meeting=older, kind="final", summary="Old roadmap.", through_seq=1,
                                  open_questions=["Who owns the old roadmap?"])
    last = record_meeting(atlas, people, [("alice", "Bob, fix the crash by Wednesday."), ("bob", "Sure.")])
    items = {
        "proposed": item(atlas, last, "Write the release notes"),
        "approved": item(atlas, last, "Fix the crash on older phones", owner=people["bob"]),
        "done": item(atlas, last, "Book the demo room"),
        "rejected": item(atlas, last, "Email the board the salaries"),
        "shadow": item(atlas, last, "Shadow proposal", shadow=True),
        "elsewhere": item(office["open"], None, "Water the plants"),
    }
    for key in ("approved", "done"):
        assistant_services.action_item_decide(item=items[key], user=people["alice"], action="approve")
    assistant_services.action_item_decide(item=items["rejected"], user=people["alice"], action="reject")
    task = Task.objects.get(source_kind="action_item", source_id=str(items["done"].pk))
    work.task_update(task, actor=people["alice"], status="done")
    before, _ = assistant_services.document_upload(user=people["alice"], room=atlas, filename="old-plan.md",
                                                   content=b"# Old plan")
    meetings.meeting_end(meeting=last)
    MeetingSummary.objects.create(meeting=last, kind="final", summary="Crash and release.", through_seq=2,
                                  open_questions=["Do we still need the press kit?"])
    after, _ = assistant_services.document_upload(user=people["carol"], room=atlas, filename="release-checklist.md",
                                                  content=b"# Checklist", title="Release checklist")
    return {"items": items, "last": last, "document_before": before, "document_after": after}


# --- the draft ---

def test_the_draft_has_open_items_the_last_meetings_questions_and_documents_since(office, people, atlas_history):
    # given Atlas's history and a meeting booked there in 10 minutes
    booking = book(people["alice"], office["atlas"])
    # when the tick runs
    assert services.agendas_post_due() == 1
    # then the agenda lists the open items (proposed, approved with an open task), oldest first
    agenda = Agenda.objects.get(booking=booking)
    items = atlas_history["items"]
    by_kind = lambda kind: [(i["text"], i["ref"]) for i in agenda.items if i["kind"] == kind]  # noqa: E731
    assert by_kind("action_item") == [("Write the release notes (proposed)", items["proposed"].pk),
                                      ("Fix the crash on older phones (Bob Baker)", items["approved"].pk)]
    # and not what is done, rejected, a shadow's or another room's
    # and the open questions of the last meeting only, linked to it
    last = atlas_history["last"]
    assert by_kind("question") == [("Do we still need the press kit?", last.pk)]
    assert {i["url"] for i in agenda.items if i["kind"] == "question"} == {f"/meetings/{last.pk}/"}
    # and the documents added since the last meeting ended
    after = atlas_history["document_after"]
    assert by_kind("document") == [("Release checklist", after.pk)]
    assert [i["url"] for i in agenda.items if i["kind"] == "document"] == [f"/documents/{after.pk}/"]
    assert agenda.version == 1 and agenda.edited_by is None and agenda.room_id == office["atlas"].pk


def test_a_room_with_no_history_gets_an_empty_draft_and_says_so(office, people):
    book(people["bob"], office["atlas"], title="First meeting")
    services.agendas_post_due()
    (message,) = room_messages(office["atlas"])
    assert "“First meeting”" in message.body and "Nothing carried over" in message.body
    assert Agenda.objects.get().items == []


# --- posted once, at the lead time ---

def test_the_agenda_is_posted_once_even_if_the_tick_runs_twice(office, people, atlas_history):
    # given a booking in 10 minutes and people listening in Atlas
    booking = book(people["alice"], office["atlas"])
    channel = listen(office["atlas"].pk)
    # when the tick runs, then runs again (a second beat, a retried task)
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.agendas_post_due() == 1
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.agendas_post_due() == 0
        agenda, created = services.agenda_post_for_booking(booking_id=booking.pk)
    # then one agenda and one chat message as the office, which lists the items and names the booking
    assert not created and Agenda.objects.count() == 1
    (message,) = room_messages(office["atlas"])
    assert message.client_id == f"agenda:booking:{booking.pk}" and agenda.chat_message_id == message.pk
    assert message.body.startswith("Agenda for “Launch sync” at ")
    assert "1. Write the release notes (proposed)" in message.body
    assert "Open question: Do we still need the press kit?" in message.body
    assert agenda.posted_at is not None
    # and the room heard of it once, with what was stored
    events = [e for e in drain(channel) if e["type"] == "agenda.changed"]
    assert len(events) == 1 and events[0]["agenda"]["id"] == agenda.pk and events[0]["agenda"]["version"] == 1
    assert events[0]["agenda"]["items"] == agenda.items


def test_nothing_is_announced_before_the_agenda_commits(office, people):
    book(people["alice"], office["atlas"])
    channel = listen(office["atlas"].pk)
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        services.agendas_post_due()
    assert drain(channel) == [] and len(callbacks) >= 2  # the chat message and agenda.changed wait for the commit
    after = listen(office["atlas"].pk)  # (a drained channel stays bound to the drain's event loop)
    for callback in callbacks:
        callback()
    assert {e["type"] for e in drain(after)} >= {"agenda.changed"}


def test_the_lead_time_is_a_setting(office, people, settings):
    # given meetings booked in 20 minutes (Atlas) and in 40 minutes (Open space)
    soon = book(people["alice"], office["atlas"], in_minutes=20)
    later = book(people["alice"], office["open"], in_minutes=40)
    # when the tick runs with the default lead of 15 minutes, nothing is due yet
    assert settings.OFFICE_AGENDA_LEAD_MINUTES == 15
    assert services.agendas_post_due() == 0
    # then with a lead of 30 minutes the first is posted, and the second only once 40 minutes away is within it
    settings.OFFICE_AGENDA_LEAD_MINUTES = 30
    assert services.agendas_post_due() == 1
    assert list(Agenda.objects.values_list("booking_id", flat=True)) == [soon.pk]
    assert services.agendas_post_due(now=timezone.now() + dt.timedelta(minutes=11)) == 1
    assert Agenda.objects.filter(booking=later).exists()


def test_a_meeting_already_going_on_still_gets_its_agenda_and_a_past_one_does_not(office, people):
    now = timezone.now()
    services.booking_create(user=people["alice"], room=office["atlas"], title="Running", start=now - dt.timedelta(minutes=5),
                            end=now + dt.timedelta(minutes=25))
    services.booking_create(user=people["alice"], room=office["open"], title="Over", start=now - dt.timedelta(hours=2),
                            end=now - dt.timedelta(hours=1))
    assert services.agendas_post_due() == 1
    assert list(Agenda.objects.values_list("title", flat=True)) == ["Running"]


# --- reading and editing ---

def test_the_room_shows_its_upcoming_agenda_to_its_readers(office, people, client_of):
    # given no agenda yet in Atlas
    atlas = office["atlas"].pk
    assert client_of(people["bob"]).get(f"/api/rooms/{atlas}/agenda/").json() == {"room": atlas, "agenda": None}
    # when the booking's agenda is drafted
    booking = book(people["alice"], office["atlas"])
    services.agendas_post_due()
    # then every reader of the room gets it, with whether they may edit it
    body = client_of(people["bob"]).get(f"/api/rooms/{atlas}/agenda/").json()
    assert body["agenda"]["booking"] == booking.pk and body["agenda"]["title"] == "Launch sync"
    assert body["agenda"]["organizer"]["name"] == "Alice Archer" and body["agenda"]["can_edit"] is True
    detail = client_of(people["carol"]).get(f"/api/agendas/{body['agenda']['id']}/")
    assert detail.status_code == 200 and detail.json() == {**body["agenda"]}


def test_participants_edit_with_the_version_and_a_stale_edit_is_a_409(office, people, atlas_history):
    # given the drafted agenda (version 1), loaded by alice and by bob
    book(people["alice"], office["atlas"])
    services.agendas_post_due()
    agenda = Agenda.objects.get()
    loaded = client_for(people["alice"]).get(f"/api/agendas/{agenda.pk}/").json()
    assert loaded["version"] == 1
    # when alice drops the first item, moves the question to the top and adds one of her own
    items = loaded["items"]
    edited = [items[2], items[1], {"kind": "custom", "text": "  Demo   the new build "}]
    saved = put(people["alice"], agenda.pk, {"version": 1, "items": edited})
    # then it is saved as version 2, by her
    assert saved.status_code == 200, saved.content
    assert saved.json()["version"] == 2 and saved.json()["edited_by"]["name"] == "Alice Archer"
    assert [i["text"] for i in saved.json()["items"]] == [items[2]["text"], items[1]["text"], "Demo the new build"]
    assert saved.json()["items"][2] == {"kind": "custom", "text": "Demo the new build", "ref": None, "url": ""}
    # and bob, saving what he loaded at version 1, is refused with a 409 and changes nothing
    stale = put(people["bob"], agenda.pk, {"version": 1, "items": [{"kind": "custom", "text": "Mine"}]})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    assert "someone else changed" in stale.json()["error"]["message"]
    agenda.refresh_from_db()
    assert agenda.version == 2 and agenda.edited_by == people["alice"] and len(agenda.items) == 3
    # and with the current version he may
    again = put(people["bob"], agenda.pk, {"version": 2, "items": [{"kind": "custom", "text": "Mine"}]})
    assert again.status_code == 200 and again.json()["version"] == 3


@pytest.mark.parametrize("bad_item", [
    {"kind": "custom", "text": "Click", "url": "javascript:alert(1)"},
    {"kind": "custom", "text": "Elsewhere", "url": "//evil.example/x"},
    {"kind": "poem", "text": "Roses"},
    {"kind": "custom", "text": "   "},
    {"kind": "custom", "text": "x" * 501},
    {"kind": "document", "text": "Doc", "ref": 0},
])
def test_bad_items_are_refused(office, people, bad_item):
    book(people["alice"], office["atlas"])
    services.agendas_post_due()
    agenda = Agenda.objects.get()
    response = put(people["alice"], agenda.pk, {"version": 1, "items": [bad_item]})
    assert response.status_code == 400, response.content
    agenda.refresh_from_db()
    assert agenda.version == 1


def test_a_private_rooms_agenda_is_its_members_only(office, people, client_of):
    # given a meeting booked by alice in the Vault (alice is its only member)
    book(people["alice"], office["vault"], title="Deal review")
    services.agendas_post_due()
    agenda = Agenda.objects.get()
    vault = office["vault"].pk
    # then bob and carol cannot read, find or edit it: the same 404 as for a missing one
    for name in ("bob", "carol"):
        client = client_of(people[name])
        assert client.get(f"/api/agendas/{agenda.pk}/").status_code == 404
        assert client.get(f"/api/rooms/{vault}/agenda/").status_code == 404
        assert put(people[name], agenda.pk, {"version": 1, "items": []}).status_code == 404
        assert client.get("/api/agendas/999999/").status_code == 404
    # and alice and dana (an admin) can
    assert client_of(people["alice"]).get(f"/api/rooms/{vault}/agenda/").json()["agenda"]["id"] == agenda.pk
    assert put(people["dana"], agenda.pk, {"version": 1, "items": []}).json()["version"] == 2


def test_an_edit_is_announced_to_the_room_after_it_commits(office, people):
    # given the drafted agenda and someone listening in Atlas
    book(people["alice"], office["atlas"])
    services.agendas_post_due()
    agenda = Agenda.objects.get()
    channel = listen(office["atlas"].pk)
    # when bob saves an edit, nothing is sent until the write commits
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        saved = services.agenda_update(user=people["bob"], agenda_id=agenda.pk, version=1,
                                       items=[{"kind": "custom", "text": "Budget"}])
    assert saved.version == 2 and drain(channel) == []
    after = listen(office["atlas"].pk)
    for callback in callbacks:
        callback()
    # then the room hears the agenda as stored
    (event,) = drain(after)
    assert event["type"] == "agenda.changed"
    assert event["agenda"]["version"] == 2 and event["agenda"]["edited_by"]["name"] == "Bob Baker"
    assert event["agenda"]["items"] == [{"kind": "custom", "text": "Budget", "ref": None, "url": ""}]
    from tests.test_protocol_doc import assert_frame_matches

    assert_frame_matches(event, "office")


def test_a_refused_edit_announces_nothing(office, people):
    book(people["alice"], office["atlas"])
    services.agendas_post_due()
    agenda = Agenda.objects.get()
    channel = listen(office["atlas"].pk)
    with TestCase.captureOnCommitCallbacks(execute=True):
        with pytest.raises(ValidationError, match="someone else changed"):
            services.agenda_update(user=people["bob"], agenda_id=agenda.pk, version=7, items=[])
    assert drain(channel) == []


@pytest.mark.django_db(transaction=True)
async def test_people_in_the_room_see_the_agenda_change_live(office, people, sockets):
    # given bob standing in Atlas (his desk is there) and the drafted agenda
    @database_sync_to_async
    def setup():
        room_services.desk_create(office_map=office["map"], label="A1", x=4, y=3, owner=people["bob"])
        book(people["alice"], office["atlas"])
        services.agendas_post_due()
        return Agenda.objects.get()

    agenda = await setup()
    bob = await sockets(people["bob"], office["map"].id)
    await bob.wait_for("meeting.state")  # he is in Atlas: its room group
    # when alice saves an edit
    await database_sync_to_async(services.agenda_update)(
        user=people["alice"], agenda_id=agenda.pk, version=1, items=[{"kind": "custom", "text": "Roadmap"}])
    # then bob's socket gets it, as catalogued
    frame = await bob.wait_for("agenda.changed", timeout=5)
    assert frame["agenda"]["id"] == agenda.pk and frame["agenda"]["version"] == 2
    assert frame["agenda"]["items"][0]["text"] == "Roadmap"
    from tests.test_protocol_doc import assert_frame_matches

    assert_frame_matches(frame, "office")
