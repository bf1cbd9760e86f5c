"""What a fired rule does outside this app: a facilities ticket (the work kernel in `automation`)
and a message in the room's chat (`rooms`). Both are idempotent by key, and both run inside the
evaluator's transaction, so a firing, its ticket and its message commit together or not at all."""

from __future__ import annotations

import logging

from automation.services import ticket_open
from rooms.models import Room
from rooms.services import system_message_send

logger = logging.getLogger(__name__)


def facilities_ticket_open(*, room: Room, severity: str, title: str, detail: str, dedupe_key: str,
                           actor_label: str) -> int:
    """Open (or find the open) facilities ticket for this episode; its id."""
    ticket, _created = ticket_open(
        kind="facilities", room=room, severity=severity, title=title, detail=detail, source="iot",
        dedupe_key=dedupe_key, actor_label=actor_label,
    )
    return ticket.id


def room_chat_post(*, room: Room, body: str, client_id: str) -> int:
    message, _created = system_message_send(room=room, body=body, client_id=client_id)
    return message.id
