"""Signal receivers: thin adapters that call one service (connected in `TranscriptionConfig.ready()`)."""

from __future__ import annotations

from . import services


def meeting_presence_follow(sender, *, user, left_room_id, entered_room_id, **kwargs) -> None:
    """Inside the room visit's transaction: start, join and end meetings as people come and go."""
    services.meetings_follow_presence(user=user, left_room_id=left_room_id, entered_room_id=entered_room_id)
