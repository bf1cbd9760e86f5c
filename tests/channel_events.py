"""What a room's group heard, for tests that check live events: a channel joined to the group, then
every event sent to it so far (the channel layer is the test Redis)."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from office.events import room_group


def listen(room_id: int) -> str:
    """A new channel in the room's group (joined now: it hears what is sent from here on)."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(room_group(room_id), channel)
    return channel


def drain(channel: str) -> list[dict]:
    """Every event the group sent to `channel` so far, in order."""
    layer = get_channel_layer()

    async def all_waiting():
        frames = []
        while True:
            try:
                frames.append(await asyncio.wait_for(layer.receive(channel), 0.3))
            except TimeoutError:
                return frames

    return async_to_sync(all_waiting)()
