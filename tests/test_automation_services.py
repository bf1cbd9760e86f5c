"""The work kernel's services: every change audited with its actor, tickets de-duplicated,
reminders scheduled and sent once, digests with what is due, newly assigned and missed."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from automation import services
from automation.models import AuditEntry, Digest, Reminder, Task, Ticket
from automation.workflows.models import Notification, WorkflowRun
from office.events import user_group
from rooms import services as room_services
from rooms.models import RoomVisit

UTC = dt.UTC
NOW = dt.datetime(2025, 11, 24, 12, 0, tzinfo=UTC)  # Monday noon


def audit(subject_type: str, subject_id: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(subject_type=subject_type, subject_id=subject_id).order_by("id"))


@pytest.fixture
def sent_events(monkeypatch):
    """Live events actually sent (after commit), as (group, event)."""
    sent = []
    monkeypatch.setattr("office.events.send_event", lambda group, event: sent.append((group, event)))
    return sent


# --- tasks ---

@pytest.mark.django_db
def test_task_create_and_update_write_audit_with_actor_before_and_after(people, office):
    # given
    alice, bob = people["alice"], people["bob"]

    # when
    task = services.task_create(title="Book the  offsite venue", owner=bob, room=office["atlas"], actor=alice,
                                reason="asked in chat")
    task = services.task_update(task, actor="rule:escalate-stale", reason="no progress in a week",
                                owner=people["carol"], status="in_progress")
    unchanged = services.task_update(task, actor=alice, reason="no-op", status="in_progress")

    # then
    assert task.title == "Book the offsite venue"
    assert unchanged.status == "in_progress"
    created, updated = audit("task", task.id)  # the no-op wrote nothing
    assert (created.action, created.actor, created.actor_label, created.reason) == ("created", alice, "alice",
                                                                                  "asked in chat")
    assert created.before == {} and created.after["owner"] == bob.id
    assert (updated.actor, updated.actor_label, updated.reason) == (None, "rule:escalate-stale",
                                                                    "no progress in a week")
    assert updated.before == {"owner": bob.id, "status": "open"}
    assert updated.after == {"owner": people["carol"].id, "status": "in_progress"}


@pytest.mark.django_db(transaction=True)
def test_task_events_go_to_old_and_new_owner_only_after_commit(people, office, sent_events):
    # given
    task = services.task_create(title="Order chairs", owner=people["bob"], actor=people["alice"])
    sent_events.clear()

    # when a change is rolled back, nobody hears of it
    with pytest.raises(RuntimeError), transaction.atomic():
        services.task_update(task, actor=people["alice"], owner=people["carol"])
        raise RuntimeError("rolled back")
    assert sent_events == []

    # when it commits
    services.task_update(task, actor=people["alice"], owner=people["carol"])

    # then bob (old owner), carol (new) and alice (creator) are told
    groups = {group for group, event in sent_events if event["type"] == "task.changed"}
    assert groups == {user_group(people["bob"].id), user_group(people["carol"].id), user_group(people["alice"].id)}
    assert all(event["task"]["owner"] == people["carol"].id for _, event in sent_events)


@pytest.mark.django_db
def test_task_service_rejects_bad_input(people):
    task = services.task_create(title="Something", actor=people["alice"])
    with pytest.raises(ValidationError):
        services.task_create(title="  ", actor=people["alice"])
    with pytest.raises(ValidationError):
        services.task_update(task, actor=people["alice"], status="finished")
    with pytest.raises(ValidationError):
        services.task_update(task, actor=people["alice"], created_by=people["bob"])
    with pytest.raises(ValidationError):
        services.task_update(task, actor="", status="done")
    assert len(audit("task", task.id)) == 1


# --- tickets ---

@pytest.mark.django_db
def test_ticket_open_is_idempotent_on_dedupe_key_while_open(people, office):
    # given a rule that fires twice
    fire = dict(kind="facilities", room=office["atlas"], severity="high", title="Projector offline in Atlas",
                detail="no heartbeat for 5 minutes", source="rule:projector-offline",
                dedupe_key="projector-offline:atlas", actor_label="rule:projector-offline")

    # when
    first, created_first = services.ticket_open(**fire)
    again, created_again = services.ticket_open(**fire)

    # then one ticket, one audit entry by the rule
    assert (created_first, created_again) == (True, False)
    assert again.pk == first.pk
    assert Ticket.objects.count() == 1
    [opened] = audit("ticket", first.id)
    assert (opened.action, opened.actor, opened.actor_label) == ("opened", None, "rule:projector-offline")

    # when it is resolved, the same fault later opens a new ticket
    services.ticket_resolve(first, actor=people["dana"], reason="replaced the lamp")
    later, created_later = services.ticket_open(**fire)
    assert created_later and later.pk != first.pk

    # and reopening the old one while the new one is open is refused (one open ticket per key)
    with pytest.raises(ValidationError, match="another open ticket"):
        services.ticket_update(first, actor=people["dana"], status="open")


@pytest.mark.django_db(transaction=True)
def test_ticket_open_race_makes_one_ticket(people, office):
    # given two workers firing the same rule at once
    results, errors = [], []
    barrier = threading.Barrier(2)

    def fire():
        try:
            barrier.wait()
            results.append(services.ticket_open(
                kind="it", room=None, severity="medium", title="Wi-Fi down", detail="", source="rule:wifi",
                dedupe_key="wifi-down:floor-1", actor_label="rule:wifi"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then
    assert errors == []
    assert Ticket.objects.filter(dedupe_key="wifi-down:floor-1").count() == 1
    assert sorted(created for _, created in results) == [False, True]
    assert len({ticket.pk for ticket, _ in results}) == 1


@pytest.mark.django_db
def test_ticket_transitions_are_checked_and_audited(people, office):
    ticket, _ = services.ticket_open(kind="facilities", room=office["open"], severity="low", title="Plant needs water",
                                     detail="", source="member:bob", dedupe_key="", actor_label="bob",
                                     actor=people["bob"])
    services.ticket_update(ticket, actor=people["dana"], reason="on it", status="acknowledged")
    closed = services.ticket_update(ticket, actor=people["dana"], status="closed")
    with pytest.raises(ValidationError, match="cannot become"):
        services.ticket_update(ticket, actor=people["dana"], status="open")
    assert closed.resolved_at is not None
    actions = [(e.action, e.actor_label) for e in audit("ticket", ticket.id)]
    assert actions == [("opened", "bob"), ("status:acknowledged", "dana"), ("status:closed", "dana")]


# --- reminders ---

@pytest.mark.django_db
def test_reminder_is_scheduled_a_day_before_at_nine_or_soon_when_due_sooner(people, settings):
    settings.OFFICE_TASK_REMINDER_LEAD_DAYS = 1
    settings.OFFICE_TASK_REMINDER_HOUR = 9
    settings.OFFICE_TASK_REMINDER_SOON_MINUTES = 30
    bob = people["bob"]

    # due Friday: reminded Thursday 09:00
    later = services.task_create(title="Write the report", owner=bob, due_date=dt.date(2025, 11, 28),
                                 actor=people["alice"])
    assert Reminder.objects.filter(task=later, user=bob, status="scheduled").count() == 1

    # computed against a fixed clock: due tomorrow morning from Monday noon -> in 30 minutes
    assert services.reminder_time(dt.date(2025, 11, 25), now=NOW) == NOW + dt.timedelta(minutes=30)
    assert services.reminder_time(dt.date(2025, 11, 28), now=NOW) == dt.datetime(2025, 11, 27, 9, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_reminder_follows_owner_and_due_date_and_is_cancelled_when_done(people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    due = dt.date.today() + dt.timedelta(days=10)

    # given
    task = services.task_create(title="Plan the retro", owner=bob, due_date=due, actor=alice)
    first = Reminder.objects.get(task=task, status="scheduled")

    # when reassigned and moved
    services.task_update(task, actor=alice, owner=carol, due_date=due + dt.timedelta(days=2))

    # then one scheduled reminder, for carol, at the new time; bob's was cancelled
    first.refresh_from_db()
    assert first.status == "cancelled"
    current = Reminder.objects.get(task=task, status="scheduled")
    assert current.user == carol
    assert current.remind_at.date() == due + dt.timedelta(days=1)

    # when done: no scheduled reminder left
    services.task_update(task, actor=carol, status="done")
    assert not Reminder.objects.filter(task=task, status="scheduled").exists()
    assert {e.action for e in AuditEntry.objects.filter(subject_type="reminder")} == {"scheduled", "cancelled"}


@pytest.mark.django_db(transaction=True)
def test_reminders_send_due_sends_each_once(people):
    # given two tasks due soon, one reminder not yet due
    bob = people["bob"]
    soon = services.task_create(title="Send invoice", owner=bob, due_date=dt.date.today(), actor=people["alice"])
    later = services.task_create(title="Quarterly plan", owner=bob, due_date=dt.date.today() + dt.timedelta(days=30),
                                 actor=people["alice"])
    reminder = Reminder.objects.get(task=soon, status="scheduled")

    # when the beat runs twice after the reminder's time
    at = reminder.remind_at + dt.timedelta(seconds=1)
    first_run = services.reminders_send_due(at)
    second_run = services.reminders_send_due(at)

    # then
    assert (first_run, second_run) == (1, 0)
    reminder.refresh_from_db()
    assert reminder.status == "sent" and reminder.sent_at == at
    assert Reminder.objects.get(task=later).status == "scheduled"
    [run] = WorkflowRun.objects.filter(name="task.remind")
    assert run.idempotency_key == f"reminder:{reminder.id}"
    assert run.input["user_id"] == bob.id and run.input["data"]["task"] == soon.id
    assert "Send invoice" in run.input["title"]
    [sent_entry] = AuditEntry.objects.filter(subject_type="reminder", subject_id=reminder.id, action="sent")
    assert sent_entry.actor_label == "schedule:reminders"


@pytest.mark.django_db
def test_reminder_of_a_finished_task_is_not_sent(people):
    task = services.task_create(title="Old thing", owner=people["bob"], due_date=dt.date.today(), actor=people["alice"])
    reminder = Reminder.objects.get(task=task)
    # a task finished behind the scheduler's back (e.g. restored from a backup) still is not reminded
    Task.objects.filter(pk=task.pk).update(status="done")

    assert services.reminders_send_due(reminder.remind_at) == 0
    reminder.refresh_from_db()
    assert reminder.status == "cancelled"


# --- digests ---

@pytest.mark.django_db
def test_digest_has_due_assigned_and_missed_and_is_sent_once(people, office, sent_events):
    # given bob follows Atlas (visited it), and was there only for the first of two tasks made in it
    alice, bob = people["alice"], people["bob"]
    today = dt.date.today()
    room_services.room_visit_move(user=bob, from_room_id=None, to_room_id=office["atlas"].id)
    seen = services.task_create(title="Discussed while bob was in", room=office["atlas"], owner=alice, actor=alice)
    room_services.room_visit_move(user=bob, from_room_id=office["atlas"].id, to_room_id=None)
    missed = services.task_create(title="Decided after bob left", room=office["atlas"], owner=people["carol"],
                                  actor=alice)
    mine = services.task_create(title="Bob's new job", owner=bob, due_date=today + dt.timedelta(days=2), actor=alice)
    overdue = services.task_create(title="Late thing", owner=bob, due_date=today - dt.timedelta(days=1), actor=alice)
    services.task_create(title="Far future", owner=bob, due_date=today + dt.timedelta(days=60), actor=alice)
    secret = services.task_create(title="Vault secret", room=office["vault"], owner=alice, actor=alice)
    assert RoomVisit.objects.filter(user=bob).count() == 1

    # when
    digests = services.digests_build(today)

    # then
    digest = next(d for d in digests if d.user == bob)
    content = digest.content
    assert [t["id"] for t in content["due"]] == [overdue.id, mine.id]
    assert content["due"][0]["overdue"] is True
    assert {t["id"] for t in content["assigned"]} >= {mine.id, overdue.id}
    assert [t["id"] for t in content["missed"]] == [missed.id]
    assert seen.id not in [t["id"] for t in content["missed"]]
    assert secret.id not in [t["id"] for section in ("due", "assigned", "missed") for t in content[section]]
    assert "Decided after bob left" in digest.text and "OVERDUE" in digest.text

    # when sent twice (two beat runs)
    assert services.digest_send(digest) is True
    assert services.digest_send(digest) is False
    assert services.digests_send_daily(today) == len(digests) - 1  # the others; bob's is already out
    assert Digest.objects.filter(user=bob, date=today).count() == 1


@pytest.mark.django_db
def test_digest_since_last_one_and_nothing_for_idle_people(people):
    alice, bob = people["alice"], people["bob"]
    yesterday = dt.date.today() - dt.timedelta(days=1)
    services.task_create(title="Assigned before the last digest", owner=bob, actor=alice)
    services.digests_build(yesterday)  # bob's digest for yesterday holds it

    # when nothing new happens, today's digest leaves it out (and dana gets none at all)
    today = dt.date.today()
    built = {d.user.username: d for d in services.digests_build(today)}

    assert "bob" not in built
    assert "dana" not in built
    assert Digest.objects.filter(user=bob, date=yesterday).exists()


@pytest.fixture
def eager_workflows():
    """Celery runs workflow steps in-process, so delivery happens within the test."""
    from office.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


@pytest.mark.django_db(transaction=True)
def test_reminder_reaches_the_inbox_and_mail_once(people, settings, eager_workflows, mailoutbox):
    # given bob has an e-mail address and a task due today
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    bob = people["bob"]
    bob.email = "bob@office.test"
    bob.save(update_fields=["email"])
    task = services.task_create(title="Call the caterer", owner=bob, due_date=dt.date.today(), actor=people["alice"])
    reminder = Reminder.objects.get(task=task)

    # when the beat fires twice
    services.reminders_send_due(reminder.remind_at)
    services.reminders_send_due(reminder.remind_at)

    # then one inbox entry and one e-mail
    [note] = Notification.objects.filter(user=bob)
    assert "Call the caterer" in note.title and note.url == "/tasks/"
    assert [m.to for m in mailoutbox] == [["bob@office.test"]]
    assert "Call the caterer" in mailoutbox[0].subject
    assert WorkflowRun.objects.get(idempotency_key=f"reminder:{reminder.id}").status == "succeeded"
