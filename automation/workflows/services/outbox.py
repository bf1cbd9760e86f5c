"""The outbox and its relay to Celery, the requeue of stalled steps, and the periodic tick."""

# Every state change is committed together with the outbox row that makes the next piece of work
# due; Celery only carries step ids. A row is relayed right after commit, or by the tick.

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from office.queueing import task_send

from ..models import OutboxMessage, WorkflowRun, WorkflowStep, WorkflowStepAttempt

logger = logging.getLogger(__name__)

STEP_EXECUTE_TASK = "workflows.step_execute"  # automation/workflows/tasks.py
TICK_TASK_NAME = "workflows: relay the outbox and re-enqueue stalled steps"
Run = WorkflowRun.Status
Step = WorkflowStep.Status


def _schedule(step: WorkflowStep, *, at: datetime | None = None) -> None:
    """Make `step` due at `at` (now) and write the outbox row in the caller's transaction."""
    at = at or timezone.now()
    WorkflowStep.objects.filter(pk=step.pk).update(next_retry_at=at)
    step.next_retry_at = at
    _outbox_add(OutboxMessage.Kind.STEP_EXECUTE, {"step_id": step.pk}, available_at=at)


def _outbox_add(kind: str, payload: dict, *, available_at: datetime) -> None:
    row = OutboxMessage.objects.create(kind=kind, payload=payload, available_at=available_at)
    if available_at <= timezone.now():
        # Hand it to Celery right after commit; if this process dies first, the tick relays it.
        transaction.on_commit(lambda: outbox_relay(ids=[row.pk]))


def _dispatch(message: OutboxMessage) -> None:
    if message.kind == OutboxMessage.Kind.STEP_EXECUTE:
        step_id = message.payload["step_id"]
        # No write to the step here: a row lock held until this commits would make the worker
        # that already got the message skip the step.
        task_send(STEP_EXECUTE_TASK, step_id)
    else:
        logger.error("outbox message %s has unknown kind %r; dropped", message.pk, message.kind)


def outbox_relay(*, ids: list[int] | None = None, now: datetime | None = None, limit: int = 500) -> int:
    """Enqueue due outbox rows and delete them. A row is deleted only in the transaction that
    enqueued it: a crash in between leaves it for the next relay (a duplicate task is harmless,
    a missing one is not)."""
    now = now or timezone.now()
    relayed = 0
    try:
        with transaction.atomic():
            rows = OutboxMessage.objects.select_for_update(skip_locked=True).filter(available_at__lte=now)
            if ids is not None:
                rows = rows.filter(pk__in=ids)
            rows = list(rows.order_by("available_at", "id")[:limit])
            for row in rows:
                _dispatch(row)
                relayed += 1
            OutboxMessage.objects.filter(pk__in=[r.pk for r in rows]).delete()
    except Exception:
        # Broker down: nothing is lost, the rows stay for the next tick.
        logger.exception("outbox relay failed; rows stay for the next tick")
        return 0
    return relayed


def steps_requeue_stalled(*, now: datetime | None = None, limit: int = 500) -> int:
    """Re-enqueue due work whose task message went missing (a worker killed before it acked,
    a lost enqueue): due steps not enqueued recently, and attempts whose lease ran out."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.OFFICE_WORKFLOW_REQUEUE_AFTER_SECONDS)
    # A step's message counts as missing only when the queue has moved past it: a worker started
    # an attempt from a message sent well after this step's (the queue is FIFO), or the queue is
    # empty. A merely slow queue (a backlog) is left alone, so re-enqueues cannot snowball.
    frontier = (WorkflowStepAttempt.objects.filter(started_at__gte=now - timedelta(minutes=10))
                .aggregate(newest=Max("sent_at"))["newest"])
    passed = now - grace if _queue_is_empty() else min(now - grace, (frontier or now - grace * 1000) - grace)
    due = (
        Q(status=Step.PENDING, run__status=Run.RUNNING)
        | (Q(status=Step.COMPENSATING, run__status=Run.COMPENSATING)
           & (Q(lease_until__isnull=True) | Q(lease_until__lt=now)))
    )
    lost = Q(status__in=[Step.RUNNING, Step.COMPENSATING], lease_until__lt=now)
    with transaction.atomic():
        stalled = list(
            WorkflowStep.objects.select_for_update(skip_locked=True, of=("self",))
            .annotate(sent=Greatest("next_retry_at", "enqueued_at"))
            .filter(due | lost, next_retry_at__isnull=False, sent__lt=passed)
            .order_by("sent").values_list("pk", flat=True)[:limit]
        )
        if stalled:
            WorkflowStep.objects.filter(pk__in=stalled).update(enqueued_at=now)
    for step_id in stalled:
        try:
            task_send(STEP_EXECUTE_TASK, step_id)
        except Exception:
            logger.exception("could not re-enqueue step %s; the next tick tries again", step_id)
            WorkflowStep.objects.filter(pk=step_id).update(enqueued_at=None)
    return len(stalled)


def _queue_is_empty() -> bool:
    """Whether the step queue has no waiting messages (False when the broker cannot be asked)."""
    try:
        with current_app.connection_for_read() as connection:
            queue = current_app.conf.task_default_queue
            return connection.default_channel.queue_declare(queue=queue, passive=True).message_count == 0
    except Exception as exc:
        if getattr(exc, "reply_code", None) == 404 or "NOT_FOUND" in str(exc):
            return True  # nobody declared the queue yet: nothing waits in it
        logger.warning("could not read the queue length (%s); re-enqueueing only behind the queue's frontier", exc)
        return False


def workflow_tick(*, now: datetime | None = None) -> dict:
    """The periodic sweep (Celery beat): relay the outbox, then re-enqueue stalled steps."""
    return {"relayed": outbox_relay(now=now), "requeued": steps_requeue_stalled(now=now)}


def workflow_schedules_ensure() -> list:
    """Store the tick and the connector checks in django-celery-beat's tables (idempotent);
    `manage.py workflow_schedules`. Returns the PeriodicTask rows."""
    from .checks import connector_checks_schedule_ensure

    return [_tick_schedule_ensure(), connector_checks_schedule_ensure()]


def _tick_schedule_ensure():
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(
        every=settings.OFFICE_WORKFLOW_TICK_SECONDS, period=IntervalSchedule.SECONDS)
    task, _ = PeriodicTask.objects.update_or_create(
        name=TICK_TASK_NAME,
        defaults={"task": "workflows.tick", "interval": interval, "enabled": True, "crontab": None,
                  "expires": None, "one_off": False},
    )
    return task
