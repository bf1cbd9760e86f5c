"""Tasks: create and update (validated, audited, announced to owner and creator); the reminder follows."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from office.events import send_event_on_commit, user_group
from rooms.models import Room
from rooms.services import SYSTEM_USERNAME

from .. import selectors
from ..models import Task
from .audit import _actor, _audit, _diff
from .reminders import reminder_schedule

TASK_FIELDS = ("title", "description", "owner", "due_date", "status", "room")


def _task_state(task: Task) -> dict:
    return {
        "title": task.title,
        "description": task.description,
        "owner": task.owner_id,
        "due_date": task.due_date.isoformat() if task.due_date else None,
        "status": task.status,
        "room": task.room_id,
    }


def _clean_title(title) -> str:
    if not isinstance(title, str) or not title.strip():
        raise ValidationError("a task needs a title")
    title = " ".join(title.split())
    return title if len(title) <= 200 else title[:199] + "…"


def _clean_due_date(value) -> dt.date | None:
    """A date, an ISO "YYYY-MM-DD" string (forms), or nothing."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValidationError("due_date must be a date (YYYY-MM-DD)") from exc


def _check_owner(owner) -> None:
    if owner is not None and (not getattr(owner, "is_active", False) or owner.get_username() == SYSTEM_USERNAME):
        raise ValidationError("the owner must be an active member")


def _announce_task(task: Task, *, also_user_ids: tuple = ()) -> None:
    payload = selectors.task_payload(task)
    for uid in {task.owner_id, task.created_by_id, *also_user_ids} - {None}:
        send_event_on_commit(user_group(uid), {"type": "task.changed", "task": payload})


def task_create(
    *,
    title: str,
    actor,
    description: str = "",
    owner=None,
    due_date: dt.date | None = None,
    room: Room | None = None,
    source_kind: str = Task.SourceKind.MANUAL,
    source_id: str = "",
    provenance: dict | None = None,
    reason: str = "",
) -> Task:
    """Create a task (and its reminder when it has an owner and a due date)."""
    title = _clean_title(title)
    due_date = _clean_due_date(due_date)
    _check_owner(owner)
    if source_kind not in Task.SourceKind.values:
        raise ValidationError(f"source_kind must be one of {', '.join(Task.SourceKind.values)}")
    user, label = _actor(actor)
    now = timezone.now()
    with transaction.atomic():
        task = Task.objects.create(
            title=title, description=description or "", owner=owner, assigned_at=now if owner else None,
            due_date=due_date, room=room, source_kind=source_kind, source_id=str(source_id or ""),
            provenance=provenance or {}, created_by=user, created_by_label="" if user else label,
        )
        _audit(subject_type="task", subject_id=task.pk, action="created", actor=actor, reason=reason,
               after=_task_state(task))
        reminder_schedule(task, actor=actor, now=now)
        _announce_task(task)
    return task


def task_update(task: Task, *, actor, reason: str = "", **changes) -> Task:
    """Change a task's fields (title, description, owner, due_date, status, room); only real
    changes are written and audited. The reminder follows the owner, due date and status."""
    unknown = set(changes) - set(TASK_FIELDS)
    if unknown:
        raise ValidationError(f"cannot change {', '.join(sorted(unknown))}")
    if "title" in changes:
        changes["title"] = _clean_title(changes["title"])
    if "status" in changes and changes["status"] not in Task.Status.values:
        raise ValidationError(f"status must be one of {', '.join(Task.Status.values)}")
    if "owner" in changes:
        _check_owner(changes["owner"])
    if "due_date" in changes:
        changes["due_date"] = _clean_due_date(changes["due_date"])
    _actor(actor)
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        previous_owner_id = locked.owner_id
        before = _task_state(locked)
        for key, value in changes.items():
            setattr(locked, key, value)
        after_all = _task_state(locked)
        before_diff, after_diff = _diff(before, after_all)
        if not after_diff:
            return locked
        if "owner" in after_diff:
            locked.assigned_at = timezone.now() if locked.owner_id else None
        locked.save()
        action = f"status:{locked.status}" if set(after_diff) == {"status"} else "updated"
        _audit(subject_type="task", subject_id=locked.pk, action=action, actor=actor, reason=reason,
               before=before_diff, after=after_diff)
        if {"owner", "due_date", "status"} & set(after_diff):
            reminder_schedule(locked, actor=actor)
        _announce_task(locked, also_user_ids=(previous_owner_id,))
    locked.refresh_from_db()
    return locked
