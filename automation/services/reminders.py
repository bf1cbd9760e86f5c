"""Task reminders: one scheduled per owned, dated, open task; sent once when due."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import selectors
from ..delivery import member_notify
from ..models import Reminder, Task
from .audit import _audit

REMINDER_ACTOR = "schedule:reminders"


def reminder_time(due_date: dt.date, *, now: dt.datetime) -> dt.datetime:
    """OFFICE_TASK_REMINDER_LEAD_DAYS before the due day at OFFICE_TASK_REMINDER_HOUR; a task due
    sooner than that is reminded OFFICE_TASK_REMINDER_SOON_MINUTES from now."""
    tz = timezone.get_default_timezone()
    day = due_date - dt.timedelta(days=settings.OFFICE_TASK_REMINDER_LEAD_DAYS)
    at = dt.datetime.combine(day, dt.time(0), tz) + dt.timedelta(hours=settings.OFFICE_TASK_REMINDER_HOUR)
    if at <= now:
        at = now + dt.timedelta(minutes=settings.OFFICE_TASK_REMINDER_SOON_MINUTES)
    return at


def reminder_schedule(task: Task, *, actor=REMINDER_ACTOR, now: dt.datetime | None = None) -> Reminder | None:
    """Keep one scheduled reminder for the task's owner before its due date (none when the task has
    no owner or due date, or is finished); a stale one is cancelled. Returns the scheduled reminder."""
    now = now or timezone.now()
    with transaction.atomic():
        scheduled = list(Reminder.objects.select_for_update().filter(task_id=task.pk, status=Reminder.Status.SCHEDULED))
        wanted_user = task.owner_id if (task.owner_id and task.due_date and task.is_active) else None
        wanted_at = reminder_time(task.due_date, now=now) if wanted_user else None
        keep = None
        for reminder in scheduled:
            if keep is None and reminder.user_id == wanted_user and reminder.remind_at == wanted_at:
                keep = reminder
                continue
            reminder.status = Reminder.Status.CANCELLED
            reminder.save(update_fields=["status"])
            _audit(subject_type="reminder", subject_id=reminder.pk, action="cancelled", actor=actor,
                   reason=f"task #{task.pk} changed", before={"status": "scheduled"}, after={"status": "cancelled"})
        if keep is not None or wanted_user is None:
            return keep
        reminder = Reminder.objects.create(task_id=task.pk, user_id=wanted_user, remind_at=wanted_at)
        _audit(subject_type="reminder", subject_id=reminder.pk, action="scheduled", actor=actor,
               reason=f"task #{task.pk} is due {task.due_date.isoformat()}",
               after=selectors.reminder_payload(reminder))
    return reminder


def reminders_send_due(now: dt.datetime | None = None, *, batch_size: int = 100) -> int:
    """Send every reminder whose time has come, once: each is claimed under a row lock that other
    workers skip, marked sent and handed to delivery in the same transaction. Returns how many."""
    now = now or timezone.now()
    sent = 0
    while True:
        with transaction.atomic():
            batch = list(
                Reminder.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=Reminder.Status.SCHEDULED, remind_at__lte=now)
                .select_related("task", "task__room")
                .order_by("remind_at", "id")[:batch_size]
            )
            if not batch:
                return sent
            for reminder in batch:
                task = reminder.task
                if not task.is_active or task.owner_id != reminder.user_id:
                    reminder.status = Reminder.Status.CANCELLED
                    reminder.save(update_fields=["status"])
                    _audit(subject_type="reminder", subject_id=reminder.pk, action="cancelled", actor=REMINDER_ACTOR,
                           reason="task finished or reassigned", before={"status": "scheduled"},
                           after={"status": "cancelled"})
                    continue
                reminder.status = Reminder.Status.SENT
                reminder.sent_at = now
                reminder.save(update_fields=["status", "sent_at"])
                _audit(subject_type="reminder", subject_id=reminder.pk, action="sent", actor=REMINDER_ACTOR,
                       reason=f"task #{task.pk} is due {task.due_date.isoformat()}",
                       before={"status": "scheduled"}, after={"status": "sent", "sent_at": now.isoformat()})
                where = f" ({task.room.name})" if task.room_id else ""
                member_notify(
                    user_id=reminder.user_id, kind="task.reminder",
                    title=f"Due {task.due_date:%a %d %b}: {task.title}",
                    body=f"{task.title}{where} is due on {task.due_date:%A %d %B}.",
                    data={"task": task.pk, "reminder": reminder.pk, "due_date": task.due_date.isoformat()},
                    idempotency_key=f"reminder:{reminder.pk}", url="/tasks/",
                )
                sent += 1
