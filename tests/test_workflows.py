"""The workflow engine through its public services: idempotent start, retries with backoff,
compensation order, approvals, the outbox after a crash, and the connectors' ledger.

Celery runs eagerly here (tasks execute in the process that enqueues them, after commit); the
behaviour that depends on real worker processes is in test_workflows_workers.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from automation.workflows import services
from automation.workflows.connectors.email import emails_outside_org
from automation.workflows.definitions import step, workflow
from automation.workflows.errors import PermanentError, TransientError
from automation.workflows.models import (
    Approval,
    Notification,
    OutboxMessage,
    SideEffect,
    WorkflowEvent,
    WorkflowRun,
    WorkflowStep,
    WorkflowStepAttempt,
)

pytestmark = pytest.mark.django_db(transaction=True)

JOURNAL: list[str] = []  # what the test steps did, in order
FAILURES: dict[str, int] = {}  # step name -> how many more times it fails


def _maybe_fail(name: str) -> None:
    if FAILURES.get(name, 0) > 0:
        FAILURES[name] -= 1
        raise TransientError(f"{name} is not reachable")


def reserve(ctx):
    JOURNAL.append("reserve")
    return {"reserved": ctx.input["item"]}


def undo_reserve(ctx):
    JOURNAL.append("undo reserve")


def charge(ctx):
    JOURNAL.append("charge")
    return {"charged": 10}


def undo_charge(ctx):
    JOURNAL.append("undo charge")


def ship(ctx):
    JOURNAL.append("ship")
    if ctx.input.get("ship_fails"):
        raise PermanentError("the carrier refused the parcel")
    _maybe_fail("ship")
    return {"shipped": True, "charged": ctx.results["charge"]["charged"]}


@workflow("test.order", version=1)
def order_flow():
    return [
        step(reserve, compensate=undo_reserve),
        step(charge, compensate=undo_charge),
        step(ship, retries=2, backoff=4.0),
    ]


def notify_owner(ctx):
    ctx.send("notification", {"user_id": ctx.input["owner_id"], "title": "Task for you",
                               "body": ctx.input["title"], "url": "/tasks/"}, key="owner")
    _maybe_fail("notify_owner")
    return "sent"


def post_in_room(ctx):
    return ctx.send("room_chat", {"room_id": ctx.input["room_id"], "body": f"New task: {ctx.input['title']}"})


@workflow("test.announce", version=1)
def announce_flow():
    return [step(notify_owner, retries=3, backoff=1.0), step(post_in_room)]


def email_customer(ctx):
    return ctx.send("email", {"to": ctx.input["to"], "subject": "Your ticket is closed", "body": "Thanks!"})


def close_ticket(ctx):
    JOURNAL.append("close")
    return {"closed": True}


def undo_note(ctx):
    JOURNAL.append("undo note")


def add_note(ctx):
    JOURNAL.append("note")


@workflow("test.close_ticket", version=1)
def close_ticket_flow():
    return [
        step(add_note, compensate=undo_note),
        step(email_customer, needs_approval=emails_outside_org("to"),
             approval_summary=lambda ctx: f"E-mail {ctx.input['to']} that the ticket is closed"),
        step(close_ticket, needs_approval=True, approver=lambda ctx: ctx.input.get("approver_id")),
    ]


@pytest.fixture(autouse=True)
def eager_celery(settings):
    from office.celery import app

    JOURNAL.clear()
    FAILURES.clear()
    settings.OFFICE_WORKFLOW_ORG_EMAIL_DOMAINS = ["office.test"]
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


def make_due(run: WorkflowRun) -> None:
    """Time passes: whatever waits for a retry is due now."""
    WorkflowStep.objects.filter(run=run, next_retry_at__isnull=False).update(next_retry_at=timezone.now())
    OutboxMessage.objects.update(available_at=timezone.now())


def statuses(run: WorkflowRun) -> list[str]:
    return list(WorkflowStep.objects.filter(run=run).order_by("index").values_list("status", flat=True))


def test_the_same_key_starts_one_run_and_runs_every_step(people):
    # given a caller that retries its start
    first = services.workflow_start("test.order", {"item": "desk"}, idempotency_key="order-1", actor=people["dana"])
    again = services.workflow_start("test.order", {"item": "desk"}, idempotency_key="order-1", actor=people["dana"])

    # then there is one run, finished, each step done once in order
    assert first.pk == again.pk
    assert WorkflowRun.objects.count() == 1
    run = WorkflowRun.objects.get()
    assert run.status == "succeeded" and run.version == 1
    assert statuses(run) == ["succeeded"] * 3
    assert JOURNAL == ["reserve", "charge", "ship"]
    assert WorkflowStep.objects.get(run=run, name="ship").result == {"shipped": True, "charged": 10}
    assert OutboxMessage.objects.count() == 0
    assert list(WorkflowEvent.objects.filter(run=run).values_list("action", flat=True)) == ["started", "succeeded"]


def test_a_key_cannot_be_reused_for_another_workflow(people):
    services.workflow_start("test.order", {"item": "desk"}, idempotency_key="shared-key")
    with pytest.raises(ValidationError):
        services.workflow_start("test.announce", {}, idempotency_key="shared-key")


def test_a_transient_failure_is_retried_with_growing_backoff(people):
    # given a ship step that fails twice, then works
    FAILURES["ship"] = 2
    before = timezone.now()
    run = services.workflow_start("test.order", {"item": "lamp"}, idempotency_key="order-2")

    # then it waits for a retry within the first backoff window (4 s, jittered to 2-4 s)
    ship_step = WorkflowStep.objects.get(run=run, name="ship")
    assert ship_step.status == "pending" and ship_step.attempts == 1
    assert "not reachable" in ship_step.last_error
    assert before + timedelta(seconds=2) <= ship_step.next_retry_at <= timezone.now() + timedelta(seconds=4)
    assert OutboxMessage.objects.filter(payload={"step_id": ship_step.pk}).exists()

    # when the tick runs before the retry is due, nothing happens
    services.workflow_tick()
    assert WorkflowStep.objects.get(pk=ship_step.pk).attempts == 1

    # when time passes, the second attempt fails too and backs off longer (8 s window: 4-8 s)
    make_due(run)
    started = timezone.now()
    services.workflow_tick()
    ship_step.refresh_from_db()
    assert ship_step.attempts == 2 and ship_step.status == "pending"
    assert started + timedelta(seconds=4) <= ship_step.next_retry_at <= timezone.now() + timedelta(seconds=8)

    # and the third attempt succeeds
    make_due(run)
    services.workflow_tick()
    run.refresh_from_db()
    assert run.status == "succeeded"
    outcomes = list(WorkflowStepAttempt.objects.filter(step=ship_step).values_list("outcome", flat=True))
    assert outcomes == ["retry", "retry", "succeeded"]
    assert JOURNAL.count("ship") == 3 and JOURNAL.count("charge") == 1


def test_retries_run_out_then_earlier_steps_are_undone_newest_first(people):
    FAILURES["ship"] = 10
    run = services.workflow_start("test.order", {"item": "chair"}, idempotency_key="order-3")
    for _ in range(2):
        make_due(run)
        services.workflow_tick()

    run.refresh_from_db()
    assert run.status == "compensated"
    assert "ship" in run.error and "not reachable" in run.error
    assert statuses(run) == ["compensated", "compensated", "failed"]
    assert JOURNAL == ["reserve", "charge", "ship", "ship", "ship", "undo charge", "undo reserve"]


def test_a_permanent_failure_is_not_retried(people):
    run = services.workflow_start("test.order", {"item": "chair", "ship_fails": True}, idempotency_key="order-4")
    run.refresh_from_db()
    assert run.status == "compensated"
    assert WorkflowStep.objects.get(run=run, name="ship").attempts == 1
    assert JOURNAL[-2:] == ["undo charge", "undo reserve"]


def test_a_rerun_step_does_not_notify_twice(people, office):
    # given a step whose notification went out, then the step failed after it
    FAILURES["notify_owner"] = 1
    alice = people["alice"]
    run = services.workflow_start("test.announce", {"owner_id": alice.pk, "title": "Water the plants",
                                                    "room_id": office["atlas"].pk}, idempotency_key="announce-1")
    assert WorkflowStep.objects.get(run=run, index=0).status == "pending"
    assert Notification.objects.filter(user=alice).count() == 1

    # when the step runs again
    make_due(run)
    services.workflow_tick()

    # then alice still has one notification, and the room one chat message from the office
    run.refresh_from_db()
    assert run.status == "succeeded"
    notes = Notification.objects.filter(user=alice)
    assert [n.title for n in notes] == ["Task for you"]
    assert notes[0].idempotency_key == SideEffect.objects.get(run=run, step_index=0).idempotency_key
    from rooms.models import ChatMessage

    posted = ChatMessage.objects.filter(thread__room=office["atlas"])
    assert [m.body for m in posted] == ["New task: Water the plants"]
    assert posted[0].client_id == SideEffect.objects.get(run=run, step_index=1).idempotency_key


def test_notifications_are_announced_to_the_member_after_commit(people):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from office.events import user_group

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(people["bob"].pk), channel)

    services.notification_create(user=people["bob"], title="Hello", body="From the office")

    event = async_to_sync(layer.receive)(channel)
    assert event["type"] == "notification.new"
    assert set(event["notification"]) == {"id", "title", "body", "url", "created_at", "read"}
    assert event["notification"]["title"] == "Hello" and event["notification"]["read"] is False


def test_mail_to_the_org_needs_no_approval(people):
    run = services.workflow_start("test.close_ticket", {"to": ["carol@office.test"], "approver_id": people["bob"].pk},
                                  idempotency_key="close-1")
    run.refresh_from_db()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["carol@office.test"]
    assert mail.outbox[0].extra_headers["Message-ID"].startswith(f"<wf{run.pk}.1.")
    # the last step still waits for bob, the named approver
    assert run.status == "waiting_approval"
    approval = Approval.objects.get(run=run)
    assert approval.assignee == people["bob"] and approval.step.name == "close_ticket"
    assert Notification.objects.filter(user=people["bob"], title="Approval needed").count() == 1


def test_mail_outside_the_org_waits_for_an_admin_then_resumes(people):
    # given a workflow that would e-mail a customer
    run = services.workflow_start("test.close_ticket", {"to": "customer@example.com",
                                                        "approver_id": people["bob"].pk},
                                  idempotency_key="close-2")
    run.refresh_from_db()

    # then nothing was mailed, the run waits, and admins were told
    assert run.status == "waiting_approval" and mail.outbox == []
    approval = Approval.objects.get(run=run)
    assert approval.assignee is None and "customer@example.com" in approval.summary
    assert Notification.objects.filter(user=people["dana"], title="Approval needed").exists()

    # a member who is not the approver cannot decide
    with pytest.raises(PermissionDenied):
        services.approval_decide(approval, people["carol"], True)

    # when dana approves with a note
    services.approval_decide(approval, people["dana"], True, note="customer asked for it")

    # then the mail goes out once and the run moves on to the next approval
    run.refresh_from_db()
    assert len(mail.outbox) == 1 and run.status == "waiting_approval"
    approval.refresh_from_db()
    assert (approval.decision, approval.decided_by, approval.note) == ("approved", people["dana"], "customer asked for it")
    assert approval.decided_at is not None
    audit = WorkflowEvent.objects.get(run=run, action="approval_approved")
    assert (audit.actor, audit.note) == (people["dana"], "customer asked for it")

    # and a second decision on the same approval is refused
    with pytest.raises(ValidationError):
        services.approval_decide(approval, people["dana"], False)

    # bob, the named approver of the last step, approves it
    last = Approval.objects.get(run=run, step__name="close_ticket")
    services.approval_decide(last, people["bob"], True)
    run.refresh_from_db()
    assert run.status == "succeeded" and JOURNAL == ["note", "close"]


def test_a_rejection_undoes_and_cancels_the_run_with_an_audit_trail(people):
    run = services.workflow_start("test.close_ticket", {"to": "customer@example.com"}, idempotency_key="close-3")
    approval = Approval.objects.get(run=run)

    services.approval_decide(approval, people["dana"], False, note="not this customer")

    run.refresh_from_db()
    assert run.status == "cancelled" and "not this customer" in run.error
    assert statuses(run) == ["compensated", "cancelled", "cancelled"]
    assert JOURNAL == ["note", "undo note"] and mail.outbox == []
    actions = list(WorkflowEvent.objects.filter(run=run).values_list("action", "actor__username"))
    assert ("approval_rejected", "dana") in actions and actions[-1] == ("cancelled", None)


def test_operator_can_retry_skip_and_cancel(people):
    dana = people["dana"]
    FAILURES["ship"] = 100
    run = services.workflow_start("test.order", {"item": "plant"}, idempotency_key="order-5")

    # cancel while the step waits for a retry: what succeeded is undone
    services.run_cancel(run, dana, note="customer changed their mind")
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert statuses(run) == ["compensated", "compensated", "cancelled"]
    with pytest.raises(ValidationError):
        services.run_cancel(run, dana)

    # a second run without compensations to undo: ship fails for good, then dana retries it
    run2 = services.workflow_start("test.announce", {"owner_id": people["alice"].pk, "title": "x", "room_id": 0},
                                   idempotency_key="announce-2")
    run2.refresh_from_db()
    assert run2.status == "failed" and "no room" in run2.error
    with pytest.raises(ValidationError):
        services.run_retry(run, dana)  # nothing to retry in a cancelled run
    services.run_retry(run2, dana)
    run2.refresh_from_db()
    assert run2.status == "failed"  # still no such room
    services.run_skip_step(run2, dana)
    run2.refresh_from_db()
    assert run2.status == "succeeded"
    assert statuses(run2) == ["succeeded", "skipped"]
    assert ("skipped", "dana") in list(WorkflowEvent.objects.filter(run=run2).values_list("action", "actor__username"))


def test_an_outbox_row_left_by_a_crash_is_relayed_by_the_tick(people, monkeypatch):
    # given a process that dies right after committing the start (its after-commit relay never runs)
    monkeypatch.setattr("automation.workflows.services.outbox.outbox_relay", lambda **kw: 0)
    run = services.workflow_start("test.order", {"item": "mug"}, idempotency_key="order-6")
    monkeypatch.undo()
    assert WorkflowStep.objects.get(run=run, index=0).status == "pending"
    assert OutboxMessage.objects.count() == 1

    # when beat's tick runs
    services.workflow_tick()

    # then the run completes, each step once
    run.refresh_from_db()
    assert run.status == "succeeded" and JOURNAL == ["reserve", "charge", "ship"]
    assert OutboxMessage.objects.count() == 0


def test_a_lost_task_message_is_requeued_after_the_grace_period(people, settings):
    settings.OFFICE_WORKFLOW_REQUEUE_AFTER_SECONDS = 30
    # given a run whose first task message was relayed but never executed (worker killed before ack)
    from automation.workflows import tasks

    real = tasks.step_execute_task.apply_async
    tasks.step_execute_task.apply_async = lambda *a, **k: None
    try:
        run = services.workflow_start("test.order", {"item": "pen"}, idempotency_key="order-7")
    finally:
        tasks.step_execute_task.apply_async = real
    assert OutboxMessage.objects.count() == 0 and JOURNAL == []

    # the tick leaves it alone within the grace period, then re-enqueues it
    assert services.workflow_tick()["requeued"] == 0
    WorkflowStep.objects.filter(run=run, index=0).update(next_retry_at=timezone.now() - timedelta(seconds=31))
    assert services.workflow_tick()["requeued"] == 1
    run.refresh_from_db()
    assert run.status == "succeeded" and JOURNAL == ["reserve", "charge", "ship"]


def test_a_step_lost_with_its_worker_after_a_cancel_is_undone_too(people):
    """The worker running `charge` dies; meanwhile the run is cancelled. The charge may have gone
    through, so it is undone along with `reserve`, newest first."""
    from automation.workflows import tasks

    real = tasks.step_execute_task.apply_async
    tasks.step_execute_task.apply_async = lambda *a, **k: None
    try:
        run = services.workflow_start("test.order", {"item": "lamp"}, idempotency_key="order-lost")
        steps = {s.index: s for s in WorkflowStep.objects.filter(run=run)}
        assert services.step_execute(steps[0].pk) == "succeeded"
        assert services._claim(steps[1].pk) is not None  # a worker took `charge`, then died
    finally:
        tasks.step_execute_task.apply_async = real
    services.run_cancel(run, people["dana"], note="customer changed their mind")
    run.refresh_from_db()
    assert run.status == "compensating"  # waits for the attempt in flight
    assert JOURNAL == ["reserve"]

    # the lease runs out; the tick's message finds the attempt lost
    WorkflowStep.objects.filter(pk=steps[1].pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    services.step_execute(steps[1].pk)
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert JOURNAL == ["reserve", "undo charge", "undo reserve"]
    assert statuses(run) == ["compensated", "compensated", "cancelled"]
    assert WorkflowStep.objects.get(pk=steps[1].pk).attempt_log.filter(outcome="lost").count() == 1


def test_beat_schedule_is_stored_once(db):
    from django_celery_beat.models import PeriodicTask

    services.workflow_schedules_ensure()
    services.workflow_schedules_ensure()
    task = PeriodicTask.objects.get(task="workflows.tick")
    assert task.enabled and task.interval.every == 2


def test_a_backlog_is_not_mistaken_for_lost_messages(people, settings):
    from automation.workflows import tasks
    from office.celery import app

    settings.OFFICE_WORKFLOW_REQUEUE_AFTER_SECONDS = 30
    # given a step whose message waits in a long queue (workers busy elsewhere)
    app.conf.task_always_eager = False
    run = services.workflow_start("test.order", {"item": "cup"}, idempotency_key="order-8")
    WorkflowStep.objects.filter(run=run, index=0).update(next_retry_at=timezone.now() - timedelta(seconds=120))

    # then the tick does not re-enqueue it while the queue is not empty and has not moved past it
    assert services.workflow_tick()["requeued"] == 0

    # when the queue is empty (the message was taken by a worker that died), it is re-enqueued
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(app.conf.task_default_queue)
    app.conf.task_always_eager = True
    assert services.workflow_tick()["requeued"] == 1
    run.refresh_from_db()
    assert run.status == "succeeded" and JOURNAL == ["reserve", "charge", "ship"]
    assert tasks.step_execute_task.name == "workflows.step_execute"
