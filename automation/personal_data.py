"""Erasure and export of what automation holds about a person (tasks, reminders, digests,
calendars, notifications), and the audit entry of every export, erasure and retention sweep (run
by `rooms.personal_data`)."""

from __future__ import annotations

from django.db.models import Q

from . import selectors
from .models import AuditEntry, BusyInterval, CalendarFeed, Digest, Reminder, Task, Ticket
from .services import task_update
from .services.audit import _audit
from .workflows.models import Approval, Notification


def person_work_erase(*, user, actor, reassign_to=None) -> dict[str, int]:
    """Inside the erasure's transaction: their tasks pass to `reassign_to` (else are left unowned),
    each change audited; their reminders, digests, calendars and notifications go."""
    counts = {"tasks_reassigned": 0}
    for task in Task.objects.filter(owner=user):
        task_update(task, actor=actor, reason="the owner's personal data was erased", owner=reassign_to)
        counts["tasks_reassigned"] += 1
    Task.objects.filter(created_by=user).update(created_by=None)
    Ticket.objects.filter(opened_by=user).update(opened_by=None)
    Approval.objects.filter(assignee=user).update(assignee=None)
    counts["reminders"], _ = Reminder.objects.filter(user=user).delete()
    counts["digests"], _ = Digest.objects.filter(user=user).delete()
    BusyInterval.objects.filter(user=user).delete()
    counts["calendar_feeds"], _ = CalendarFeed.objects.filter(user=user).delete()
    counts["notifications"], _ = Notification.objects.filter(user=user).delete()
    # the trail keeps what they did, not who they were: their entries' label becomes the anonymous name
    AuditEntry.objects.filter(actor=user).update(actor_label=f"erased-{user.pk}")
    return counts


def person_work_export(*, user) -> dict:
    """Their tasks (owned or created), reminders, digests, calendars and notifications."""
    tasks = Task.objects.filter(Q(owner=user) | Q(created_by=user)).order_by("created_at")
    return {
        "tasks": [selectors.task_payload(t) for t in tasks],
        "reminders": [selectors.reminder_payload(r) for r in Reminder.objects.filter(user=user)],
        "digests": [selectors.digest_payload(d) for d in Digest.objects.filter(user=user)],
        "calendar_feeds": [{"name": f.name, "url": f.url, "uploaded": bool(f.content),
                            "last_imported_at": f.last_imported_at.isoformat() if f.last_imported_at else None}
                           for f in CalendarFeed.objects.filter(user=user)],
        "notifications": [{"title": n.title, "body": n.body, "url": n.url, "at": n.created_at.isoformat()}
                          for n in Notification.objects.filter(user=user).order_by("created_at")],
    }


def personal_data_audit(*, action: str, user, actor, counts: dict) -> None:
    """One audit entry per export, erasure or sweep: who did it, to whom, and what it touched."""
    _audit(subject_type="person" if user is not None else "retention", subject_id=user.pk if user else 0,
           action=action, actor=actor, after=counts)
