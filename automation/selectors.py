"""Reads of the work state: who may see which task or ticket, JSON payloads, free/busy time and
owner suggestions, and what goes into a member's daily digest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import CharField, Count, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from assistant import selectors as assistant_selectors
from rooms import selectors as room_selectors
from rooms.models import Room, RoomMembership, RoomVisit
from rooms.services import SYSTEM_USERNAME

from .models import AuditEntry, BusyInterval, CalendarFeed, Digest, Reminder, Task, Ticket
from .serializers import AuditEntryOut, DigestOut, ReminderOut, TaskOut, TicketOut

User = get_user_model()


NotFound = room_selectors.NotFound  # missing or not visible to the asker: the same answer for both


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _name(user) -> str | None:
    return room_selectors.display_name(user) if user is not None else None


# --- payloads (JSON-safe; used by the API, live events and audit snapshots) ---

def task_payload(task: Task) -> dict:
    return dict(TaskOut(task).data)


def ticket_payload(ticket: Ticket) -> dict:
    return dict(TicketOut(ticket).data)


def reminder_payload(reminder: Reminder) -> dict:
    return dict(ReminderOut(reminder).data)


def digest_payload(digest: Digest) -> dict:
    return dict(DigestOut(digest).data)


def audit_payload(entry: AuditEntry) -> dict:
    return dict(AuditEntryOut(entry).data)


def audit_trail(subject_type: str, subject_id: int) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(subject_type=subject_type, subject_id=subject_id).order_by("at", "id")


def active_members() -> QuerySet:
    """People who can own tasks and get digests: active accounts, not the office's own system user."""
    return User.objects.filter(is_active=True).exclude(username=SYSTEM_USERNAME).select_related("profile")


# --- visibility ---

def tasks_visible_to(user) -> QuerySet[Task]:
    """Admins see every task; members their own and those of rooms they may enter."""
    tasks = Task.objects.select_related("owner__profile", "room")
    if user.is_staff:
        return tasks
    return tasks.filter(
        Q(owner=user) | Q(created_by=user) | Q(room__in=room_selectors.rooms_visible_to(user))
    ).distinct()


def task_for_user(user, task_id: int) -> Task:
    task = tasks_visible_to(user).filter(pk=task_id).first()
    if task is None:
        raise NotFound("no such task")
    return task


def tasks_for_tab(user, *, tab: str, room_id: int | None = None, include_closed: bool = False) -> QuerySet[Task]:
    """The tasks page's tabs: all I may see, mine, my team (rooms I am a member of), or one room I may enter."""
    tasks = tasks_visible_to(user)
    if tab == "all":
        pass
    elif tab == "mine":
        tasks = tasks.filter(owner=user)
    elif tab == "team":
        team_rooms = RoomMembership.objects.filter(user=user).values("room_id")
        tasks = tasks.filter(room_id__in=team_rooms)
    elif tab == "room":
        room_selectors.room_get_visible(user=user, room_id=room_id)
        tasks = tasks.filter(room_id=room_id)
    else:
        raise NotFound("no such tab")
    if not include_closed:
        tasks = tasks.filter(status__in=Task.ACTIVE_STATUSES)
    return tasks.order_by("due_date", "id")


def tickets_visible_to(user) -> QuerySet[Ticket]:
    """Admins (facilities) see every ticket; members those in rooms they may enter and their own."""
    tickets = Ticket.objects.select_related("room")
    if user.is_staff:
        return tickets
    return tickets.filter(Q(opened_by=user) | Q(room__in=room_selectors.rooms_visible_to(user))).distinct()


def ticket_for_user(user, ticket_id: int) -> Ticket:
    ticket = tickets_visible_to(user).filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFound("no such ticket")
    return ticket


def digests_for(user, *, limit: int = 60) -> QuerySet[Digest]:
    """A member's own digests, newest first."""
    return Digest.objects.filter(user=user).order_by("-date")[:limit]


def digest_for_user(user, date: dt.date) -> Digest:
    digest = Digest.objects.filter(user=user, date=date).first()
    if digest is None:
        raise NotFound("no digest for that day")
    return digest


# --- free/busy and owner suggestions ---

def calendar_feeds_for(user) -> QuerySet[CalendarFeed]:
    """A member's calendar feeds, each with how many busy intervals it holds (one query)."""
    return CalendarFeed.objects.filter(user=user).annotate(busy_intervals=Count("intervals")).order_by("id")


def _working_windows(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Working hours (settings, in the server's time zone) that fall between start and end."""
    tz = timezone.get_default_timezone()
    start, end = start.astimezone(tz), end.astimezone(tz)
    windows = []
    day = start.date()
    while day <= end.date():
        if day.weekday() in settings.OFFICE_CALENDAR_WORK_DAYS:
            open_at = dt.datetime.combine(day, dt.time(settings.OFFICE_CALENDAR_WORK_START_HOUR), tz)
            close_at = dt.datetime.combine(day, dt.time(0), tz) + dt.timedelta(hours=settings.OFFICE_CALENDAR_WORK_END_HOUR)
            lo, hi = max(open_at, start), min(close_at, end)
            if hi > lo:
                windows.append((lo, hi))
        day += dt.timedelta(days=1)
    return windows


def _merge(intervals: Iterable[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    merged: list[list[dt.datetime]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def free_seconds(windows: list[tuple[dt.datetime, dt.datetime]], busy: list[tuple[dt.datetime, dt.datetime]]) -> float:
    """Seconds of `windows` not covered by `busy` (busy intervals may overlap each other)."""
    busy = _merge(busy)
    total = 0.0
    for lo, hi in windows:
        covered = sum(
            (min(hi, b_hi) - max(lo, b_lo)).total_seconds() for b_lo, b_hi in busy if b_lo < hi and b_hi > lo
        )
        total += (hi - lo).total_seconds() - covered
    return total


def suggestion_window_end(due_date: dt.date | None, now: dt.datetime) -> dt.datetime:
    """Free time counts up to the end of the due day's working hours (a week ahead if no due date)."""
    if due_date is None:
        return now + dt.timedelta(days=7)
    tz = timezone.get_default_timezone()
    return dt.datetime.combine(due_date, dt.time(0), tz) + dt.timedelta(hours=settings.OFFICE_CALENDAR_WORK_END_HOUR)


def _hours(seconds: float) -> str:
    hours = round(seconds / 3600, 1)
    return f"{hours:g} h"


@dataclass(frozen=True)
class Availability:
    user: object
    free_seconds: float
    active_tasks: int


def availability_for(candidates: Iterable, *, start: dt.datetime, end: dt.datetime) -> list[Availability]:
    """Free working time of each candidate between start and end, from their imported calendars."""
    people = []
    seen = set()
    for user in candidates:
        if user is not None and user.pk not in seen:
            seen.add(user.pk)
            people.append(user)
    windows = _working_windows(start, end)
    busy_by_user: dict[int, list] = {u.pk: [] for u in people}
    for user_id, lo, hi in BusyInterval.objects.filter(
        user_id__in=busy_by_user, start__lt=end, end__gt=start
    ).values_list("user_id", "start", "end"):
        busy_by_user[user_id].append((lo, hi))
    load = dict(
        Task.objects.filter(owner_id__in=busy_by_user, status__in=Task.ACTIVE_STATUSES)
        .values_list("owner_id")
        .annotate(n=Count("id"))
        .values_list("owner_id", "n")
    )
    return [Availability(u, free_seconds(windows, busy_by_user[u.pk]), load.get(u.pk, 0)) for u in people]


def owner_suggest(*, candidates: Iterable, due_date: dt.date | None, now: dt.datetime | None = None) -> tuple:
    """(user or None, reason): the candidate with the most free working hours between now and the
    end of the due day, by their imported calendars; ties go to the one with fewer open tasks.

    The reason names everyone's free time so a person approving the suggestion can judge it, e.g.
    "Bob is free 6 h before Fri 28 Nov; Alice is free 2 h; Carol is busy all day".
    """
    now = now or timezone.now()
    end = suggestion_window_end(due_date, now)
    people = availability_for(candidates, start=now, end=end)
    if not people:
        return None, "no candidates to choose from"
    if end <= now:
        return None, f"the due date {due_date:%a %d %b} has passed"
    windows = _working_windows(now, end)
    one_day = len({lo.date() for lo, _ in windows}) <= 1
    ranked = sorted(people, key=lambda a: (-a.free_seconds, a.active_tasks))
    best = ranked[0]
    horizon = f"before {due_date:%a %d %b}" if due_date is not None else "in the next 7 days"

    def phrase(a: Availability) -> str:
        name = _name(a.user)
        if a.free_seconds <= 0:
            return f"{name} is busy all day" if one_day else f"{name} has no free time {horizon}"
        return f"{name} is free {_hours(a.free_seconds)}"

    if best.free_seconds <= 0:
        return None, "; ".join(phrase(a) for a in ranked) or "nobody is free"
    parts = [f"{_name(best.user)} is free {_hours(best.free_seconds)} {horizon}"]
    parts += [phrase(a) for a in ranked[1:]]
    return best.user, "; ".join(parts)


# --- digest content ---

def _task_line(task: Task) -> dict:
    return {
        "id": task.id,
        "title": task.title,
        "due_date": _iso(task.due_date),
        "status": task.status,
        "room": task.room_id,
        "room_name": task.room.name if task.room_id else None,
        "owner": task.owner_id,
        "owner_name": _name(task.owner),
    }


def rooms_followed_by(user, *, now: dt.datetime) -> QuerySet[Room]:
    """Rooms whose news a member cares about: rooms they belong to or visited lately."""
    since = now - dt.timedelta(days=settings.OFFICE_DIGEST_ROOM_LOOKBACK_DAYS)
    visited = RoomVisit.objects.filter(user=user, entered_at__gte=since).values("room_id")
    member_of = RoomMembership.objects.filter(user=user).values("room_id")
    return room_selectors.rooms_visible_to(user).filter(Q(pk__in=visited) | Q(pk__in=member_of))


def _was_present(visits: list[tuple[int, dt.datetime, dt.datetime | None]], room_id: int, at: dt.datetime) -> bool:
    return any(r == room_id and entered <= at and (left is None or left >= at) for r, entered, left in visits)


def digest_content_for(user, *, date: dt.date, since: dt.datetime, now: dt.datetime) -> dict:
    """What a member should read today: due soon (and overdue), newly assigned to them since the
    last digest, and tasks made in rooms they follow while they were not there."""
    active = Task.objects.filter(status__in=Task.ACTIVE_STATUSES).select_related("owner__profile", "room")
    horizon = date + dt.timedelta(days=settings.OFFICE_DIGEST_DUE_DAYS)
    due = active.filter(owner=user, due_date__isnull=False, due_date__lte=horizon).order_by("due_date", "id")
    assigned = active.filter(owner=user, assigned_at__gt=since, assigned_at__lte=now).order_by("assigned_at", "id")
    followed = list(rooms_followed_by(user, now=now).values_list("id", flat=True))
    created_there = (
        Task.objects.filter(room_id__in=followed, created_at__gt=since, created_at__lte=now)
        .exclude(owner=user)
        .select_related("owner__profile", "room")
        .order_by("created_at", "id")
    )
    visits = list(
        RoomVisit.objects.filter(user=user, room_id__in=followed, entered_at__lte=now)
        .filter(Q(left_at__isnull=True) | Q(left_at__gte=since))
        .values_list("room_id", "entered_at", "left_at")
    )
    missed = [t for t in created_there if not _was_present(visits, t.room_id, t.created_at)]
    return {
        "date": date.isoformat(),
        "since": since.isoformat(),
        "due": [dict(_task_line(t), overdue=t.due_date < date) for t in due],
        "assigned": [_task_line(t) for t in assigned],
        "missed": [_task_line(t) for t in missed],
    }


def digest_text(user, content: dict) -> str:
    """The same digest as plain text (e-mail, chat)."""
    lines = [f"Good morning {_name(user)}, your digest for {content['date']}:"]
    sections = (
        ("due", "Due soon"),
        ("assigned", "Assigned to you since the last digest"),
        ("missed", "New in rooms you were away from"),
    )
    for key, heading in sections:
        items = content[key]
        if not items:
            continue
        lines.append("")
        lines.append(f"{heading}:")
        for item in items:
            bits = [item["title"]]
            if item.get("due_date"):
                bits.append(("OVERDUE since " if item.get("overdue") else "due ") + item["due_date"])
            if item.get("room_name"):
                bits.append(f"in {item['room_name']}")
            if key == "missed":
                bits.append(f"owner {item['owner_name'] or 'unassigned'}")
            lines.append("- " + ", ".join(bits))
    return "\n".join(lines)


def digest_is_empty(content: dict) -> bool:
    return not (content["due"] or content["assigned"] or content["missed"])


# --- agenda drafts (a booked meeting's agenda, stored by iot: docs/adr/0021) ---

AGENDA_ITEM_TEXT_MAX = 500


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= AGENDA_ITEM_TEXT_MAX else text[:AGENDA_ITEM_TEXT_MAX - 1] + "…"


def _action_item_line(item) -> str:
    bits = [item.text]
    if item.owner_id:
        bits.append(_name(item.owner))
    if item.due_date:
        bits.append(f"due {item.due_date.isoformat()}")
    if item.status == "proposed":
        bits.append("proposed")
    return bits[0] + (f" ({', '.join(bits[1:])})" if len(bits) > 1 else "")


def agenda_draft_items(*, room_id: int, before: dt.datetime, limit: int = 10) -> list[dict]:
    """The draft agenda of a meeting in `room_id` starting at `before`, as
    `[{"kind": "action_item" | "question" | "document", "text", "ref", "url"}]`: the room's open action
    items (proposed, or approved with a task that is neither done nor cancelled; rejected ones never),
    the last meeting's open questions, and the documents added since it. Oldest first, `limit` of each."""
    material = assistant_selectors.agenda_material(room_id=room_id, before=before, limit=limit)
    settled = Task.objects.filter(source_kind=Task.SourceKind.ACTION_ITEM,
                                  status__in=[Task.Status.DONE, Task.Status.CANCELLED]).values("source_id")
    open_items = (material.action_items.annotate(task_key=Cast("pk", output_field=CharField()))
                  .exclude(task_key__in=settled)[:limit])
    lines = [{"kind": "action_item", "text": _clip(_action_item_line(item)), "ref": item.pk,
              "url": f"/meetings/{item.meeting_id}/" if item.meeting_id else ""} for item in open_items]
    if material.last_meeting is not None:
        meeting_url = f"/meetings/{material.last_meeting.pk}/"
        lines += [{"kind": "question", "text": _clip(question), "ref": material.last_meeting.pk, "url": meeting_url}
                  for question in material.open_questions]
    lines += [{"kind": "document", "text": _clip(document.title or document.filename), "ref": document.pk,
               "url": f"/documents/{document.pk}/"} for document in material.documents]
    return lines
