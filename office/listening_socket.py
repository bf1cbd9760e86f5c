"""A socket that only listens to one group (and answers a ping): the inbox bell and the map editor.
Subclasses authorise in `connect`, then call `listen(group)`; everything else is here."""

from __future__ import annotations

import json

from channels.generic.websocket import AsyncWebsocketConsumer


class ListeningSocket(AsyncWebsocketConsumer):
    group: str | None = None

    async def listen(self, group: str) -> None:
        """Join `group` (before loading any state, so a change committed meanwhile is heard, not missed)."""
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if text_data == '{"type":"ping"}':
            await self._send_json({"type": "pong"})

    async def _send_json(self, frame: dict) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))
