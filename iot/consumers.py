"""Live sensor events on sockets.

`OccupancySocketMixin` joins the office socket (office/routing.py): it forwards `iot.occupancy`
group events on the map group as `room.occupancy` frames, which the map draws as room badges.
`AgendaSocketMixin` forwards `agenda.changed` from the room group (the people standing in the room,
who may read it) to the Agenda panel.
`SensorsConsumer` serves the sensors page: `sensor.reading` and `rule.fired` frames for sensors in
rooms the member may enter (admins: all). Both are nudges; the pages load state over REST.
"""

from __future__ import annotations

import json
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import selectors
from .services import SENSORS_GROUP

CLOSE_NOT_SIGNED_IN = 4401


class OccupancySocketMixin:
    async def iot_occupancy(self, event: dict) -> None:
        await self._send_json({
            "type": "room.occupancy", "room": event["room"], "count": event["count"],
            "present": event["present"], "at": event["at"],
        })


class AgendaSocketMixin:
    async def agenda_changed(self, event: dict) -> None:
        await self._send_json(event)


class SensorsConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope["user"]
        await self.accept()
        if not self.user.is_authenticated:
            await self.send(text_data=json.dumps({"type": "error", "code": "not_signed_in", "fatal": True}))
            await self.close(code=CLOSE_NOT_SIGNED_IN)
            return
        await self._load_access()
        await self.channel_layer.group_add(SENSORS_GROUP, self.channel_name)
        self.joined = True
        await self.send(text_data=json.dumps({"type": "hello"}))

    async def _load_access(self) -> None:
        self.rooms = await database_sync_to_async(selectors.room_ids_visible_to)(self.user)
        self.access_checked_at = time.monotonic()

    async def disconnect(self, code) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(SENSORS_GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The page only listens; a ping keeps proxies from closing the socket."""
        if text_data == '{"type":"ping"}':
            await self.send(text_data=json.dumps({"type": "pong"}))

    async def _may_see(self, room_id: int | None) -> bool:
        if time.monotonic() - self.access_checked_at > settings.OFFICE_ACCESS_RECHECK_SECONDS:
            await self._load_access()
        if self.rooms is None:
            return True
        return room_id is not None and room_id in self.rooms

    async def iot_reading(self, event: dict) -> None:
        if await self._may_see(event["room"]):
            await self.send(text_data=json.dumps({"type": "sensor.reading", "sensor": event["sensor"],
                                                  "reading": event["reading"]}))

    async def iot_firing(self, event: dict) -> None:
        if await self._may_see(event["room"]):
            await self.send(text_data=json.dumps({"type": "rule.fired", **{k: v for k, v in event.items()
                                                                           if k != "type"}}))
