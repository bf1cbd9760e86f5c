"""Retention, export and erasure (issue: identity and governance). Each goes through its public entry
point (the daily sweep's function, the API) and checks what is left in every stage's tables, in the
knowledge index, and what the assistant answers afterwards."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from django.test import override_settings
from django.utils import timezone

from assistant import indexing, qa
from assistant.models import ActionItem, ActionItemDecision, Document, KnowledgeChunk, ModelCall
from assistant.testing import by_purpose
from automation.models import AuditEntry
from automation.services import task_create
from office.redis_client import redis_client
from rooms import personal_data, selectors
from rooms import services as room_services
from rooms.models import ChatMessage
from tests.assistant_fixtures import PLANNING, assistant_state_reset, install, record_meeting  # noqa: F401
from tests.conftest import PASSWORD, client_for
from transcription.audio_bus import STREAMS_KEY, stream_key
from transcription.models import ConsentChange, MeetingParticipant, TranscriptSegment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("assistant_state_reset")]

NOW = timezone.now()
CRASH_QUESTION = "Who fixes the crash on older Android phones, and by when?"


def answer_when_the_crash_is_in_the_sources(endpoint, body):
    """The model: it cites the source that mentions the crash fix, if it was given one."""
    sources = body["messages"][-1]["content"]
    line = next((line for line in sources.splitlines() if "older Android phones by Wednesday" in line), None)
    if line is None:
        return {"answer": "Not in the sources.", "citations": [], "found": False, "confidence": 0.9}
    n = int(line[1:line.index("]")])
    return {"answer": f"Bob fixes it by Wednesday [{n}].", "citations": [n], "found": True, "confidence": 0.9}


def old_meeting(office, people, *, days_ago: int):
    meeting = record_meeting(office["atlas"], people, PLANNING, start=NOW - dt.timedelta(days=days_ago))
    meeting.ended_at = NOW - dt.timedelta(days=days_ago) + dt.timedelta(hours=1)
    meeting.save(update_fields=["ended_at"])
    indexing.index_segments(list(meeting.segments.values_list("pk", flat=True)))
    return meeting


def chat(room, user, body: str, *, days_ago: int = 0) -> ChatMessage:
    message, _ = room_services.chat_message_send(user=user, thread_id=room.chat_thread.pk, body=body)
    ChatMessage.objects.filter(pk=message.pk).update(created_at=NOW - dt.timedelta(days=days_ago))
    indexing.index_chat_messages([message.pk])
    return message


# --- retention ---

def test_a_room_policy_overrides_its_map_which_overrides_the_site_default(office):
    # given: the site keeps chat 365 days, the map 90, Atlas 7
    atlas, open_space = office["atlas"], office["open"]
    with override_settings(OFFICE_RETENTION_DEFAULT_DAYS={**_defaults(), "chat": 365}):
        assert selectors.retention_days(atlas, "chat") == 365
        room_services.office_map_update(office_map=office["map"], keep_chat_days=90)
        atlas.refresh_from_db()
        open_space.refresh_from_db()
        room_services.room_update(room=atlas, keep_chat_days=7)
        atlas.refresh_from_db()
        # then
        assert selectors.retention_days(atlas, "chat") == 7
        assert selectors.retention_days(open_space, "chat") == 90
        assert selectors.retention_days(None, "chat") == 365
        assert selectors.retention_days(atlas, "transcripts") is None  # nothing set anywhere: kept forever


def _defaults() -> dict:
    from django.conf import settings

    return dict(settings.OFFICE_RETENTION_DEFAULT_DAYS)


def test_after_expiry_the_question_is_not_found_and_the_rows_are_gone(office, people):
    # given: Atlas keeps transcripts and chat for 7 days; a meeting 10 days ago, one today, chat of both
    room_services.room_update(room=office["atlas"], keep_transcripts_days=7, keep_chat_days=7)
    old = old_meeting(office, people, days_ago=10)
    old_message = chat(office["atlas"], people["bob"], "I'll fix the crash on older Android phones by Wednesday.",
                       days_ago=10)
    recent = record_meeting(office["atlas"], people, [("carol", "The budget sheet is updated.")], start=NOW)
    indexing.index_segments(list(recent.segments.values_list("pk", flat=True)))
    new_message = chat(office["atlas"], people["carol"], "Lunch is at noon today.")
    install(by_purpose(knowledge_answer=answer_when_the_crash_is_in_the_sources))
    before = qa.answer_question(user=people["alice"], question=CRASH_QUESTION, room_id=office["atlas"].pk)
    assert before["found"] and "Wednesday" in before["answer"]
    assert qa.answer_question(user=people["alice"], question=CRASH_QUESTION, room_id=office["atlas"].pk)["cached"]

    # when: the daily sweep runs
    counts = personal_data.retention_sweep(now=NOW)

    # then: the old meeting's words and the old chat are gone, with every chunk made from them
    assert not TranscriptSegment.objects.filter(meeting=old).exists()
    assert TranscriptSegment.objects.filter(meeting=recent).count() == 1
    assert not ChatMessage.objects.filter(pk=old_message.pk).exists()
    assert ChatMessage.objects.filter(pk=new_message.pk).exists()
    assert not KnowledgeChunk.objects.filter(text__contains="older Android phones").exists()
    assert not KnowledgeChunk.objects.filter(locator__meeting=old.pk).exists()
    assert KnowledgeChunk.objects.filter(text__contains="budget sheet").exists()
    assert KnowledgeChunk.objects.filter(text__contains="Lunch is at noon").exists()
    assert counts["transcript_segments"] == len(PLANNING) and counts["chat_messages"] == 1
    assert counts["knowledge_chunks"] >= len(PLANNING) + 1
    # and the question is "not found", not the cached answer that cited what is gone
    after = qa.answer_question(user=people["alice"], question=CRASH_QUESTION, room_id=office["atlas"].pk)
    assert after["found"] is False and after["cached"] is False and after["answer"] == qa.NOT_FOUND
    # and the sweep is on the audit trail with what it deleted
    entry = AuditEntry.objects.get(subject_type="retention", action="expired")
    assert entry.actor_label == "retention" and entry.after["transcript_segments"] == len(PLANNING)


def test_a_sweep_with_nothing_past_its_retention_deletes_nothing(office, people):
    old_meeting(office, people, days_ago=400)  # kept forever by default
    chunks = KnowledgeChunk.objects.count()
    assert personal_data.retention_sweep(now=NOW) == {}
    assert TranscriptSegment.objects.count() == len(PLANNING) and KnowledgeChunk.objects.count() == chunks


def test_documents_model_calls_and_waiting_audio_expire_by_their_own_policy(office, people):
    # given: Atlas keeps documents 30 days and audio 0 days; model calls without a room: the site's 90
    room_services.room_update(room=office["atlas"], keep_documents_days=30, keep_audio_days=0)
    old_doc = Document.objects.create(room=office["atlas"], title="Old plan", filename="old.txt",
                                      content_type="text/plain", size_bytes=9, sha256="a" * 64,
                                      content=b"old plan", uploaded_by=people["alice"])
    new_doc = Document.objects.create(room=office["atlas"], title="New plan", filename="new.txt",
                                      content_type="text/plain", size_bytes=9, sha256="b" * 64,
                                      content=b"new plan", uploaded_by=people["alice"])
    Document.objects.filter(pk=old_doc.pk).update(created_at=NOW - dt.timedelta(days=31))
    KnowledgeChunk.objects.bulk_create([
        KnowledgeChunk(room=office["atlas"], source_kind="document", source_id=f"document:{d.pk}:p1:c0",
                       locator={"document": d.pk, "page": 1}, text=d.title, embedding=[0.1] * 384, model_id="t")
        for d in (old_doc, new_doc)])
    calls = [ModelCall.objects.create(purpose="knowledge.answer", tier="small", model_id="m", endpoint="e",
                                      prompt_name="answer", prompt_version="1", status="ok") for _ in range(2)]
    ModelCall.objects.filter(pk=calls[0].pk).update(created_at=NOW - dt.timedelta(days=91))
    ended = old_meeting(office, people, days_ago=1)
    still_open = record_meeting(office["atlas"], people, [("alice", "Still talking.")], start=NOW)
    r = redis_client()
    for meeting in (ended, still_open):
        key = stream_key(meeting.pk, people["alice"].pk)
        r.xadd(key, {"pcm": b"\0\0" * 160, "t": "0", "s": "0"})
        r.sadd(STREAMS_KEY, key)
        r.set(f"{key}:owner", b"worker-1")

    # when
    counts = personal_data.retention_sweep(now=NOW)

    # then
    assert list(Document.objects.values_list("pk", flat=True)) == [new_doc.pk]
    assert list(KnowledgeChunk.objects.filter(source_kind="document").values_list("text", flat=True)) == ["New plan"]
    assert list(ModelCall.objects.values_list("pk", flat=True)) == [calls[1].pk]
    assert not r.exists(stream_key(ended.pk, people["alice"].pk), f"{stream_key(ended.pk, people['alice'].pk)}:owner")
    assert r.exists(stream_key(still_open.pk, people["alice"].pk))  # still being transcribed
    assert r.smembers(STREAMS_KEY) == {stream_key(still_open.pk, people["alice"].pk).encode()}
    assert counts["documents"] == 1 and counts["model_calls"] == 1 and counts["audio_streams"] == 1


def test_an_admin_sets_a_rooms_retention_through_the_api_and_bad_values_are_refused(office, people):
    dana, bob = client_for(people["dana"]), client_for(people["bob"])
    url = f"/api/rooms/{office['atlas'].pk}/"
    r = dana.patch(url, {"keep_transcripts_days": 30, "keep_chat_days": None}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["keep_transcripts_days"] == 30 and r.json()["keep_chat_days"] is None
    assert dana.patch(url, {"keep_chat_days": -1}, content_type="application/json").status_code == 400
    assert bob.patch(url, {"keep_chat_days": 1}, content_type="application/json").status_code == 403
    r = dana.patch(f"/api/maps/{office['map'].pk}/", {"keep_audio_days": 2}, content_type="application/json")
    assert r.status_code == 200, r.content
    office["map"].refresh_from_db()
    assert office["map"].keep_audio_days == 2


# --- export ---

def test_a_person_downloads_everything_office_holds_about_them_and_nobody_elses_words(office, people):
    # given: a meeting where alice and bob spoke, chat from both, a task for alice
    meeting = old_meeting(office, people, days_ago=1)
    room_services.chat_message_send(user=people["alice"], thread_id=office["atlas"].chat_thread.pk, body="Hi all")
    room_services.chat_message_send(user=people["bob"], thread_id=office["atlas"].chat_thread.pk, body="Bob here")
    task_create(title="Write the launch plan", actor=people["dana"], owner=people["alice"])

    # when
    r = client_for(people["alice"]).get("/api/me/export/")

    # then: a zip with the JSON and her words as a transcript
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    assert "attachment" in r["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    data = json.loads(archive.read("office-data.json"))
    assert data["account"]["username"] == "alice" and data["account"]["name"] == "Alice Archer"
    assert [m["body"] for m in data["chat_messages"]] == ["Hi all"]
    [attended] = data["meetings"]
    alice_lines = [text for speaker, text in PLANNING if speaker == "alice"]
    assert [s["text"] for s in attended["segments"]] == alice_lines
    assert [t["title"] for t in data["tasks"]] == ["Write the launch plan"]
    transcript = archive.read(f"transcripts/meeting-{meeting.pk}.txt").decode()
    assert all(line in transcript for line in alice_lines)
    assert "QA found two crashes" not in transcript  # bob's words are bob's
    assert AuditEntry.objects.filter(subject_type="person", subject_id=people["alice"].pk, action="exported",
                                     actor=people["alice"]).exists()


def test_the_export_needs_a_signed_in_person():
    from django.test import Client

    assert Client().get("/api/me/export/").status_code in (401, 403)


# --- erasure ---

def test_an_admin_erases_a_person_and_their_tasks_pass_to_someone_else(office, people):
    # given: bob spoke in a meeting, chatted, owns a task, decided a proposal, opted out once
    meeting = old_meeting(office, people, days_ago=1)
    message = chat(office["atlas"], people["bob"], "I'll fix the crash on older Android phones by Wednesday.")
    task = task_create(title="Fix the Android crash", actor=people["alice"], owner=people["bob"])
    item = ActionItem.objects.create(room=office["atlas"], meeting=meeting, text="Fix the crash",
                                     owner=people["bob"], dedupe_key="fix-crash")
    ActionItemDecision.objects.create(item=item, actor=people["bob"], action="approve")
    ConsentChange.objects.create(meeting=meeting, user=people["bob"], transcribe=False)
    bob_words = [text for speaker, text in PLANNING if speaker == "bob"]

    # when: dana erases him, carol takes over his work
    r = client_for(people["dana"]).post(f"/api/members/{people['bob'].pk}/erase/",
                                        {"confirm": "bob", "reassign_to": people["carol"].pk},
                                        content_type="application/json")

    # then: his words and messages are gone everywhere, including the knowledge index
    assert r.status_code == 200, r.content
    assert r.json()["counts"]["transcript_segments"] == len(bob_words)
    bob = people["bob"]
    bob.refresh_from_db()
    assert not TranscriptSegment.objects.filter(speaker=bob).exists()
    assert TranscriptSegment.objects.filter(meeting=meeting).count() == len(PLANNING) - len(bob_words)
    assert not ChatMessage.objects.filter(pk=message.pk).exists()
    assert not any(w in text for w in bob_words for text in KnowledgeChunk.objects.values_list("text", flat=True))
    assert not KnowledgeChunk.objects.filter(text__contains="Bob Baker").exists()
    assert not ActionItemDecision.objects.filter(actor=bob).exists()
    assert not MeetingParticipant.objects.filter(user=bob).exists() and not ConsentChange.objects.filter(user=bob).exists()
    # and his work passed to carol, audited
    task.refresh_from_db()
    item.refresh_from_db()
    assert task.owner == people["carol"] and item.owner == people["carol"]
    assert AuditEntry.objects.filter(subject_type="task", subject_id=task.pk, actor=people["dana"],
                                     after__owner=people["carol"].pk).exists()
    # and the account is an anonymous, inactive row that cannot sign in
    assert bob.username == f"erased-{bob.pk}" and not bob.is_active and bob.email == ""
    assert bob.profile.display_name == personal_data.ERASED_NAME
    assert not client_for(people["carol"]).login(username="bob", password=PASSWORD)
    entry = AuditEntry.objects.get(subject_type="person", subject_id=bob.pk, action="erased")
    assert entry.actor == people["dana"] and entry.after["chat_messages"] == 1


def test_erasure_without_a_successor_leaves_tasks_unowned(office, people):
    task = task_create(title="Book the room", actor=people["alice"], owner=people["bob"])
    counts = personal_data.person_erase(person=people["bob"], actor=people["dana"])
    task.refresh_from_db()
    assert task.owner is None and counts["tasks_reassigned"] == 1


@pytest.mark.parametrize(("who", "target", "body", "status"), [
    ("alice", "bob", {"confirm": "bob"}, 403),  # not an admin
    ("dana", "bob", {"confirm": "Bob"}, 400),  # the confirmation must match exactly
    ("dana", "dana", {"confirm": "dana"}, 400),  # nobody erases themselves
    ("dana", "bob", {"confirm": "bob", "reassign_to": "bob"}, 400),  # not to the erased person
])
def test_erasure_refuses_with_a_reason(office, people, who, target, body, status):
    if body.get("reassign_to") == "bob":
        body = {**body, "reassign_to": people["bob"].pk}
    r = client_for(people[who]).post(f"/api/members/{people[target].pk}/erase/", body,
                                     content_type="application/json")
    assert r.status_code == status, r.content
    assert r.json()["error"]["message"]
    people[target].refresh_from_db()
    assert people[target].is_active and not AuditEntry.objects.filter(action="erased").exists()


def test_an_erasure_that_fails_halfway_changes_nothing(office, people, monkeypatch):
    # given: a stage fails while erasing (here: automation's part raises)
    old_meeting(office, people, days_ago=1)
    from automation import personal_data as automation_personal_data

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(automation_personal_data, "person_work_erase", broken)
    with pytest.raises(RuntimeError):
        personal_data.person_erase(person=people["bob"], actor=people["dana"])
    # then: bob's words and account are untouched
    people["bob"].refresh_from_db()
    assert people["bob"].is_active and people["bob"].username == "bob"
    assert TranscriptSegment.objects.filter(speaker=people["bob"]).count() == 2


def test_the_settings_page_offers_the_download(people):
    html = client_for(people["carol"]).get("/settings/tokens/").content.decode()
    assert 'href="/api/me/export/"' in html and "Download my data" in html


def test_megaphone_messages_knocks_and_guest_passes_are_exported_erased_and_expire(office, people):
    from rooms.models import Announcement, RoomGuestPass, RoomKnock

    vault = office["vault"]
    knock = room_services.room_knock(user=people["bob"], room_id=vault.pk)
    room_services.room_knock_answer(user=people["alice"], knock_id=knock.pk, let_in=True)
    mine = Announcement.objects.create(office_map=office["map"], author=people["dana"], text="Fire drill at noon",
                                       ends_at=NOW + dt.timedelta(minutes=5))
    old = Announcement.objects.create(office_map=office["map"], room=office["atlas"], author=people["dana"],
                                      text="Old news", ends_at=NOW)
    Announcement.objects.filter(pk=old.pk).update(created_at=NOW - dt.timedelta(days=40))

    # the knocker's export lists the knock and the pass; the admin's lists what she announced
    bob_data = json.loads(zipfile.ZipFile(io.BytesIO(personal_data.person_export(user=people["bob"])))
                          .read("office-data.json"))
    assert [k["answer"] for k in bob_data["knocks"]] == ["let_in"] and len(bob_data["guest_passes"]) == 1
    dana_data = json.loads(zipfile.ZipFile(io.BytesIO(personal_data.person_export(user=people["dana"])))
                           .read("office-data.json"))
    assert {a["text"] for a in dana_data["announcements"]} == {"Fire drill at noon", "Old news"}

    # a 30-day chat policy removes the old announcement only
    room_services.room_update(room=office["atlas"], keep_chat_days=30)
    counts = personal_data.retention_sweep(now=NOW)
    assert counts.get("announcements") == 1
    assert list(Announcement.objects.values_list("pk", flat=True)) == [mine.pk]

    # erasing bob takes his knock and pass; erasing dana takes her words and voice
    personal_data.person_erase(person=people["bob"], actor=people["dana"])
    assert not RoomKnock.objects.filter(user=people["bob"]).exists()
    assert not RoomGuestPass.objects.filter(user=people["bob"]).exists()
    people["alice"].is_staff = True
    personal_data.person_erase(person=people["dana"], actor=people["alice"])
    assert not Announcement.objects.exists()


def test_bookings_and_agendas_are_exported_expire_with_transcripts_and_pass_on_at_erasure(office, people):
    from iot.models import Agenda, RoomBooking

    atlas, bob = office["atlas"], people["bob"]

    def booked(title: str, *, days_from_now: int):
        start = NOW + dt.timedelta(days=days_from_now)
        booking = RoomBooking.objects.create(room=atlas, title=title, organizer=bob, start=start,
                                             end=start + dt.timedelta(hours=1))
        agenda = Agenda.objects.create(booking=booking, room=atlas, title=title, starts_at=booking.start,
                                       ends_at=booking.end, edited_by=bob, edited_at=NOW,
                                       items=[{"kind": "custom", "text": f"{title}: bob's point", "ref": "",
                                               "url": ""}])
        return booking, agenda

    old_booking, _old_agenda = booked("Spring review", days_from_now=-40)
    next_booking, next_agenda = booked("Launch sync", days_from_now=2)

    # bob's export lists the meetings he booked and the agendas he last edited
    data = json.loads(zipfile.ZipFile(io.BytesIO(personal_data.person_export(user=bob))).read("office-data.json"))
    assert [b["title"] for b in data["room_bookings"]] == ["Spring review", "Launch sync"]
    assert [a["items"][0]["text"] for a in data["agendas_last_edited"]] == ["Spring review: bob's point",
                                                                             "Launch sync: bob's point"]

    # a 30-day transcript policy removes the old meeting's agenda (it retells the meeting), not the booking
    room_services.room_update(room=atlas, keep_transcripts_days=30)
    counts = personal_data.retention_sweep(now=NOW)
    assert counts.get("agendas") == 1
    assert list(Agenda.objects.values_list("pk", flat=True)) == [next_agenda.pk]
    assert RoomBooking.objects.filter(pk=old_booking.pk).exists()

    # erasing bob hands his bookings to carol and forgets who edited the agenda
    personal_data.person_erase(person=bob, actor=people["dana"], reassign_to=people["carol"])
    assert set(RoomBooking.objects.values_list("organizer", flat=True)) == {people["carol"].pk}
    next_agenda.refresh_from_db()
    assert next_agenda.edited_by is None
    assert next_booking.pk in RoomBooking.objects.filter(organizer=people["carol"]).values_list("pk", flat=True)
