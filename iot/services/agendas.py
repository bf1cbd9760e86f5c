"""Agendas of booked meetings (docs/adr/0021): drafted and posted to the room's chat once, shortly
before the booking starts, then edited by the participants with optimistic concurrency.

The draft's content (open action items, the last meeting's open questions, documents since) comes
from `automation.selectors.agenda_draft_items`, which reads the assistant's records and knows which
approved items' tasks are done; iot knows the bookings, so it decides when and stores the result.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from automation.selectors import agenda_draft_items
from office.events import room_group, send_event_on_commit
from rooms.services import system_message_send

from .. import selectors
from ..models import Agenda, RoomBooking

logger = logging.getLogger(__name__)

AGENDA_MAX_ITEMS = 50
AGENDA_ITEM_TEXT_MAX = 500
AGENDA_URL_MAX = 300
REF_MAX = 2**62
CHAT_LINE_MAX = 160
CHAT_LINES_MAX = 15
KIND_LABELS = {"question": "Open question: ", "document": "New document: "}


def _announce(agenda: Agenda) -> None:
    """To the people in the room, once the write commits (a nudge: the panel reloads over REST)."""
    send_event_on_commit(room_group(agenda.room_id),
                         {"type": "agenda.changed", "agenda": selectors.agenda_payload(agenda)})


def _reloaded(agenda_id: int) -> Agenda:
    return Agenda.objects.select_related("room", "booking__organizer__profile", "edited_by__profile").get(pk=agenda_id)


def agenda_chat_text(agenda: Agenda) -> str:
    """The message posted to the room's chat: when, and the items (the first few, each on one line)."""
    start = timezone.localtime(agenda.starts_at)
    lines = [f"Agenda for “{agenda.title}” at {start:%H:%M} {start.tzname()}:"]
    for n, item in enumerate(agenda.items[:CHAT_LINES_MAX], 1):
        text = KIND_LABELS.get(item["kind"], "") + item["text"]
        lines.append(f"{n}. {text if len(text) <= CHAT_LINE_MAX else text[:CHAT_LINE_MAX - 1] + '…'}")
    if len(agenda.items) > CHAT_LINES_MAX:
        lines.append(f"… and {len(agenda.items) - CHAT_LINES_MAX} more")
    if not agenda.items:
        lines.append("Nothing carried over from earlier meetings.")
    lines.append("Participants can edit it in the Agenda panel of the room.")
    text = "\n".join(lines)
    limit = settings.OFFICE_CHAT_MAX_CHARS
    return text if len(text) <= limit else text[:limit - 1] + "…"


def agenda_post_for_booking(*, booking_id: int, now: datetime | None = None) -> tuple[Agenda | None, bool]:
    """Draft the booking's agenda and post it to its room's chat: (agenda, whether this call did).

    Once per booking however often it runs: the booking's row lock serialises two ticks, the
    one-to-one key holds in the database, and the chat message's client_id comes from the booking.
    The agenda and the message commit together; both are announced only after that."""
    now = now or timezone.now()
    with transaction.atomic():
        booking = RoomBooking.objects.select_for_update().select_related("room").filter(pk=booking_id).first()
        if booking is None:
            return None, False
        existing = Agenda.objects.filter(booking=booking).first()
        if existing is not None:
            return existing, False
        items = agenda_draft_items(room_id=booking.room_id, before=booking.start)
        agenda = Agenda.objects.create(booking=booking, room=booking.room, title=booking.title,
                                       starts_at=booking.start, ends_at=booking.end, items=items)
        message, _ = system_message_send(room=booking.room, body=agenda_chat_text(agenda),
                                         client_id=f"agenda:booking:{booking.pk}")
        agenda.posted_at = now
        agenda.chat_message_id = message.pk
        agenda.save(update_fields=["posted_at", "chat_message_id"])
        agenda = _reloaded(agenda.pk)
        _announce(agenda)
    logger.info("agenda %s drafted for booking %s with %s items", agenda.pk, booking_id, len(items))
    return agenda, True


def agendas_post_due(*, now: datetime | None = None) -> int:
    """The beat tick: every booking that starts within OFFICE_AGENDA_LEAD_MINUTES and has no agenda
    gets one; returns how many were posted. One booking's failure is logged and the rest go on."""
    now = now or timezone.now()
    posted = 0
    for booking_id in selectors.bookings_without_agenda(now=now, lead_minutes=settings.OFFICE_AGENDA_LEAD_MINUTES):
        try:
            _, created = agenda_post_for_booking(booking_id=booking_id, now=now)
        except Exception:
            logger.exception("the agenda of booking %s could not be drafted", booking_id)
            continue
        posted += created
    return posted


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def agenda_items_clean(items) -> list[dict]:
    """Edited items as stored: known kinds, one line of text each, a ref that is an id or null, and
    a link only inside the office (a path, never another site or a script)."""
    if not isinstance(items, list):
        raise ValidationError("items must be a list")
    if len(items) > AGENDA_MAX_ITEMS:
        raise ValidationError(f"an agenda has at most {AGENDA_MAX_ITEMS} items")
    cleaned = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ValidationError(f"item {n} is not an object")
        kind = item.get("kind", Agenda.ItemKind.CUSTOM)
        if kind not in Agenda.ItemKind.values:
            raise ValidationError(f"item {n}: kind must be one of {', '.join(Agenda.ItemKind.values)}")
        text = item.get("text")
        text = " ".join(text.split()) if isinstance(text, str) else ""
        if not text:
            raise ValidationError(f"item {n} has no text")
        if len(text) > AGENDA_ITEM_TEXT_MAX:
            raise ValidationError(f"item {n} is longer than {AGENDA_ITEM_TEXT_MAX} characters")
        ref = item.get("ref")
        if ref is not None and not (_whole(ref) and 1 <= ref <= REF_MAX):
            raise ValidationError(f"item {n}: ref must be an id or null")
        url = item.get("url") or ""
        if not isinstance(url, str) or len(url) > AGENDA_URL_MAX or (
                url and (not url.startswith("/") or url.startswith("//") or "\\" in url)):
            raise ValidationError(f"item {n}: url must be a path inside the office")
        cleaned.append({"kind": kind, "text": text, "ref": ref if kind != Agenda.ItemKind.CUSTOM else None,
                        "url": url})
    return cleaned


def agenda_update(*, user, agenda_id: int, version: int, items) -> Agenda:
    """Replace the items (added, removed, reordered, reworded) if nobody saved since `version`.

    The version check is the UPDATE's own condition, so two editors cannot both win; the loser gets a
    ValidationError with code "conflict" (409) and reloads what the other saved."""
    agenda = selectors.agenda_for_user(user, agenda_id)
    if not selectors.agenda_may_edit(user, agenda):
        raise PermissionDenied("only the meeting's participants may edit its agenda")
    if not _whole(version) or version < 1:
        raise ValidationError("version must be the agenda's version you edited")
    cleaned = agenda_items_clean(items)
    with transaction.atomic():
        updated = Agenda.objects.filter(pk=agenda.pk, version=version).update(
            items=cleaned, version=F("version") + 1, edited_by=user, edited_at=timezone.now())
        if not updated:
            raise ValidationError("someone else changed this agenda meanwhile: reload it and edit again",
                                  code="conflict")
        agenda = _reloaded(agenda.pk)
        _announce(agenda)
    return agenda
