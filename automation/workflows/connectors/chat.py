"""Room chat: a message from the office in a room's thread, posted once per idempotency key."""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError

from rooms import services as room_services
from rooms.models import Room

from ..errors import PermanentError, TransientError


class RoomChatConnector:
    name = "room_chat"
    transactional = True

    def deliver(self, message: dict, *, idempotency_key: str) -> dict:
        room = Room.objects.filter(pk=message.get("room_id")).first()
        if room is None:
            raise PermanentError(f"no room with id {message.get('room_id')!r}")
        try:
            posted, _created = room_services.system_message_send(
                room=room, body=str(message.get("body", "")), client_id=idempotency_key
            )
        except ValidationError as exc:
            raise PermanentError("; ".join(exc.messages)) from exc
        return {"thread_id": posted.thread_id, "seq": posted.seq}

    def breaker_name(self, message: dict) -> str:
        return self.name


def room_chat_check(timeout: float) -> str:
    """The synthetic check (docs/adr/0017), without posting: a message in a real room would be read by
    people. What a post needs beyond our database (which the step itself writes) is the channel layer
    that nudges the room's sockets, so this sends a marked event to a group of its own through a
    fresh layer object and waits for it to come back."""
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    try:
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    except Exception as exc:  # no layer configured: live posts are stored but nobody is nudged
        raise PermanentError(f"no channel layer: {exc}") from exc

    async def round_trip() -> None:
        group = f"office.synthetic_check.{uuid.uuid4().hex}"
        try:
            channel = await layer.new_channel()
            await layer.group_add(group, channel)
            await layer.group_send(group, {"type": "office.synthetic_check", "synthetic": True})
            message = await asyncio.wait_for(layer.receive(channel), timeout)
            if message.get("type") != "office.synthetic_check":
                raise TransientError(f"the channel layer returned {message.get('type')!r}")
            await layer.group_discard(group, channel)
        finally:
            close = getattr(layer, "close_pools", None)  # this layer object is ours alone: no pools left open
            if close is not None:
                await close()

    try:
        async_to_sync(round_trip)()
    except TransientError:
        raise
    except Exception as exc:
        raise TransientError(f"channel layer: {type(exc).__name__}: {exc}") from exc
    return f"{type(layer).__name__} round trip"
