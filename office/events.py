"""Live events go out only after the write they describe has committed."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def send_event(group: str, event: dict) -> None:
    """Group send from sync code; a failure is logged, never raised (the layer is only a nudge)."""
    try:
        async_to_sync(get_channel_layer().group_send)(group, event)
    except Exception:
        logger.exception("live event to %s could not be sent", group, extra={"event_type": event.get("type")})


def send_event_on_commit(group: str, event: dict) -> None:
    """Queue a channel-layer group send for when the current transaction commits (now, if none).

    The layer is a nudge, not a store: a lost send costs latency, never data, because receivers
    detect sequence gaps and read the database.
    """
    transaction.on_commit(lambda: send_event(group, event))


def thread_group(thread_id: int) -> str:
    return f"chat.thread.{thread_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def map_group(map_id: int) -> str:
    return f"map.{map_id}"


def room_group(room_id: int) -> str:
    """The sockets of the people standing in a room (joined by transcription's socket mixin); named
    here so that every stage may address it (iot: agendas) without importing transcription."""
    return f"room.{room_id}"


def map_editors_group(map_id: int) -> str:
    """The map editors open on a map (admins): they hear only of layout changes."""
    return f"map.{map_id}.editors"
