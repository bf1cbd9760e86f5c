"""Tickets as room knowledge: the work kernel feeds its tickets into the assistant's index.

A ticket is knowledge of its room ("is the projector in Atlas fixed?"). It changes, so its chunk is
replaced when its text or room does. The chunk carries its own label and link, so the assistant
cites it without knowing this app's pages.
"""

from __future__ import annotations

from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat

from assistant.models import KnowledgeChunk
from assistant.services import knowledge_source_replace

from .models import Ticket

SOURCE_KIND = "ticket"


def ticket_source_id(ticket_id: int) -> str:
    return f"ticket:{ticket_id}"


def tickets_index(ticket_ids: list[int]) -> int:
    """(Re)index these tickets; a ticket without a room (or whose room is gone) is no room's knowledge."""
    stored = 0
    for ticket in Ticket.objects.filter(pk__in=ticket_ids).select_related("room"):
        items = []
        if ticket.room_id is not None:
            detail = f" {ticket.detail}" if ticket.detail else ""
            items.append({
                "room": ticket.room, "source_kind": SOURCE_KIND, "source_id": ticket_source_id(ticket.pk),
                "locator": {"ticket": ticket.pk, "title": ticket.title, "status": ticket.status,
                            "label": f"Ticket #{ticket.pk}: {ticket.title}".rstrip(": "),
                            "url": f"/tickets/?show=all#ticket-{ticket.pk}"},
                "text": (f"Ticket #{ticket.pk} ({ticket.get_kind_display()}, {ticket.get_severity_display()}, "
                         f"{ticket.get_status_display()}) in {ticket.room.name}: {ticket.title}.{detail}")[:8000],
            })
        stored += len(knowledge_source_replace(source_kind=SOURCE_KIND, source_id=ticket_source_id(ticket.pk),
                                               items=items))
    return stored


def tickets_out_of_date():
    """Tickets in a room with no chunk, or changed since their chunk was made (a lost enqueue)."""
    key = Concat(Value("ticket:"), Cast(OuterRef("pk"), CharField()))
    fresh = KnowledgeChunk.objects.filter(source_kind=SOURCE_KIND, source_id=key, room_id=OuterRef("room_id"),
                                          created_at__gte=OuterRef("updated_at"))
    return Ticket.objects.filter(room__isnull=False).filter(~Exists(fresh)).order_by("-pk")


def tickets_sweep(*, limit: int = 500) -> int:
    ticket_ids = list(tickets_out_of_date().values_list("pk", flat=True)[:limit])
    return tickets_index(ticket_ids) if ticket_ids else 0
