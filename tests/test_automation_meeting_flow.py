"""From a recorded meeting to work: transcript -> proposed action items -> approval -> tasks with
owners from calendar availability -> reminders -> the next morning's digest."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from assistant import llm
from assistant import services as assistant_services
from assistant.models import ActionItem
from assistant.testing import ScriptedTransport, by_purpose
from automation import services
from automation.models import AuditEntry, Reminder, Task
from tests.assistant_fixtures import record_meeting

OFFSITE = [
    ("alice", "Let's plan the team offsite."),
    ("bob", "The old venue is booked out."),
    ("alice", "We need to book a new venue for the offsite by next week."),
    ("alice", "Carol, can you send the agenda to everyone by tomorrow?"),
    ("carol", "Sure, I'll send it by tomorrow."),
]


def busy_ics(uid: str, start: dt.date, end: dt.date) -> str:
    """An all-day block from `start` up to (not including) `end`."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Office tests//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:{start:%Y%m%d}\r\n"
        f"DTEND;VALUE=DATE:{end:%Y%m%d}\r\nSUMMARY:Away\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@pytest.fixture(autouse=True)
def _fresh_breakers():
    llm.reset_breakers()
    yield
    llm.reset_breakers()


@pytest.mark.django_db
def test_meeting_to_tasks_with_calendar_owners_reminders_and_digest(office, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    now = timezone.now()
    today = timezone.localdate(now)

    # given alice and carol are away for the next two weeks; bob's calendar is free
    for person in (alice, carol):
        services.calendar_feed_add(user=person, actor=person, name="leave",
                                   content=busy_ics(f"{person.username}-away", today, today + dt.timedelta(days=14)))
    services.calendar_feed_add(user=bob, actor=bob, name="work", content=busy_ics("bob-none", today + dt.timedelta(days=30),
                                                                                  today + dt.timedelta(days=31)))

    # given a meeting in Atlas recorded today with alice, bob and carol
    meeting = record_meeting(office["atlas"], people, OFFSITE, start=now - dt.timedelta(minutes=5))
    model = llm.LLMClient(ScriptedTransport(by_purpose()))  # no model answers: the rules write the items

    # when the assistant proposes action items from the transcript
    proposals = assistant_services.meeting_action_items_propose(meeting, llm=model)

    # then the unowned one carries the calendar's suggestion (bob) with the reason
    venue = next(i for i in proposals if "venue" in i.text.lower())
    agenda = next(i for i in proposals if "agenda" in i.text.lower())
    assert venue.owner is None and venue.suggested_owner == bob
    assert venue.owner_reason.startswith("Bob Baker is free")
    # (a window of one working day, as from a Saturday to "next week"'s Monday, says "busy all day")
    assert "Alice Archer has no free time" in venue.owner_reason or "Alice Archer is busy all day" in venue.owner_reason
    assert agenda.owner == carol
    assert not Task.objects.exists()  # proposals are not work yet

    # when alice approves both
    for item in (venue, agenda):
        assistant_services.action_item_decide(item=item, user=alice, action="approve")

    # then each approved item is a task, owned as decided, with provenance back to the meeting
    venue_task = Task.objects.get(source_kind="action_item", source_id=str(venue.pk))
    agenda_task = Task.objects.get(source_kind="action_item", source_id=str(agenda.pk))
    assert venue_task.owner == bob and venue_task.room == office["atlas"]
    assert venue_task.due_date == venue.due_date and venue_task.due_date > today
    assert venue_task.provenance["owner_from"] == "suggested"
    assert venue_task.provenance["owner_reason"] == venue.owner_reason
    assert venue_task.provenance["meeting"] == meeting.pk
    assert venue_task.provenance["segments"] == venue.source_segment_ids and venue.source_segment_ids
    assert venue_task.provenance["model_id"] == venue.model_id and venue_task.provenance["prompt_version"]
    assert agenda_task.owner == carol and agenda_task.due_date == today + dt.timedelta(days=1)
    created = AuditEntry.objects.get(subject_type="task", subject_id=venue_task.pk, action="created")
    assert created.actor == alice and created.reason == f"action item #{venue.pk} approved"
    assert ActionItem.objects.get(pk=venue.pk).status == "approved"

    # and a reminder is scheduled for each owner before the due date
    venue_reminder = Reminder.objects.get(task=venue_task, status="scheduled")
    agenda_reminder = Reminder.objects.get(task=agenda_task, status="scheduled")
    assert venue_reminder.user == bob and venue_reminder.remind_at < timezone.make_aware(
        dt.datetime.combine(venue_task.due_date, dt.time(9)))
    assert agenda_reminder.user == carol

    # when the agenda reminder comes due, it goes out once
    assert services.reminders_send_due(agenda_reminder.remind_at) >= 1
    agenda_reminder.refresh_from_db()
    assert agenda_reminder.status == "sent"

    # when tomorrow morning's digests are built
    tomorrow = today + dt.timedelta(days=1)
    digests = {d.user.username: d for d in services.digests_build(tomorrow, now=now + dt.timedelta(minutes=1))}

    # then bob's says the venue was assigned to him, carol's that the agenda is due
    assert venue_task.id in [t["id"] for t in digests["bob"].content["assigned"]]
    assert "Book a new venue for the offsite" in digests["bob"].text
    assert agenda_task.id in [t["id"] for t in digests["carol"].content["due"]]


@pytest.mark.django_db
def test_approved_item_without_any_owner_gets_one_from_the_calendar(office, people):
    """The kernel's own fallback: no owner and no suggestion on the item -> owner_suggest now."""
    alice, bob = people["alice"], people["bob"]
    today = timezone.localdate()
    services.calendar_feed_add(user=bob, actor=bob, content=busy_ics("bob-away", today, today + dt.timedelta(days=14)))
    meeting = record_meeting(office["atlas"], people, [("alice", "Quick sync."), ("bob", "Fine by me.")])
    item = ActionItem.objects.create(
        room=office["atlas"], meeting=meeting, text="Order a new projector bulb", due_date=today + dt.timedelta(days=7),
        confidence=0.8, source_segment_ids=list(meeting.segments.values_list("pk", flat=True)), speaker=alice,
        model_id="rules", prompt_version="rules.v1", dedupe_key="order new projector bulb",
    )

    # when approved, and approved-signal delivered twice (a retry)
    assistant_services.action_item_decide(item=item, user=alice, action="approve")
    again = services.task_create_from_action_item(item, actor=alice)

    # then one task, owned by alice (bob is away), with the calendar's reason kept
    task = Task.objects.get(source_kind="action_item", source_id=str(item.pk))
    assert again.pk == task.pk
    assert task.owner == alice
    assert task.provenance["owner_from"] == "calendar"
    assert task.provenance["owner_reason"].startswith("Alice Archer is free")
    assert "Bob Baker has no free time" in task.provenance["owner_reason"]
    assert Reminder.objects.filter(task=task, user=alice, status="scheduled").count() == 1


@pytest.mark.django_db
def test_a_failing_task_creation_rolls_the_approval_back(office, people, monkeypatch):
    meeting = record_meeting(office["atlas"], people, [("alice", "I will clean the whiteboard by Friday.")])
    item = ActionItem.objects.create(room=office["atlas"], meeting=meeting, text="Clean the whiteboard",
                                     confidence=0.8, dedupe_key="clean whiteboard")

    def broken(*args, **kwargs):
        raise RuntimeError("database trouble")

    monkeypatch.setattr("automation.services.action_items.task_create", broken)
    with pytest.raises(RuntimeError):
        assistant_services.action_item_decide(item=item, user=people["alice"], action="approve")

    assert ActionItem.objects.get(pk=item.pk).status == "proposed"
    assert not Task.objects.exists()
