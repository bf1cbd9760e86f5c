"""Movement and presence fan-out: one hub per Daphne process (per event loop).

Sockets hand their moves to the hub; every tick the hub publishes one batch per map to the
channel layer group of all hubs (one layer message per process per tick, not one per move per
client), and each hub fans the batches it receives out to its own sockets, filtered by each
socket's area of interest (nearby grid cells, plus the private room it stands in). Presence
(join, leave, status, room) rides the same batches so it stays ordered with movement.

Shared state lives in Redis so any process can serve any member: a presence hash per map, the
last position per member, and a heartbeat key per process so members of a crashed process are
cleaned up by the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Protocol

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings

from office.observability import MOVE_BATCH_SIZE, MOVE_BATCHES, MOVE_TICK_PERIOD

logger = logging.getLogger(__name__)

NODE_ID = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def presence_key(map_id: int) -> str:
    return f"office:presence:{map_id}"


def last_position_key(map_id: int) -> str:
    return f"office:lastpos:{map_id}"


def node_key(node: str) -> str:
    return f"office:node:{node}"


def hub_group(map_id: int) -> str:
    return f"hub.map.{map_id}"


@dataclass
class Person:
    user: int
    name: str
    color: str
    status: str
    x: int
    y: int
    seq: int
    room: int | None
    private: bool
    conn: str
    node: str

    def presence(self) -> dict:
        return {"user": self.user, "name": self.name, "color": self.color, "status": self.status, "room": self.room}

    def record(self) -> str:
        """The shared record in Redis (`asdict` deep-copies: too slow for every mover every tick)."""
        return json.dumps({"user": self.user, "name": self.name, "color": self.color, "status": self.status,
                           "x": self.x, "y": self.y, "seq": self.seq, "room": self.room, "private": self.private,
                           "conn": self.conn, "node": self.node})

    def move_entry(self) -> str:
        return f"[{self.user},{self.x},{self.y},{self.seq}]"


class Observer(Protocol):
    """What the hub needs from a socket."""

    user_id: int
    conn_id: str

    def aoi_keys(self) -> list: ...

    async def send_text(self, text: str) -> None: ...

    async def replaced(self) -> None: ...


def visibility_key(x: int, y: int, room: int | None, private: bool, cell: int):
    return ("p", room) if private else (x // cell, y // cell)


class TickPacer:
    """How long the hub waits between movement ticks: the configured period while the event loop keeps
    up, stretched (up to `longest`) while the loop runs late, so a busy process sends fewer, fuller
    frames (the cost is per frame, not per move) instead of falling further behind.

    Lateness is smoothed: one tick's fan-out delays the next wake-up a little at any load; only a loop
    that stays a whole period late is saturated."""

    def __init__(self, base: float, longest: float):
        self.base, self.longest = base, max(base, longest)
        self.period = base
        self.lateness = 0.0

    def observe(self, lateness: float) -> float:
        """Feed how late the last wake-up was; returns the next period."""
        self.lateness = 0.8 * self.lateness + 0.2 * lateness
        if self.lateness > self.base:
            self.period = min(self.longest, self.period * 1.25)
        else:
            self.period = max(self.base, self.period * 0.9)
        return self.period


def merge_batch(outbox: dict[int, dict], map_id: int, moves: list, events: list) -> None:
    """Fold a later batch into the map's one still waiting to be published: events in order, the latest
    move per member (remembering where the first one started, which is where the others last saw them),
    and no move of someone who left after it (a batch's events are applied before its moves)."""
    box = outbox.setdefault(map_id, {"moves": {}, "events": []})
    for event in events:
        if event["e"] == "leave":
            box["moves"].pop(event["user"], None)
    box["events"].extend(events)
    for move in moves:
        earlier = box["moves"].get(move[0])
        box["moves"][move[0]] = move if earlier is None else [*move[:6], earlier[6]]


class MapState:
    def __init__(self, map_id: int):
        self.map_id = map_id
        self.people: dict[int, Person] = {}
        self.observers: dict[int, Observer] = {}
        self.pending_moves: dict[int, list] = {}
        self.pending_events: list[dict] = []
        # Received moves not yet sent to this process's sockets, as JSON entries per visibility key:
        # batches of several processes go out as one frame per socket (see Hub._apply_tick).
        self.undelivered: dict[tuple, list[str]] = {}
        self.delivery = asyncio.Lock()

    def occupancy(self, room_id: int) -> int:
        return sum(1 for p in self.people.values() if p.room == room_id)


class Hub:
    _by_loop: dict[int, Hub] = {}

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.redis = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        self.cell = settings.OFFICE_AOI_CELL_TILES
        self.tick_seconds = settings.OFFICE_MOVE_TICK_MS / 1000
        self.pacer = TickPacer(self.tick_seconds, settings.OFFICE_MOVE_TICK_MAX_MS / 1000)
        # A process is presumed dead after three missed heartbeats.
        self.heartbeat_seconds = settings.OFFICE_HUB_HEARTBEAT_SECONDS
        self.heartbeat_ttl = 3 * self.heartbeat_seconds
        self.channel: str | None = None
        self.maps: dict[int, MapState] = {}
        self._map_loading: dict[int, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task] = []
        self._outbox: dict[int, dict] = {}  # map id -> this process's batch waiting for the publisher
        self._outbox_wake = asyncio.Event()
        self._started = asyncio.Lock()
        # The shared presence record follows the movers off the tick's path (see _presence_loop).
        self._presence_dirty: dict[int, set[int]] = {}  # map id -> members whose record is behind
        self._presence_wake = asyncio.Event()
        self._presence_lock = asyncio.Lock()

    @classmethod
    async def current(cls) -> Hub:
        loop = asyncio.get_running_loop()
        hub = cls._by_loop.get(id(loop))
        if hub is None or hub._loop is not loop:
            hub = cls()
            hub._loop = loop
            cls._by_loop[id(loop)] = hub
        await hub._ensure_started()
        return hub

    async def _ensure_started(self) -> None:
        async with self._started:
            if self.channel is not None:
                return
            self.channel = await self.layer.new_channel()  # must share the "specific" prefix: channels-redis serves all local channels from one list
            await self.redis.set(node_key(NODE_ID), "1", ex=self.heartbeat_ttl)
            self._tasks = [
                asyncio.create_task(self._receive_loop(), name="hub-receive"),
                asyncio.create_task(self._tick_loop(), name="hub-tick"),
                asyncio.create_task(self._heartbeat_loop(), name="hub-heartbeat"),
                asyncio.create_task(self._presence_loop(), name="hub-presence"),
                asyncio.create_task(self._publisher_loop(), name="hub-publisher"),
            ]

    async def shutdown(self) -> None:
        if self._outbox:  # the last batch (a leave, say) still reaches the others
            try:
                await asyncio.wait_for(self._publish_outbox(), timeout=2)
            except TimeoutError:
                logger.warning("movement batches not published at shutdown")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        await self.redis.aclose()
        Hub._by_loop.pop(id(asyncio.get_running_loop()), None)

    # --- membership of sockets ---

    async def _map(self, map_id: int) -> MapState:
        state = self.maps.get(map_id)
        if state is not None:
            return state
        lock = self._map_loading.setdefault(map_id, asyncio.Lock())
        async with lock:
            if map_id in self.maps:
                return self.maps[map_id]
            state = MapState(map_id)
            await self.layer.group_add(hub_group(map_id), self.channel)
            raw = await self.redis.hgetall(presence_key(map_id))
            for value in raw.values():
                try:
                    person = Person(**json.loads(value))
                except (TypeError, ValueError):
                    continue
                state.people[person.user] = person
            self.maps[map_id] = state
        await self._drop_people_of_dead_nodes(state)
        return state

    async def last_position(self, map_id: int, user_id: int) -> tuple[int, int] | None:
        raw = await self.redis.hget(last_position_key(map_id), str(user_id))
        if not raw:
            return None
        try:
            x, y = (int(v) for v in raw.split(","))
        except ValueError:
            return None
        return x, y

    async def join(self, observer: Observer, map_id: int, person: Person) -> list[Person]:
        """Register a socket; returns everyone present (the caller filters positions by visibility)."""
        state = await self._map(map_id)
        previous = state.observers.get(person.user)
        state.observers[person.user] = observer
        if previous is not None and previous is not observer:
            await previous.replaced()
        state.people[person.user] = person
        async with self._presence_lock:
            await self.redis.hset(presence_key(map_id), str(person.user), person.record())
        state.pending_events.append({"e": "join", "person": asdict(person)})
        state.pending_moves[person.user] = [person.user, person.x, person.y, person.seq, person.room, person.private,
                                            visibility_key(person.x, person.y, person.room, person.private, self.cell)]
        return list(state.people.values())

    async def leave(self, observer: Observer, map_id: int) -> None:
        state = self.maps.get(map_id)
        if state is None:
            return
        if state.observers.get(observer.user_id) is observer:
            del state.observers[observer.user_id]
        person = state.people.get(observer.user_id)
        if person is None or person.conn != observer.conn_id:
            return  # a newer connection of the same member owns the presence now
        del state.people[observer.user_id]
        state.pending_moves.pop(observer.user_id, None)
        state.pending_events.append({"e": "leave", "user": observer.user_id, "conn": observer.conn_id})
        pipe = self.redis.pipeline(transaction=False)
        pipe.hdel(presence_key(map_id), str(observer.user_id))
        pipe.hset(last_position_key(map_id), str(observer.user_id), f"{person.x},{person.y}")
        async with self._presence_lock:  # after any record of theirs being written now, never before
            await pipe.execute()

    def move(self, map_id: int, user_id: int, x: int, y: int, seq: int, room: int | None, private: bool) -> None:
        """Queue a member's new position for the next tick (the last one in a tick wins).

        The entry remembers where the member was seen at the start of the tick, so watchers of
        that cell also learn that the member walked out of their view.
        """
        state = self.maps[map_id]
        person = state.people.get(user_id)
        pending = state.pending_moves.get(user_id)
        if pending is not None:
            origin = pending[6]
        elif person is not None:
            origin = visibility_key(person.x, person.y, person.room, person.private, self.cell)
        else:
            origin = None
        state.pending_moves[user_id] = [user_id, x, y, seq, room, private, origin]
        if person is not None:
            person.x, person.y, person.seq, person.room, person.private = x, y, seq, room, private

    async def update(self, map_id: int, user_id: int, **changes) -> None:
        """Status or room of a member changed: tell every hub, and keep the shared record current."""
        state = self.maps[map_id]
        person = state.people.get(user_id)
        if person is None:
            return
        for key, value in changes.items():
            setattr(person, key, value)
        state.pending_events.append({"e": "update", "user": user_id, "conn": person.conn, "changes": changes})
        async with self._presence_lock:
            await self.redis.hset(presence_key(map_id), str(user_id), person.record())

    def occupancy(self, map_id: int, room_id: int) -> int:
        return self.maps[map_id].occupancy(room_id)

    def visible_moves_frame(self, map_id: int, keys: list) -> str | None:
        """A `moves` frame with everyone currently in the given visibility keys (for a changed view)."""
        wanted = set(keys)
        entries = [
            p.move_entry()
            for p in self.maps[map_id].people.values()
            if visibility_key(p.x, p.y, p.room, p.private, self.cell) in wanted
        ]
        if not entries:
            return None
        return '{"type":"moves","m":[' + ",".join(entries) + "]}"

    def presence_list(self, map_id: int) -> list[dict]:
        return [p.presence() for p in self.maps[map_id].people.values()]

    # --- loops ---

    async def _tick_loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self._publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("movement tick failed")
            wake_at = started + self.pacer.period
            await asyncio.sleep(max(0.0, wake_at - time.monotonic()))
            MOVE_TICK_PERIOD.set(self.pacer.observe(time.monotonic() - wake_at))

    async def _publish_pending(self) -> None:
        """One tick: this process's sockets get their frame now, from this process's own batch and the
        other processes' batches received since the last tick; the own batch goes to the others.

        The own batch is applied here, not when it comes back through Redis: waiting for it added a
        Redis round trip to every move, and on a loaded machine that round trip waits for a core."""
        for state in list(self.maps.values()):
            if not state.pending_moves and not state.pending_events:
                if state.undelivered:
                    await self._deliver(state)
                continue
            moves = list(state.pending_moves.values())
            events = state.pending_events
            state.pending_moves = {}
            state.pending_events = []
            self._publish(state.map_id, moves, events)
            await self._apply_batch(state, moves, events, remote=False)
            await self._deliver(state)
            MOVE_BATCHES.inc()
            MOVE_BATCH_SIZE.observe(len(moves))
            if moves:
                self._presence_dirty.setdefault(state.map_id, set()).update(m[0] for m in moves)
                self._presence_wake.set()

    def _publish(self, map_id: int, moves: list, events: list) -> None:
        """Queue this tick's batch for the other processes; the publisher sends it without holding up
        this tick's own frames. While Redis is away the waiting batches merge (see merge_batch), so
        nothing is lost and nothing piles up."""
        merge_batch(self._outbox, map_id, moves, events)
        self._outbox_wake.set()

    async def _publisher_loop(self) -> None:
        while True:
            await self._outbox_wake.wait()
            self._outbox_wake.clear()
            if not await self._publish_outbox():
                await asyncio.sleep(0.5)
                self._outbox_wake.set()

    async def _publish_outbox(self) -> bool:
        """Send every waiting batch, in order; False (and the rest kept, ahead of newer ones) when one
        could not go."""
        outbox, self._outbox = self._outbox, {}
        for map_id in list(outbox):
            box = outbox[map_id]
            try:
                await self.layer.group_send(
                    hub_group(map_id),
                    {"type": "hub.tick", "map": map_id, "node": NODE_ID, "moves": list(box["moves"].values()),
                     "events": box["events"]},
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("movement batches of map %s not published yet (kept): %s", map_id, exc)
                newer, self._outbox = self._outbox, outbox
                for newer_map, newer_box in newer.items():
                    merge_batch(self._outbox, newer_map, list(newer_box["moves"].values()), newer_box["events"])
                return False
            del outbox[map_id]
        return True

    async def _presence_loop(self) -> None:
        """Write the movers' shared records (Redis) after the tick, not in it: on a loaded machine a
        Redis round trip waits for a core, and awaited in the tick it delayed every next tick (N=600
        over two nodes: p95 284 ms with it, 183 ms without). Records are made from the live state when
        written, so a burst of ticks costs one write; a leave's delete waits for a write in progress."""
        while True:
            await self._presence_wake.wait()
            self._presence_wake.clear()
            try:
                async with self._presence_lock:
                    dirty, self._presence_dirty = self._presence_dirty, {}
                    for map_id, users in dirty.items():
                        state = self.maps.get(map_id)
                        people = state.people if state is not None else {}
                        records = {str(u): people[u].record() for u in users if u in people}
                        if records:
                            await self.redis.hset(presence_key(map_id), mapping=records)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("presence records not written")

    async def _receive_loop(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
                if message.get("type") == "hub.tick" and message.get("node") != NODE_ID:
                    await self._apply_tick(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("movement batch could not be applied")
                await asyncio.sleep(0.05)

    async def _apply_tick(self, message: dict) -> None:
        """Apply another process's batch; its moves wait for this process's next tick.

        Every process receives every process's batch. Sending each batch as it comes would give each
        socket one frame per process per tick, and the cost is per frame; so received moves go out with
        this process's next tick, as one frame per socket. Presence events go out at once, after the
        moves received before them."""
        state = self.maps.get(message["map"])
        if state is None:
            return
        await self._apply_batch(state, message["moves"], message["events"], remote=True)

    async def _apply_batch(self, state: MapState, moves: list, events: list, *, remote: bool) -> None:
        """Send a batch's presence events (after any moves waiting before them) and queue its moves
        per visibility key. This process already applied its own batch's state when it was queued."""
        if events:
            async with state.delivery:
                await self._deliver_locked(state)
                event_frames = []
                for event in events:
                    frame = await self._apply_event(state, event, remote=remote)
                    if frame:
                        event_frames.append(frame)
                for observer in list(state.observers.values()):
                    try:
                        for frame in event_frames:
                            await observer.send_text(frame)
                    except Exception:
                        logger.debug("could not deliver an event to user %s", observer.user_id, exc_info=True)
        fragments = state.undelivered
        for user_id, x, y, seq, room, private, origin in moves:
            person = state.people.get(user_id)
            if remote and person is not None:
                person.x, person.y, person.seq, person.room, person.private = x, y, seq, room, private
            entry = f"[{user_id},{x},{y},{seq}]"
            key = visibility_key(x, y, room, private, self.cell)
            fragments.setdefault(key, []).append(entry)
            # Watchers of the cell the member left see them go (never a position inside a private room).
            if origin is not None and not private and tuple(origin) != key:
                fragments.setdefault(tuple(origin), []).append(entry)

    async def _deliver(self, state: MapState) -> None:
        async with state.delivery:
            await self._deliver_locked(state)

    async def _deliver_locked(self, state: MapState) -> None:
        """One `moves` frame per socket with every waiting entry it may see."""
        if not state.undelivered:
            return
        joined = {key: ",".join(parts) for key, parts in state.undelivered.items()}
        state.undelivered = {}
        for observer in list(state.observers.values()):
            try:
                parts = [joined[k] for k in observer.aoi_keys() if k in joined]
                if parts:
                    await observer.send_text('{"type":"moves","m":[' + ",".join(parts) + "]}")
            except Exception:
                logger.debug("could not deliver a batch to user %s", observer.user_id, exc_info=True)

    async def _apply_event(self, state: MapState, event: dict, *, remote: bool) -> str | None:
        kind = event["e"]
        if kind == "join":
            person = Person(**event["person"])
            if remote:
                state.people[person.user] = person
                local = state.observers.get(person.user)
                if local is not None and local.conn_id != person.conn:
                    state.observers.pop(person.user, None)
                    await local.replaced()
            return json.dumps({"type": "presence.join", "person": person.presence()})
        if kind == "leave":
            person = state.people.get(event["user"])
            if remote and person is not None and person.conn == event["conn"]:
                del state.people[event["user"]]
            if event["user"] in state.people:
                return None  # already back on a newer connection
            return json.dumps({"type": "presence.leave", "user": event["user"]})
        if kind == "update":
            person = state.people.get(event["user"])
            if person is None or person.conn != event["conn"]:
                return None
            if remote:
                for key, value in event["changes"].items():
                    setattr(person, key, value)
            return json.dumps({"type": "presence.update", "person": person.presence()})
        return None

    async def _heartbeat_loop(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.redis.set(node_key(NODE_ID), "1", ex=self.heartbeat_ttl)
                beats += 1
                if beats % 3 == 0:
                    for state in list(self.maps.values()):
                        await self._drop_people_of_dead_nodes(state)
                        await self.layer.group_add(hub_group(state.map_id), self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub heartbeat failed")

    async def _drop_people_of_dead_nodes(self, state: MapState) -> None:
        """Members whose process stopped beating left without a goodbye: remove them everywhere."""
        nodes = {p.node for p in state.people.values() if p.node != NODE_ID}
        if not nodes:
            return
        alive = await self.redis.mget([node_key(n) for n in nodes])
        dead = {node for node, beat in zip(nodes, alive, strict=True) if beat is None}
        for person in [p for p in state.people.values() if p.node in dead]:
            del state.people[person.user]
            state.pending_events.append({"e": "leave", "user": person.user, "conn": person.conn})
            async with self._presence_lock:
                await self.redis.hdel(presence_key(state.map_id), str(person.user))
            logger.info("dropped member %s of stopped process %s", person.user, person.node)
