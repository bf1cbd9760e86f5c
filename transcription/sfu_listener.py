"""The transcriber listens to an SFU room instead of taking a second upload from every browser (ADR 0025).

While a room with an open meeting goes through the SFU (rooms/sfu.py), the web process subscribes, with
a service grant of its own, to each consenting speaker's audio feed in the room's Janus videoroom and
feeds it into the same per-speaker Redis stream a browser upload feeds (a `SpeakerPeer` answering the
SFU's offer instead of the browser's). A feed is attributed by the grant that published it (Janus's
admin API names the token), never by the display name its page chose.

One `RoomListener` task per room, on one thread with its own event loop per process (no request or
socket waits on Janus): it re-reads the room every second, or at once when nudged (a consent withdrawn
on this process's socket). Several web processes may follow the same room: a Redis lock with an expiry
makes one of them the listener, and another takes over when it stops renewing. While it listens, the
room's sockets get `meeting.audio_via_sfu` {active: true} and their pages stop uploading; when it stops
(back to a mesh, the meeting ended, the lock lost) they get {active: false} and upload again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connections

from office.events import room_group, user_group
from rooms.sfu import JanusSfu, PublishedFeed, SfuRefused, SfuUnavailable, sfu_configured

from . import selectors
from .peer import PeerError, SpeakerPeer

logger = logging.getLogger(__name__)

SERVICE_NAME = "transcriber"
POLL_SECONDS = 1.0
LOCK_SECONDS = 10  # longer than a step that waits on Janus; a dead listener's room is taken over after it
REQUEST_TIMEOUT_SECONDS = 5.0
LONG_POLL_TIMEOUT_SECONDS = 40.0  # Janus answers a long poll within 30 s (a keepalive when idle)
ANSWER_TIMEOUT_SECONDS = 10.0
_PROCESS_ID = uuid.uuid4().hex


def lock_key(room_id: int) -> str:
    return f"office:sfu-listener:{room_id}"


def active_key(room_id: int) -> str:
    return f"office:sfu-listener:{room_id}:active"


class JanusError(Exception):
    pass


def _http(method: str, url: str, body: dict | None, timeout: float) -> dict | list:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


class JanusSession:
    """One Janus session over the HTTP API with a granted token; events come by long poll on a thread of
    its own (so that a 30 s poll holds no executor thread) and resolve the futures of their transactions."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token
        self.session_id: int | None = None
        self.gone = asyncio.Event()  # the session ended (destroyed, timed out, token revoked)
        self.hangups: set[int] = set()  # handles Janus hung up or detached
        self._waiting: dict[str, asyncio.Future] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = threading.Event()

    async def post(self, path: str, body: dict) -> dict:
        body = {**body, "transaction": body.get("transaction") or secrets.token_hex(6), "token": self.token}
        try:
            answer = await asyncio.to_thread(_http, "POST", self.url + path, body, REQUEST_TIMEOUT_SECONDS)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise JanusError(f"janus {body.get('janus')}: {exc}") from exc
        if answer.get("janus") == "error":
            raise JanusError(f"janus {body.get('janus')}: {answer['error'].get('code')} {answer['error'].get('reason')}")
        return answer

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.session_id = (await self.post("", {"janus": "create"}))["data"]["id"]
        threading.Thread(target=self._poll, name=f"janus-poll-{self.session_id}", daemon=True).start()

    async def attach(self) -> int:
        return (await self.post(f"/{self.session_id}", {"janus": "attach", "plugin": "janus.plugin.videoroom"}))["data"]["id"]

    async def detach(self, handle_id: int) -> None:
        try:
            await self.post(f"/{self.session_id}/{handle_id}", {"janus": "detach"})
        except JanusError:
            pass  # detached already (hung up, revoked)

    async def message(self, handle_id: int, body: dict, jsep: dict | None = None) -> dict:
        """A videoroom request; returns the event that answers it (same transaction)."""
        transaction = secrets.token_hex(6)
        future = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = future
        request = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            request["jsep"] = jsep
        try:
            answer = await self.post(f"/{self.session_id}/{handle_id}", request)
            if answer.get("janus") == "success":  # synchronous requests answer at once
                return answer
            event = await asyncio.wait_for(future, ANSWER_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            raise JanusError(f"no answer to videoroom {body.get('request')}") from exc
        finally:
            self._waiting.pop(transaction, None)
        data = event.get("plugindata", {}).get("data", {})
        if data.get("error_code"):
            raise JanusError(f"videoroom {body.get('request')}: {data['error_code']} {data.get('error')}")
        return event

    def _poll(self) -> None:
        url = f"{self.url}/{self.session_id}?maxev=10&token={self.token}&rid=%s"
        while not self._closed.is_set():
            try:
                answer = _http("GET", url % secrets.token_hex(4), None, LONG_POLL_TIMEOUT_SECONDS)
            except (urllib.error.URLError, OSError, ValueError):
                if self._closed.wait(0.5):
                    return
                continue
            batch = answer if isinstance(answer, list) else [answer]
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._dispatch, batch)
            if any(e.get("janus") == "error" for e in batch):
                return  # the session is gone (458) or the token no longer opens it (403)

    def _dispatch(self, batch: list[dict]) -> None:
        for event in batch:
            kind = event.get("janus")
            if kind == "error":
                self.gone.set()
            elif kind in ("hangup", "detached") and event.get("sender"):
                self.hangups.add(event["sender"])
            future = self._waiting.get(event.get("transaction") or "")
            if future is not None and not future.done() and kind == "event":
                future.set_result(event)

    async def close(self) -> None:
        self._closed.set()
        self.gone.set()
        if self.session_id is not None:
            try:
                await self.post(f"/{self.session_id}", {"janus": "destroy"})
            except JanusError:
                pass


class FeedSubscription:
    """One speaker's feed from the SFU into their audio stream: the SFU's offer is answered by the same
    `SpeakerPeer` that answers a browser's, so the worker cannot tell the two apart."""

    def __init__(self, *, meeting_id: int, user_id: int, feed_id: int) -> None:
        self.meeting_id, self.user_id, self.feed_id = meeting_id, user_id, feed_id
        self.peer = SpeakerPeer(meeting_id=meeting_id, user_id=user_id)
        self.handle_id: int | None = None

    async def start(self, session: JanusSession, room_id: int) -> None:
        self.handle_id = await session.attach()
        joined = await session.message(self.handle_id, {
            "request": "join", "ptype": "subscriber", "room": room_id, "token": session.token,
            "streams": [{"feed": self.feed_id}],
        })
        jsep = joined.get("jsep") or {}
        if jsep.get("type") != "offer":
            raise JanusError(f"no offer for feed {self.feed_id}")
        answer = await self.peer.answer(jsep["sdp"])
        await session.message(self.handle_id, {"request": "start"}, jsep={"type": "answer", "sdp": answer})

    @property
    def ended(self) -> bool:
        return self.peer.closed or (self.peer.pc is not None and self.peer.pc.connectionState in ("failed", "closed"))

    async def stop(self, session: JanusSession | None) -> None:
        await self.peer.close()  # ends the track: the pump writes the stream's end marker
        if session is not None and self.handle_id is not None:
            await session.detach(self.handle_id)


class RoomListener:
    """Follows one room while it has an open meeting: listens through the SFU while the room is there."""

    def __init__(self, room_id: int, *, sfu: JanusSfu, redis: aioredis.Redis, db: ThreadPoolExecutor) -> None:
        self.room_id = room_id
        self.sfu = sfu
        self.redis = redis
        self.db = db
        self.wake = asyncio.Event()
        self.session: JanusSession | None = None
        self.subscriptions: dict[int, FeedSubscription] = {}  # feed id -> subscription
        self.published: dict[int, PublishedFeed] = {}  # feed id -> its token and kinds (admin API)
        self.active = False

    async def run(self) -> None:
        try:
            while await self.step():
                try:
                    await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass
                self.wake.clear()
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("listening to room %s through the SFU failed", self.room_id)
        finally:
            try:
                await self.deactivate()
                if await self.redis.get(lock_key(self.room_id)) == _PROCESS_ID.encode():
                    await self.redis.delete(lock_key(self.room_id))
            except Exception:  # Redis away: the lock and the flag expire on their own
                logger.exception("room %s: the SFU listener did not stop cleanly", self.room_id)

    async def _db(self, fn, *args):
        def call():
            close_old_connections()
            return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self.db, call)

    async def _claim(self) -> bool:
        key = lock_key(self.room_id)
        if await self.redis.set(key, _PROCESS_ID, nx=True, ex=LOCK_SECONDS):
            return True
        if await self.redis.get(key) == _PROCESS_ID.encode():
            await self.redis.expire(key, LOCK_SECONDS)
            return True
        return False

    async def step(self) -> bool:
        """Match the subscriptions to the room once; False when the meeting is over (the task ends)."""
        meeting_id, speakers = await self._db(selectors.transcribed_speakers_in_room, self.room_id)
        if meeting_id is None:
            return False
        if not await self._claim():
            await self.deactivate()  # another process listens (or took over from this one)
            return True
        try:
            in_sfu = await asyncio.to_thread(self.sfu.room_exists, self.room_id)
            if not in_sfu:
                await self.deactivate()
                return True
            if self.session is None or self.session.gone.is_set():
                await self._open_session()
            if not self.active:
                self.active = True
                await self._announce(room_group(self.room_id), True)
            await self.redis.set(active_key(self.room_id), meeting_id, ex=LOCK_SECONDS)
            await self._follow_feeds(meeting_id, speakers)
        except (SfuUnavailable, SfuRefused, JanusError, PeerError) as exc:
            logger.warning("room %s: not listening through the SFU (%s); the browsers upload", self.room_id, exc)
            await self.deactivate()
        return True

    async def _open_session(self) -> None:
        await self._close_session()
        grant = await asyncio.to_thread(self.sfu.grant_service, self.room_id, SERVICE_NAME)
        self.session = JanusSession(grant.url, grant.token)
        await self.session.open()
        logger.info("room %s: the transcriber listens through the SFU", self.room_id)

    async def _follow_feeds(self, meeting_id: int, speakers: set[int]) -> None:
        feeds = {p.feed_id for p in await asyncio.to_thread(self.sfu.participants, self.room_id) if p.publisher}
        self.published = {feed: known for feed, known in self.published.items() if feed in feeds}
        if feeds - self.published.keys():  # new publishers: who published them (an admin API scan)
            self.published.update(await asyncio.to_thread(self.sfu.published_feeds, self.room_id))
        user_of_token = {self.sfu.token_for(self.room_id, user_id): user_id for user_id in speakers}
        # A speaker's microphone feed only: their camera and screen are feeds too, without audio.
        wanted = {feed: user_of_token[known.token] for feed, known in self.published.items()
                  if feed in feeds and known.has_audio and known.token in user_of_token}
        for feed, subscription in list(self.subscriptions.items()):
            if (wanted.get(feed) != subscription.user_id or subscription.meeting_id != meeting_id
                    or subscription.ended or subscription.handle_id in self.session.hangups):
                del self.subscriptions[feed]
                await subscription.stop(self.session)
        for feed, user_id in wanted.items():
            if feed in self.subscriptions:
                continue
            subscription = FeedSubscription(meeting_id=meeting_id, user_id=user_id, feed_id=feed)
            self.subscriptions[feed] = subscription
            try:
                await subscription.start(self.session, self.room_id)
            except (JanusError, PeerError) as exc:
                logger.warning("room %s: feed %s of user %s not subscribed yet: %s", self.room_id, feed, user_id, exc)
                del self.subscriptions[feed]
                await subscription.stop(self.session)

    def listened_feeds(self) -> dict[int, int]:
        return {feed: s.user_id for feed, s in self.subscriptions.items() if not s.ended}

    async def _announce(self, group: str, active: bool) -> None:
        try:
            await get_channel_layer().group_send(group, {"type": "meeting.audio_via_sfu", "room": self.room_id,
                                                         "active": active})
        except Exception:
            logger.exception("meeting.audio_via_sfu to %s could not be sent", group)

    async def tell_newcomer(self, user_id: int) -> None:
        """Someone entered (or reloaded into) the room: tell them if any process listens to it now."""
        if await self.redis.exists(active_key(self.room_id)):
            await self._announce(user_group(user_id), True)

    async def _close_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    async def deactivate(self) -> None:
        """Stop listening: every speaker's stream ends (their pages upload again), the grant is revoked."""
        subscriptions, self.subscriptions = list(self.subscriptions.values()), {}
        for subscription in subscriptions:
            await subscription.stop(self.session)
        if self.session is not None:
            await self._close_session()
            try:
                await asyncio.to_thread(self.sfu.revoke_service, self.room_id, SERVICE_NAME)
            except (SfuUnavailable, SfuRefused) as exc:
                logger.warning("room %s: the transcriber's SFU grant was not revoked: %s", self.room_id, exc)
        if self.active:
            self.active = False
            await self._announce(room_group(self.room_id), False)
            await self.redis.delete(active_key(self.room_id))
            logger.info("room %s: the transcriber stopped listening through the SFU", self.room_id)


class SfuListeners:
    """This process's room listeners, on one thread with its own event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rooms: dict[int, tuple[RoomListener, asyncio.Task]] = {}
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sfu-listener-db")
        self._redis: aioredis.Redis | None = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="sfu-listener", daemon=True).start()
                self._loop = loop
            return self._loop

    def follow(self, room_id: int, entered_user_id: int | None = None) -> None:
        asyncio.run_coroutine_threadsafe(self._follow(room_id, entered_user_id), self._ensure_loop())

    async def _follow(self, room_id: int, entered_user_id: int | None) -> None:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(settings.REDIS_URL)
        current = self._rooms.get(room_id)
        if current is None or current[1].done():
            listener = RoomListener(room_id, sfu=JanusSfu.from_settings(), redis=self._redis, db=self._db)
            task = asyncio.create_task(listener.run(), name=f"sfu-listener-{room_id}")
            task.add_done_callback(lambda _t: self._forget(room_id, listener))
            current = self._rooms[room_id] = (listener, task)
        else:
            current[0].wake.set()
        if entered_user_id is not None:
            await current[0].tell_newcomer(entered_user_id)

    def _forget(self, room_id: int, listener: RoomListener) -> None:
        if room_id in self._rooms and self._rooms[room_id][0] is listener:
            del self._rooms[room_id]

    def nudge(self, room_id: int) -> None:
        """Look at the room now (a consent just changed), not at the next poll."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake, room_id)

    def _wake(self, room_id: int) -> None:
        if room_id in self._rooms:
            self._rooms[room_id][0].wake.set()

    def listened_feeds(self, room_id: int) -> dict[int, int]:
        """The feeds this process subscribes to in the room now, with whose they are (metrics and tests)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return {}

        async def read() -> dict[int, int]:
            current = self._rooms.get(room_id)
            return current[0].listened_feeds() if current else {}

        return asyncio.run_coroutine_threadsafe(read(), loop).result(5)

    def listened_speakers(self, room_id: int) -> set[int]:
        """Whom this process subscribes to in the room now."""
        return set(self.listened_feeds(room_id).values())

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every listener (each ends its speakers' streams and says so), then the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        async def stop_all() -> None:
            tasks = [task for _listener, task in self._rooms.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._redis is not None:
                await self._redis.aclose()
                self._redis = None

        try:
            asyncio.run_coroutine_threadsafe(stop_all(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._db.submit(connections.close_all).result(timeout)
            with self._lock:
                self._loop = None


sfu_listeners = SfuListeners()


def sfu_listening_follow(*, room_id: int, entered_user_id: int | None) -> None:
    """After a visit commits: follow the room the person entered (a no-op without an SFU)."""
    if sfu_configured():
        sfu_listeners.follow(room_id, entered_user_id)
