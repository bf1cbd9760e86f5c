"""Retention, erasure and export for the meeting calendar: room bookings and their agendas.

An agenda retells meetings (their open questions, action items and new documents), so it is kept as
long as the room keeps transcripts, counted from the meeting's end. A booking names its organizer:
on erasure it passes to the successor when one is named, else it stays on the anonymous account so
the people invited still have their room; whoever last edited an agenda is forgotten."""

from __future__ import annotations

from datetime import datetime

from rooms.selectors import expired_records_filter

from .models import Agenda, RoomBooking


def calendar_records_expire(*, now: datetime) -> dict[str, int]:
    expired = expired_records_filter("transcripts", now=now, time_field="ends_at")
    if expired is None:
        return {}
    deleted, _ = Agenda.objects.filter(expired).delete()
    return {"agendas": deleted}


def person_calendar_erase(*, user, reassign_to=None) -> dict[str, int]:
    counts = {"agendas_edited_forgotten": Agenda.objects.filter(edited_by=user).update(edited_by=None)}
    if reassign_to is not None:
        counts["room_bookings_reassigned"] = RoomBooking.objects.filter(organizer=user).update(organizer=reassign_to)
    return counts


def person_calendar_export(*, user) -> dict:
    return {
        "room_bookings": [
            {"room": b.room.name, "room_id": b.room_id, "title": b.title, "start": b.start.isoformat(),
             "end": b.end.isoformat()}
            for b in RoomBooking.objects.filter(organizer=user).select_related("room").order_by("start")
        ],
        "agendas_last_edited": [
            {"room": a.room.name, "room_id": a.room_id, "title": a.title, "starts_at": a.starts_at.isoformat(),
             "edited_at": a.edited_at.isoformat() if a.edited_at else None, "items": a.items}
            for a in Agenda.objects.filter(edited_by=user).select_related("room").order_by("starts_at")
        ],
    }
