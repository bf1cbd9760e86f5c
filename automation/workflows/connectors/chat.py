"""Room chat: a message from the office in a room's thread, posted once per idempotency key."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from rooms import services as room_services
from rooms.models import Room

from ..errors import PermanentError


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
