"""Facilities tickets: open (deduplicated by key), update along the allowed transitions, resolve."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from office.events import send_event_on_commit, user_group
from rooms.models import Room

from .. import selectors
from ..models import Ticket
from .audit import _actor, _audit, _diff

User = get_user_model()

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
