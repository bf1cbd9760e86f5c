"""The office socket: one per open map page. Parses and authorises frames, then calls services.

Movement goes to the process hub (batched); chat (`chat_socket.ChatSocketMixin`) goes through
`services.chat_message_send`, which persists before anything is announced, and is delivered
gap-free by per-thread cursors. What the socket loads at connect and its session checks are in
`socket_context`. Channel-layer events are handled here, chat's included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.sessions import InstanceSessionWrapper
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from office.daphne_frames import direct_text_sender
from office.events import map_editors_group, map_group, thread_group, user_group
from office.listening_socket import ListeningSocket
from office.observability import WS_CONNECTIONS, WS_ERRORS, WS_FRAMES_IN
from office.socket_dispatch import InOrderDispatch

from . import selectors, services
from .access_sweep import AccessSweep
from .chat_socket import ChatSocketMixin
from .hub import NODE_ID, Hub, Person
from .protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_SIGNED_IN,
    CLOSE_RATE_LIMITED,
    CLOSE_REPLACED,
    CLOSE_SESSION_EXPIRED,
    ProtocolError,
    TokenBucket,
    parse_client_frame,
)
from .sfu import SfuRefused, SfuUnavailable, sfu_configured, sfu_feed_owners_now
from .socket_context import SocketAccess, SocketContext, session_still_valid, socket_context_load

logger = logging.getLogger(__name__)

RATE_LIMIT_CLOSE_AFTER = 100  # frames refused within one connection before it is closed
MAX_STEPS_PER_SECOND = 5


class OfficeConsumer(InOrderDispatch, ChatSocketMixin, AsyncWebsocketConsumer):
    async def dispatch(self, message: dict) -> None:
        """Channels hops to a thread before every message to close stale database connections: at
        2,000 moves a second that hop was an eighth of the process. This socket reaches the database
        only through `database_sync_to_async`, which closes stale connections in its own thread."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    # --- lifecycle ---

    async def connect(self) -> None:
        wrapper = getattr(self.base_send, "__self__", None)  # see send_text
        self.frame_send = wrapper.real_send if isinstance(wrapper, InstanceSessionWrapper) else self.base_send
        self.frame_write = direct_text_sender(self.frame_send)  # see send_text
        self.user = self.scope["user"]
        self.joined = False
        # the megaphone and knocks (docs/adr/0022): pending knock lapses, announcements still showing
        self.knock_timers: dict[int, asyncio.Task] = {}
        self.sfu_asks: set[asyncio.Task] = set()  # `sfu.feeds` answers on their way
        self.announcements: dict[int, dict] = {}
        self.announcements_shown: set[int] = set()
        self.announcements_loaded = False
        await self.accept()
        if not self.user.is_authenticated:
            await self._close_with(CLOSE_NOT_SIGNED_IN, "not_signed_in", "sign in first")
            return
        self.user_id = self.user.id
        self.conn_id = uuid.uuid4().hex
        self.map_id = int(self.scope["url_route"]["kwargs"]["map_id"])
        self.session_key = self.scope["session"].session_key
        ctx = await database_sync_to_async(socket_context_load)(self.user, self.map_id, self.session_key)
        if ctx is None:
            await self._close_with(CLOSE_FORBIDDEN, "not_found", "no such map")
            return
        if ctx.session_expires_at is None or ctx.session_expires_at <= timezone.now():
            await self._close_with(CLOSE_SESSION_EXPIRED, "session_expired", "your session has expired; sign in again")
            return
        self.session_expires_at = ctx.session_expires_at
        self.layout, self.geometry, self.private_rooms = ctx.layout, ctx.geometry, ctx.private_rooms
        self.me = ctx.me
        self.access_checked_at = time.monotonic()
        self.bucket = TokenBucket(settings.OFFICE_WS_RATE_PER_SECOND, settings.OFFICE_WS_RATE_BURST, time.monotonic())
        # Walking speed: 5 steps a second, with a little slack for network jitter.
        self.steps = TokenBucket(MAX_STEPS_PER_SECOND, 3, time.monotonic())
        self.refused = 0
        self.last_rate_error = 0.0
        self.cell = settings.OFFICE_AOI_CELL_TILES
        self.hub = await Hub.current()

        self.x, self.y = await self._starting_tile(ctx)
        room = self.geometry.room_at(self.x, self.y)
        self.room_id = room.id if room else None
        self.in_private = bool(room and room.private)
        self.move_seq = 0

        self._chat_cursors_open(ctx.threads)  # chat_socket: cursors from ?resume=, backlog after hello
        self.groups_joined = [user_group(self.user_id), map_group(self.map_id)] + [thread_group(t) for t in self.cursors]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)

        person = Person(
            user=self.user_id, name=self.me["name"], color=self.me["color"], status=self.me["status"],
            x=self.x, y=self.y, seq=0, room=self.room_id, private=self.in_private, conn=self.conn_id,
            node=NODE_ID,
        )
        await self.hub.join(self, self.map_id, person)
        self.joined = True
        self.access_sweep = AccessSweep.current()
        self.access_sweep.add(self)
        WS_CONNECTIONS.inc()
        await database_sync_to_async(services.room_visit_move)(user=self.user, from_room_id=None,
                                                               to_room_id=self.room_id)
        await self._send_json({
            "type": "hello",
            "protocol": 1,
            "me": self.me,
            "you": {"x": self.x, "y": self.y, "room": self.room_id},
            "map": self.layout,
            "threads": ctx.threads,
            "presence": self.hub.presence_list(self.map_id),
            "members": ctx.members,
            "tick_ms": settings.OFFICE_MOVE_TICK_MS,
            "ice_servers": json.loads(settings.OFFICE_ICE_SERVERS_JSON),
            "ice_transport_policy": settings.OFFICE_ICE_TRANSPORT_POLICY,
            "node": NODE_ID,
            "limits": {
                "max_frame_bytes": settings.OFFICE_WS_MAX_FRAME_BYTES,
                "rate_per_second": settings.OFFICE_WS_RATE_PER_SECOND,
                "chat_max_chars": settings.OFFICE_CHAT_MAX_CHARS,
            },
        })
        frame = self.hub.visible_moves_frame(self.map_id, self.aoi_keys())
        if frame:
            await self.send(text_data=frame)
        await self.on_room_changed(None, self.room_id)
        await self._chat_fill_gaps()

    async def _starting_tile(self, ctx: SocketContext) -> tuple[int, int]:
        """Where the member left off, else their desk, else the map's spawn point; never a refused room."""
        for candidate in (await self.hub.last_position(self.map_id, self.user_id), ctx.desk):
            if candidate is None:
                continue
            x, y = candidate
            room = self.geometry.room_at(x, y)
            if self.geometry.passable(x, y) and not (room and room.private and room.id not in self.private_rooms):
                return x, y
        return self.geometry.nearest_free_tile(*self.geometry.spawn)

    async def disconnect(self, code) -> None:
        knocking = bool(getattr(self, "knock_timers", None))
        self._knock_timers_cancel()
        if knocking:  # they left the door: their knocks lapse now
            await database_sync_to_async(services.room_knocks_lapse_overdue)(user_id=self.user_id)
        for task in list(getattr(self, "sfu_asks", ())):
            task.cancel()
        if getattr(self, "joined", False):
            self.joined = False
            WS_CONNECTIONS.dec()
            self.access_sweep.discard(self)
            await self.hub.leave(self, self.map_id)
            await database_sync_to_async(services.room_visit_move)(user=self.user, from_room_id=self.room_id,
                                                                   to_room_id=None)
            await self.on_room_changed(self.room_id, None)
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    # --- the hub's view of this socket ---

    def aoi_keys(self) -> list:
        cx, cy = self.x // self.cell, self.y // self.cell
        keys: list = [(cx + dx, cy + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
        if self.in_private:
            keys.append(("p", self.room_id))
        return keys

    async def send_text(self, text: str) -> None:
        """One frame, straight to the connection under Daphne (office.daphne_frames: its reply layers
        were a sixth of a busy node), else straight to the server: Channels' session middleware wraps
        every send to save the session on an HTTP response, which a WebSocket frame never is."""
        if self.frame_write is not None and self.frame_write(text):
            return
        await self.frame_send({"type": "websocket.send", "text": text})

    async def replaced(self) -> None:
        self.joined = False
        WS_CONNECTIONS.dec()
        await self._close_with(CLOSE_REPLACED, "replaced", "the office was opened in another tab or window")

    # --- frames from the client ---

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if not getattr(self, "joined", False):
            return
        try:
            if text_data is not None and (
                len(text_data) > settings.OFFICE_WS_MAX_FRAME_BYTES
                or len(text_data.encode()) > settings.OFFICE_WS_MAX_FRAME_BYTES
            ):
                raise ProtocolError("too_large", f"frames are limited to {settings.OFFICE_WS_MAX_FRAME_BYTES} bytes")
            if bytes_data is not None and len(bytes_data) > settings.OFFICE_WS_MAX_FRAME_BYTES:
                raise ProtocolError("too_large", f"frames are limited to {settings.OFFICE_WS_MAX_FRAME_BYTES} bytes")
            if not await self._session_ok():
                return
            now = time.monotonic()
            if not self.bucket.take(now):
                await self._refuse_for_rate(now)
                return
            frame_type, payload = parse_client_frame(text_data)
            WS_FRAMES_IN.labels(frame_type).inc()
            handler = getattr(self, "on_" + frame_type.replace(".", "_"))
            await handler(**payload)
        except ProtocolError as exc:
            await self._send_error(exc)
        except ValidationError as exc:
            await self._send_error(ProtocolError("invalid", "; ".join(exc.messages)))
        except selectors.NotFound as exc:
            await self._send_error(ProtocolError("not_found", str(exc)))

    def access_entry(self) -> tuple[str | None, int, int]:
        return self.session_key, self.user_id, self.map_id

    async def access_refreshed(self, access: SocketAccess) -> None:
        """The process's access sweep re-read this socket's rights (rooms.access_sweep)."""
        if not self.joined:
            return
        self.access_checked_at = time.monotonic()
        if access.session_expires_at is None:
            await self._close_with(CLOSE_SESSION_EXPIRED, "session_expired", "your session has expired; sign in again")
            return
        self.session_expires_at = access.session_expires_at
        self.private_rooms = access.private_rooms

    async def _session_ok(self) -> bool:
        now = time.monotonic()
        expired = self.session_expires_at <= timezone.now()
        # The access sweep refreshes every socket each period; check alone only when it is overdue.
        overdue_after = 2 * settings.OFFICE_ACCESS_RECHECK_SECONDS + 1 if settings.OFFICE_ACCESS_RECHECK_SECONDS else 0
        if not expired and now - self.access_checked_at >= overdue_after:
            self.access_checked_at = now
            expires_at = await database_sync_to_async(session_still_valid)(self.session_key, self.user_id)
            if expires_at is None:
                expired = True
            else:
                self.session_expires_at = expires_at
                self.private_rooms = await database_sync_to_async(selectors.private_room_ids_for)(
                    self.user, self.map_id
                )
        if expired:
            await self._close_with(CLOSE_SESSION_EXPIRED, "session_expired", "your session has expired; sign in again")
            return False
        return True

    async def _refuse_for_rate(self, now: float) -> None:
        self.refused += 1
        if self.refused >= RATE_LIMIT_CLOSE_AFTER:
            await self._close_with(CLOSE_RATE_LIMITED, "rate_limited", "too many frames; connection closed")
            return
        if now - self.last_rate_error >= 1.0:
            self.last_rate_error = now
            await self._send_error(ProtocolError(
                "rate_limited", f"more than {settings.OFFICE_WS_RATE_PER_SECOND} frames per second; frame dropped"
            ))

    async def on_ping(self) -> None:
        await self._send_json({"type": "pong", "t": int(time.time() * 1000)})

    async def on_move(self, x: int, y: int, seq: int) -> None:
        problem = self.geometry.step_problem((self.x, self.y), (x, y))
        if problem is None and not self.steps.take(time.monotonic()):
            problem = "walking too fast (5 steps a second at most)"
        room = self.geometry.room_at(x, y) if problem is None else None
        room_id = room.id if room else None
        if problem is None:
            problem = self.geometry.entry_problem(
                room, from_room_id=self.room_id, member_of=self.private_rooms,
                occupancy=lambda rid: self.hub.occupancy(self.map_id, rid),
            )
        if problem is not None:
            await self._send_json({"type": "move.rejected", "seq": seq, "x": self.x, "y": self.y, "reason": problem})
            return
        old_keys = (self.x // self.cell, self.y // self.cell, self.in_private)
        self.x, self.y, self.move_seq = x, y, seq
        old_room_id = self.room_id
        self.room_id, self.in_private = room_id, bool(room and room.private)
        self.hub.move(self.map_id, self.user_id, x, y, seq, room_id, self.in_private)
        if room_id != old_room_id:
            await self._room_changed(old_room_id)
        if old_keys != (self.x // self.cell, self.y // self.cell, self.in_private):
            frame = self.hub.visible_moves_frame(self.map_id, self.aoi_keys())
            if frame:
                await self.send(text_data=frame)

    async def on_status_set(self, status: str) -> None:
        await database_sync_to_async(services.profile_set_status)(user=self.user, status=status)
        await self.hub.update(self.map_id, self.user_id, status=status)

    # --- the megaphone and knocking on private rooms (docs/adr/0022) ---

    async def on_room_knock(self, room: int) -> None:
        """Knock on the door of a private room one stands at: its members on this map are asked."""
        shape = self.geometry.room(room)
        if shape is None or not shape.private:
            raise ProtocolError("cannot_knock", "only a private room's door can be knocked on", "room.knock")
        if room in self.private_rooms:
            raise ProtocolError("cannot_knock", f"you may already enter {shape.name}", "room.knock")
        if not self.geometry.at_door_of(shape, self.x, self.y):
            raise ProtocolError("cannot_knock", f"stand at the door of {shape.name} to knock", "room.knock")
        try:
            knock = await database_sync_to_async(services.room_knock)(user=self.user, room_id=room)
        except services.KnockTooSoon as exc:
            raise ProtocolError("knock_rate_limited", exc.messages[0], "room.knock") from exc
        await self._send_json({"type": "room.knock.result", "knock": knock.pk, "room": room, "result": "waiting",
                               "by": None, "answer_within": services.KNOCK_ANSWER_SECONDS})
        self.knock_timers[knock.pk] = asyncio.create_task(self._knock_lapse_later(knock.pk))

    async def on_room_knock_answer(self, knock: int, let_in: bool) -> None:
        """A member lets a knocker in, or ignores them (the first answer wins)."""
        await database_sync_to_async(services.room_knock_answer)(user=self.user, knock_id=knock, let_in=let_in)

    # --- the SFU (docs/adr/0023) ---

    async def on_sfu_feeds(self, room: int) -> None:
        """Who published each feed of the SFU room one stands in (pages label voices and tiles by it).
        Answered from a task: a scan of the SFU takes a while, and this socket's moves never wait on it."""
        if room != self.room_id or not sfu_configured():
            raise ProtocolError("not_in_room", "ask only about the SFU room you stand in", "sfu.feeds")
        task = asyncio.create_task(self._sfu_feeds_answer(room))
        self.sfu_asks.add(task)
        task.add_done_callback(self.sfu_asks.discard)

    async def _sfu_feeds_answer(self, room: int) -> None:
        try:
            owners = await sfu_feed_owners_now(room)
        except (SfuUnavailable, SfuRefused) as exc:
            logger.warning("feed owners of sfu room %s not read: %s", room, exc)
            await self._send_error(ProtocolError("sfu_unavailable", "the SFU did not answer; ask again", "sfu.feeds"))
            return
        if room == self.room_id:  # else they walked out meanwhile: the feeds are not theirs to know
            await self._send_json({"type": "sfu.feeds", "room": room,
                                   "owners": {str(feed): user for feed, user in sorted(owners.items())}})

    async def _knock_lapse_later(self, knock_id: int) -> None:
        await asyncio.sleep(services.KNOCK_ANSWER_SECONDS)
        self.knock_timers.pop(knock_id, None)
        await database_sync_to_async(services.room_knock_lapse)(knock_id=knock_id)

    def _knock_timers_cancel(self) -> None:
        for timer in getattr(self, "knock_timers", {}).values():  # also when connect ended early
            timer.cancel()
        self.knock_timers = {}

    async def room_knock(self, event: dict) -> None:
        """Someone knocks on a room this member belongs to (their pages on the room's map are asked)."""
        if event["knock"]["map"] == self.map_id:
            await self._send_json({"type": "room.knock", "knock": event["knock"],
                                   "answer_within": services.KNOCK_ANSWER_SECONDS})

    async def room_knock_answered(self, event: dict) -> None:
        """This member's knock was answered or lapsed; let in, the new right holds from now on."""
        if event["map"] != self.map_id:
            return
        timer = self.knock_timers.pop(event["knock"], None)
        if timer is not None:
            timer.cancel()
        if event["result"] == "accepted":
            self.private_rooms = await database_sync_to_async(selectors.private_room_ids_for)(self.user, self.map_id)
        await self._send_json({"type": "room.knock.result", "knock": event["knock"], "room": event["room"],
                               "result": event["result"], "by": event["by"], "answer_within": None})

    async def room_knock_closed(self, event: dict) -> None:
        """Another member answered (or no one did): the prompt goes away."""
        await self._send_json({"type": "room.knock.closed", "knock": event["knock"], "result": event["result"]})

    async def announcement_made(self, event: dict) -> None:
        announcement = event["announcement"]
        self.announcements[announcement["id"]] = announcement  # for those who walk in while it shows
        await self._announce_if_here(announcement)

    async def _announce_if_here(self, announcement: dict) -> None:
        shown = self.announcements_shown
        if announcement["id"] in shown or announcement["room"] not in (None, self.room_id):
            return
        if datetime.fromisoformat(announcement["ends_at"]) <= timezone.now():
            self.announcements.pop(announcement["id"], None)
            return
        shown.add(announcement["id"])
        await self._send_json({"type": "announcement", "announcement": announcement})

    async def _megaphone_room_changed(self, old_room_id: int | None, new_room_id: int | None) -> None:
        if not self.announcements_loaded:  # the first call comes from connect
            self.announcements_loaded = True
            for announcement in await database_sync_to_async(selectors.announcements_active_on)(self.map_id):
                self.announcements.setdefault(announcement["id"], announcement)
        if not self.joined:
            return  # the socket is closing: a page reload keeps a guest's pass
        old = self.geometry.room(old_room_id) if old_room_id is not None else None
        if old is not None and old.private and await database_sync_to_async(services.room_guest_pass_end)(
                user=self.user, room_id=old.id):
            self.private_rooms = await database_sync_to_async(selectors.private_room_ids_for)(self.user, self.map_id)
        for announcement in list(self.announcements.values()):
            await self._announce_if_here(announcement)

    # --- events from the channel layer (group sends after commit) ---

    async def chat_message(self, event: dict) -> None:
        message = event["message"]
        thread, seq = message["thread"], message["seq"]
        cursor = self.cursors.get(thread)
        if cursor is None or seq <= cursor:
            return  # not subscribed, or already delivered
        if seq == cursor + 1:
            self.cursors[thread] = seq
            await self._send_json({"type": "chat.message", "message": message})
        else:
            await self._catch_up(thread)  # the layer dropped something: the database fills the gap

    async def thread_added(self, event: dict) -> None:
        await self._add_thread(event["thread"], from_seq=0)

    async def access_changed(self, event: dict) -> None:
        await self._refresh_access()

    async def sfu_join(self, event: dict) -> None:
        """Office granted this person the meeting room's SFU (rooms/sfu.py); stale once they walked on."""
        if event["room"] == self.room_id:
            await self._send_json(event)

    async def map_changed(self, event: dict) -> None:
        def load():
            office_map = selectors.office_map_get(self.map_id)
            return selectors.map_layout_payload(office_map), selectors.map_geometry(office_map)

        try:
            self.layout, self.geometry = await database_sync_to_async(load)()
        except selectors.NotFound:
            await self._close_with(CLOSE_FORBIDDEN, "not_found", "this map was removed")
            return
        await self._send_json({"type": "map.changed", "map": self.layout})
        await self._relocate_if_refused("the map changed")

    # --- helpers ---

    async def _refresh_access(self) -> None:
        self.private_rooms = await database_sync_to_async(selectors.private_room_ids_for)(self.user, self.map_id)
        await self._threads_refresh()
        await self._relocate_if_refused("your access changed")

    async def _relocate_if_refused(self, reason: str) -> None:
        room = self.geometry.room_at(self.x, self.y)
        refused = room is not None and room.private and room.id not in self.private_rooms
        old_room_id = self.room_id
        if not refused and self.geometry.passable(self.x, self.y):
            if (room.id if room else None) != old_room_id:
                self.room_id, self.in_private = (room.id if room else None), bool(room and room.private)
                await self._room_changed(old_room_id)
            return
        self.x, self.y = self.geometry.nearest_free_tile(*self.geometry.spawn)
        room = self.geometry.room_at(self.x, self.y)
        self.room_id, self.in_private = (room.id if room else None), bool(room and room.private)
        self.hub.move(self.map_id, self.user_id, self.x, self.y, self.move_seq, self.room_id, self.in_private)
        if self.room_id != old_room_id:
            await self._room_changed(old_room_id)
        await self._send_json({"type": "move.rejected", "seq": self.move_seq, "x": self.x, "y": self.y, "reason": reason})

    async def _room_changed(self, old_room_id: int | None) -> None:
        """Tell everyone, record the visit (meetings start and end from visits), run the hook."""
        await self.hub.update(self.map_id, self.user_id, room=self.room_id, private=self.in_private)
        await database_sync_to_async(services.room_visit_move)(user=self.user, from_room_id=old_room_id,
                                                               to_room_id=self.room_id)
        await self.on_room_changed(old_room_id, self.room_id)

    async def on_room_changed(self, old_room_id: int | None, new_room_id: int | None) -> None:
        """Extension point for later stages (meeting captions and audio): called after the change.
        Here: a guest pass ends when its guest walks out, and announcements to the new room show."""
        await self._megaphone_room_changed(old_room_id, new_room_id)

    async def _send_json(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload, separators=(",", ":")))

    async def _send_error(self, error: ProtocolError) -> None:
        WS_ERRORS.labels(error.code).inc()
        await self._send_json(error.frame())

    async def _close_with(self, code: int, error_code: str, message: str) -> None:
        WS_ERRORS.labels(error_code).inc()
        await self._send_json({"type": "error", "code": error_code, "message": message, "fatal": True})
        await self.close(code=code)


class MapEditorConsumer(ListeningSocket):
    """The map editor's socket (admins only; `ws/maps/<id>/edit/`): the layout on connect, then again
    after every committed change to it, whoever made it (another admin's editor, REST, the Django
    admin). It only listens: the editor writes through the REST API. Its own group, not the map's, so
    it hears of nothing but the layout."""

    async def connect(self) -> None:
        self.user = self.scope["user"]
        await self.accept()
        if not self.user.is_authenticated:
            await self._close_with(CLOSE_NOT_SIGNED_IN, "not_signed_in", "sign in first")
            return
        if not self.user.is_staff:
            await self._close_with(CLOSE_FORBIDDEN, "forbidden", "only admins edit the map")
            return
        self.map_id = int(self.scope["url_route"]["kwargs"]["map_id"])
        # Join first, then load: a change committed in between is sent again, never missed.
        await self.listen(map_editors_group(self.map_id))
        layout = await database_sync_to_async(self._layout)()
        if layout is None:
            await self._close_with(CLOSE_FORBIDDEN, "not_found", "no such map")
            return
        await self._send_json({"type": "hello", "map": layout})

    async def map_changed(self, event: dict) -> None:
        layout = await database_sync_to_async(self._layout)()
        if layout is None:
            await self._close_with(CLOSE_FORBIDDEN, "not_found", "this map was removed")
            return
        await self._send_json({"type": "map.changed", "map": layout})

    def _layout(self) -> dict | None:
        try:
            return selectors.map_layout_payload(selectors.office_map_get(self.map_id))
        except selectors.NotFound:
            return None

    async def _close_with(self, code: int, error_code: str, message: str) -> None:
        await self._send_json({"type": "error", "code": error_code, "message": message, "fatal": True})
        await self.close(code=code)
