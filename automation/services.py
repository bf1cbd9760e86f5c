"""Writes to the work state. People, agents and automations change tasks, tickets, reminders and
digests only through these functions: each validates, writes in one transaction together with an
`AuditEntry` (who or which automation, why, before and after), and announces after commit.

`actor` is a user or, for automations, a label such as "rule:projector-offline",
"workflow:task.remind step 2" or "approval #12".
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from office.events import send_event_on_commit, user_group
from rooms.models import Room
from rooms.services import SYSTEM_USERNAME

from . import calendars, selectors
from .delivery import member_notify
from .models import AuditEntry, BusyInterval, CalendarFeed, Digest, Reminder, Task, Ticket

logger = logging.getLogger(__name__)
User = get_user_model()

REMINDER_ACTOR = "schedule:reminders"
DIGEST_ACTOR = "schedule:digests"


# --- audit ---

def _actor(actor) -> tuple[Any, str]:
    """(user or None, label) for an actor given as a user or an automation's label."""
    if actor is None or actor == "":
        raise ValidationError("every change needs an actor (a user or an automation label)")
    if isinstance(actor, str):
        return None, actor[:120]
    return actor, actor.get_username()


def _audit(*, subject_type: str, subject_id: int, action: str, actor, reason: str = "",
           before: dict | None = None, after: dict | None = None) -> AuditEntry:
    user, label = _actor(actor)
    return AuditEntry.objects.create(
        subject_type=subject_type, subject_id=subject_id, action=action, actor=user, actor_label=label,
        reason=reason or "", before=before or {}, after=after or {},
    )


def _diff(before: dict, after: dict) -> tuple[dict, dict]:
    changed = [key for key in after if before.get(key) != after[key]]
    return {k: before.get(k) for k in changed}, {k: after[k] for k in changed}


# --- tasks ---

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


def _action_item_candidates(item) -> list:
    """Who could own an action item: the meeting's participants, else the room's members."""
    people = []
    if getattr(item, "meeting_id", None):
        people = [p.user for p in item.meeting.participants.select_related("user__profile").order_by("joined_at", "id")]
    if not people and item.room_id:
        people = [m.user for m in item.room.memberships.select_related("user__profile").order_by("id")]
    return [u for u in people if u.is_active and u.get_username() != SYSTEM_USERNAME]


def action_item_owner_suggest(item, *, participant_ids) -> None:
    """A proposal the meeting gave no owner: suggest the participant the calendars say is free
    before the due date, with the reason (who is free how long) for whoever approves it."""
    if item.owner_id is not None:
        return
    candidates = list(User.objects.filter(pk__in=participant_ids, is_active=True))
    if not candidates:
        return
    with transaction.atomic():  # a savepoint: a failure here leaves the proposal's transaction usable
        user, reason = selectors.owner_suggest(candidates=candidates, due_date=item.due_date, now=timezone.now())
        item.suggested_owner = user
        item.owner_reason = reason or ""
        item.save(update_fields=["suggested_owner", "owner_reason"])


def task_create_from_action_item(item, *, actor) -> Task:
    """The task for an approved action item (one per item, however often this is called).

    Owner: the item's owner, else its suggested owner, else whoever of the meeting has the most free
    calendar time before the due date, else nobody. Provenance links back to the item, its transcript
    segments and the model that proposed it.
    """
    existing = Task.objects.filter(source_kind=Task.SourceKind.ACTION_ITEM, source_id=str(item.pk)).first()
    if existing is not None:
        return existing
    owner, owner_how, owner_reason = None, "unassigned", ""
    if getattr(item, "owner_id", None):
        owner, owner_how, owner_reason = item.owner, "owner", getattr(item, "owner_reason", "") or ""
    elif getattr(item, "suggested_owner_id", None):
        owner, owner_how, owner_reason = item.suggested_owner, "suggested", getattr(item, "owner_reason", "") or ""
    else:
        owner, owner_reason = selectors.owner_suggest(
            candidates=_action_item_candidates(item), due_date=item.due_date, now=timezone.now()
        )
        owner_how = "calendar" if owner is not None else "unassigned"
    if owner is not None and not owner.is_active:
        owner, owner_how = None, "unassigned"
    provenance = {
        "action_item": item.pk,
        "meeting": getattr(item, "meeting_id", None),
        "segments": list(getattr(item, "source_segment_ids", None) or []),
        "speaker": getattr(item, "speaker_id", None),
        "model_id": getattr(item, "model_id", ""),
        "prompt_version": getattr(item, "prompt_version", ""),
        "confidence": getattr(item, "confidence", None),
        "owner_from": owner_how,
        "owner_reason": owner_reason,
    }
    text = (item.text or "").strip()
    description = text if len(" ".join(text.split())) > 200 else ""
    try:
        with transaction.atomic():
            return task_create(
                title=text, description=description, owner=owner, due_date=item.due_date, room=item.room,
                source_kind=Task.SourceKind.ACTION_ITEM, source_id=str(item.pk), provenance=provenance,
                actor=actor, reason=f"action item #{item.pk} approved",
            )
    except IntegrityError:
        # A concurrent approval made the task first.
        existing = Task.objects.filter(source_kind=Task.SourceKind.ACTION_ITEM, source_id=str(item.pk)).first()
        if existing is None:
            raise
        return existing


# --- tickets ---

TICKET_FIELDS = ("severity", "title", "detail", "status")
TICKET_TRANSITIONS = {
    Ticket.Status.OPEN: {Ticket.Status.ACKNOWLEDGED, Ticket.Status.RESOLVED, Ticket.Status.CLOSED},
    Ticket.Status.ACKNOWLEDGED: {Ticket.Status.OPEN, Ticket.Status.RESOLVED, Ticket.Status.CLOSED},
    Ticket.Status.RESOLVED: {Ticket.Status.OPEN, Ticket.Status.CLOSED},
    Ticket.Status.CLOSED: set(),
}


def _ticket_state(ticket: Ticket) -> dict:
    return {
        "kind": ticket.kind,
        "room": ticket.room_id,
        "severity": ticket.severity,
        "title": ticket.title,
        "detail": ticket.detail,
        "status": ticket.status,
        "dedupe_key": ticket.dedupe_key,
    }


def _announce_ticket(ticket: Ticket) -> None:
    """Facilities (admins) and whoever reported it see ticket changes live."""
    payload = selectors.ticket_payload(ticket)
    staff = set(User.objects.filter(is_staff=True, is_active=True).values_list("id", flat=True))
    for uid in staff | ({ticket.opened_by_id} - {None}):
        send_event_on_commit(user_group(uid), {"type": "ticket.changed", "ticket": payload})


def ticket_open(
    *,
    kind: str,
    room: Room | None,
    severity: str,
    title: str,
    detail: str,
    source: str,
    dedupe_key: str,
    actor_label: str,
    actor=None,
) -> tuple[Ticket, bool]:
    """Open a ticket, or return the open one with the same `dedupe_key` (a rule firing twice opens
    one ticket; the database's partial unique index settles races). Returns (ticket, created).
    An empty `dedupe_key` always opens a new ticket."""
    if kind not in Ticket.Kind.values:
        raise ValidationError(f"kind must be one of {', '.join(Ticket.Kind.values)}")
    if severity not in Ticket.Severity.values:
        raise ValidationError(f"severity must be one of {', '.join(Ticket.Severity.values)}")
    if not isinstance(title, str) or not title.strip():
        raise ValidationError("a ticket needs a title")
    dedupe_key = (dedupe_key or "")[:200]
    audit_actor = actor if actor is not None else actor_label
    _actor(audit_actor)

    def open_one() -> Ticket | None:
        if not dedupe_key:
            return None
        return Ticket.objects.select_related("room").filter(
            dedupe_key=dedupe_key, status__in=Ticket.OPEN_STATUSES
        ).first()

    existing = open_one()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            ticket = Ticket.objects.create(
                kind=kind, room=room, severity=severity, title=" ".join(title.split())[:200], detail=detail or "",
                dedupe_key=dedupe_key, source=(source or actor_label)[:120], opened_by=actor,
            )
            _audit(subject_type="ticket", subject_id=ticket.pk, action="opened", actor=audit_actor,
                   reason=detail or "", after=_ticket_state(ticket))
            _announce_ticket(ticket)
    except IntegrityError:
        existing = open_one()
        if existing is None:
            raise
        return existing, False
    return ticket, True


def ticket_update(ticket: Ticket, *, actor, reason: str = "", **changes) -> Ticket:
    """Change severity, title, detail or status (along the allowed transitions), audited. Only
    facilities staff (admins) and automations (an actor given as a label) change tickets."""
    if not isinstance(actor, str) and actor is not None and not getattr(actor, "is_staff", False):
        raise PermissionDenied("only facilities staff (admins) change tickets")
    unknown = set(changes) - set(TICKET_FIELDS)
    if unknown:
        raise ValidationError(f"cannot change {', '.join(sorted(unknown))}")
    if "severity" in changes and changes["severity"] not in Ticket.Severity.values:
        raise ValidationError(f"severity must be one of {', '.join(Ticket.Severity.values)}")
    if "status" in changes and changes["status"] not in Ticket.Status.values:
        raise ValidationError(f"status must be one of {', '.join(Ticket.Status.values)}")
    _actor(actor)
    try:
        with transaction.atomic():
            locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
            before = _ticket_state(locked)
            new_status = changes.get("status", locked.status)
            if new_status != locked.status and new_status not in TICKET_TRANSITIONS[locked.status]:
                raise ValidationError(f"a {locked.status} ticket cannot become {new_status}")
            for key, value in changes.items():
                setattr(locked, key, value)
            before_diff, after_diff = _diff(before, _ticket_state(locked))
            if not after_diff:
                return locked
            if "status" in after_diff:
                if new_status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED):
                    locked.resolved_at = locked.resolved_at or timezone.now()
                else:
                    locked.resolved_at = None
            locked.save()
            action = f"status:{locked.status}" if set(after_diff) == {"status"} else "updated"
            _audit(subject_type="ticket", subject_id=locked.pk, action=action, actor=actor, reason=reason,
                   before=before_diff, after=after_diff)
            _announce_ticket(locked)
    except IntegrityError as exc:
        raise ValidationError("another open ticket already has this dedupe key") from exc
    locked.refresh_from_db()
    return locked


def ticket_resolve(ticket: Ticket, *, actor, reason: str = "") -> Ticket:
    return ticket_update(ticket, actor=actor, reason=reason, status=Ticket.Status.RESOLVED)


# --- reminders ---

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


# --- digests ---

def _digest_window_start(user, date: dt.date, now: dt.datetime) -> dt.datetime:
    """Since the previous digest was made (or a day back for someone's first)."""
    previous = Digest.objects.filter(user=user, date__lt=date).order_by("-date").first()
    return previous.created_at if previous is not None else now - dt.timedelta(days=1)


def digest_build(*, user, date: dt.date, now: dt.datetime | None = None) -> Digest | None:
    """Build (or refresh, until it is sent) a member's digest for `date`; None when there is nothing to say."""
    now = now or timezone.now()
    with transaction.atomic():
        existing = Digest.objects.select_for_update().filter(user=user, date=date).first()
        if existing is not None and existing.sent_at is not None:
            return existing
        content = selectors.digest_content_for(user, date=date, since=_digest_window_start(user, date, now), now=now)
        if selectors.digest_is_empty(content) and existing is None:
            return None
        text = selectors.digest_text(user, content)
        if existing is None:
            return Digest.objects.create(user=user, date=date, content=content, text=text)
        existing.content, existing.text = content, text
        existing.save(update_fields=["content", "text"])
        return existing


def digests_build(date: dt.date, *, now: dt.datetime | None = None) -> list[Digest]:
    """Every active member's digest for `date` (members with nothing to read get none)."""
    now = now or timezone.now()
    digests = []
    for user in selectors.active_members():
        digest = digest_build(user=user, date=date, now=now)
        if digest is not None:
            digests.append(digest)
    return digests


def digest_send(digest: Digest, *, now: dt.datetime | None = None) -> bool:
    """Send a digest at most once: a conditional UPDATE claims it; False if already sent."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = Digest.objects.filter(pk=digest.pk, sent_at__isnull=True).update(sent_at=now)
        if not claimed:
            return False
        digest.sent_at = now
        _audit(subject_type="digest", subject_id=digest.pk, action="sent", actor=DIGEST_ACTOR,
               reason=f"daily digest for {digest.date.isoformat()}", before={"sent_at": None},
               after={"sent_at": now.isoformat()})
        counts = {key: len(digest.content.get(key, [])) for key in ("due", "assigned", "missed")}
        member_notify(
            user_id=digest.user_id, kind="digest.ready", title=f"Your digest for {digest.date:%a %d %b}",
            body=digest.text, data={"digest": digest.pk, "date": digest.date.isoformat(), **counts},
            idempotency_key=f"digest:{digest.pk}", url="/tasks/",
        )
    return True


def digests_send_daily(date: dt.date | None = None, *, now: dt.datetime | None = None) -> int:
    """Build and send today's digests (the daily beat entry); safe to run twice."""
    now = now or timezone.now()
    date = date or timezone.localdate(now)
    return sum(digest_send(d, now=now) for d in digests_build(date, now=now) if d.sent_at is None)


# --- calendars (free/busy) ---

def calendar_feed_add(*, user, actor, name: str = "", url: str = "", content: str = "") -> CalendarFeed:
    """Add a member's calendar: uploaded ICS text (the member or an admin), or an http(s) URL that
    only an admin may set up (the server fetches it). Uploaded text is imported at once."""
    url, content = (url or "").strip(), content or ""
    if bool(url) == bool(content):
        raise ValidationError("give either a feed URL or the ICS text")
    if url:
        if not getattr(actor, "is_staff", False):
            raise ValidationError("only an admin can set up a calendar feed URL")
        if not url.lower().startswith(("http://", "https://")):
            raise ValidationError("a calendar feed URL must be http or https")
    else:
        if len(content.encode()) > settings.OFFICE_CALENDAR_MAX_BYTES:
            raise ValidationError("the calendar file is too large")
        try:
            calendars.parse(content)  # reject a broken file before storing it
        except calendars.CalendarError as exc:
            raise ValidationError(str(exc)) from exc
        if getattr(actor, "pk", None) != user.pk and not getattr(actor, "is_staff", False):
            raise ValidationError("members can only add their own calendar")
    feed = CalendarFeed.objects.create(
        user=user, name=(name or "")[:120], url=url, content=content,
        configured_by=actor if getattr(actor, "pk", None) else None,
    )
    if content:
        calendar_feed_import(feed)
    return feed


def calendar_feed_import(feed: CalendarFeed, *, now: dt.datetime | None = None) -> int:
    """Replace the feed's busy intervals with those in its calendar (from now-1 day to the horizon).
    A fetch or parse failure is recorded on the feed and raised; the old intervals stay."""
    now = now or timezone.now()
    try:
        text = feed.content if not feed.url else calendars.fetch(feed.url)
        intervals = calendars.busy_intervals(
            text, start=now - dt.timedelta(days=1), end=now + dt.timedelta(days=settings.OFFICE_CALENDAR_HORIZON_DAYS)
        )
    except calendars.CalendarError as exc:
        CalendarFeed.objects.filter(pk=feed.pk).update(last_error=str(exc)[:1000])
        raise ValidationError(f"calendar could not be imported: {exc}") from exc
    with transaction.atomic():
        BusyInterval.objects.filter(feed=feed).delete()
        BusyInterval.objects.bulk_create(
            BusyInterval(user_id=feed.user_id, feed=feed, start=lo, end=hi, source=f"feed:{feed.pk}:{uid}"[:255])
            for lo, hi, uid in intervals
        )
        CalendarFeed.objects.filter(pk=feed.pk).update(last_imported_at=now, last_error="")
    return len(intervals)


def calendar_import_all(*, now: dt.datetime | None = None) -> dict:
    """Re-import every URL feed (periodic); one broken feed does not stop the others."""
    result = {"imported": 0, "failed": 0}
    for feed in CalendarFeed.objects.exclude(url="").order_by("id"):
        try:
            calendar_feed_import(feed, now=now)
            result["imported"] += 1
        except ValidationError:
            logger.warning("calendar feed %s could not be imported", feed.pk)
            result["failed"] += 1
    return result
