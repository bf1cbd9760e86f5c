"""The SFU behind a small interface: Janus's videoroom, driven over its HTTP admin API (docs/adr/0023).

Office stays the authority. A meeting or private room's media goes through the SFU from
OFFICE_SFU_FROM_PARTICIPANTS people until it empties; Office creates the SFU room, grants each person
in it a token and revokes the token when they walk out or lose access. A token is an HMAC of
(room, person) under OFFICE_SFU_ADMIN_SECRET, so nothing is stored here: Janus's own lists are the
state. Two locks hold it:
- core stored-token auth (`token_auth = true`): without a granted token no Janus request is accepted;
- the room's `allowed` list: a token joins only the room it was granted for.
Revoking removes the token from both, kicks the person's publisher and detaches every Janus handle
that was opened with the token (found through the admin API's `handle_info`, which names the token).

Who is granted follows room visits: `sfu_presence_follow` (connected to `room_presence_changed` in
rooms/apps.py) queues `sfu_room_reconcile` for after the visit commits, on one thread per process so
that no request or socket waits on the SFU. Losing access to a private room moves the person out of it
(the socket's access re-check), which is a visit like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections, transaction

from office.events import send_event, user_group

from .models import Room
from .services import room_occupant_ids

logger = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
# A service's token (the transcriber listening to a room, transcription/sfu_listener.py) is not a
# person's: reconciling a room that people still stand in leaves it alone; its service revokes it.
SERVICE_TOKEN_PREFIX = "office-service-"
REQUEST_TIMEOUT_SECONDS = 2.0


class SfuUnavailable(Exception):
    """No SFU is configured, or it did not answer: the room stays (or falls back to) a mesh."""


class SfuRefused(Exception):
    """The SFU answered with an error (a bad request, a wrong secret): retrying will not help."""


@dataclass(frozen=True)
class SfuJoin:
    """What a page needs to join the room's SFU (the `sfu.join` frame)."""

    url: str
    room: int
    token: str


@dataclass(frozen=True)
class SfuParticipant:
    feed_id: int
    display: str
    publisher: bool


@dataclass(frozen=True)
class PublishedFeed:
    """Who published a feed (the grant's token) and what it carries ("audio", "video")."""

    token: str
    kinds: frozenset[str]

    @property
    def has_audio(self) -> bool:
        return "audio" in self.kinds


class Sfu(Protocol):
    def ensure_room(self, room_id: int) -> None: ...
    def grant(self, room_id: int, user_id: int) -> SfuJoin: ...
    def revoke(self, room_id: int, user_id: int) -> None: ...
    def office_rooms(self) -> list[int]:
        """The SFU rooms Office made (private ones included: the admin key lists them)."""
        answer = self._videoroom({"request": "list", "admin_key": self._secret.decode()})
        return sorted(r["room"] for r in answer.get("list") or []
                      if str(r.get("description", "")).startswith("office room ") and isinstance(r.get("room"), int))

    def participants(self, room_id: int) -> list[SfuParticipant]: ...
    def grant_service(self, room_id: int, name: str) -> SfuJoin: ...
    def revoke_service(self, room_id: int, name: str) -> None: ...
    def published_feeds(self, room_id: int) -> dict[int, PublishedFeed]: ...


def sfu_configured() -> bool:
    return bool(settings.OFFICE_SFU_URL)


class JanusSfu:
    """The one implementation: Janus 1.x, videoroom plugin, HTTP admin API (loopback or private network)."""

    def __init__(self, *, url: str, admin_url: str, admin_secret: str) -> None:
        if not (url and admin_url and admin_secret):
            raise SfuUnavailable("no SFU configured (OFFICE_SFU_URL is empty)")
        self.url = url.rstrip("/")
        self.admin_url = admin_url.rstrip("/")
        self._secret = admin_secret.encode()

    @classmethod
    def from_settings(cls) -> JanusSfu:
        return cls(url=settings.OFFICE_SFU_URL, admin_url=settings.OFFICE_SFU_ADMIN_URL,
                   admin_secret=settings.OFFICE_SFU_ADMIN_SECRET)

    # --- what Office grants ---

    def token_for(self, room_id: int, user_id: int) -> str:
        return "office-" + hmac.new(self._secret, f"token:{room_id}:{user_id}".encode(), hashlib.sha256).hexdigest()[:40]

    def service_token_for(self, room_id: int, name: str) -> str:
        digest = hmac.new(self._secret, f"service:{room_id}:{name}".encode(), hashlib.sha256).hexdigest()[:40]
        return SERVICE_TOKEN_PREFIX + digest

    def _room_secret(self, room_id: int) -> str:
        return hmac.new(self._secret, f"room:{room_id}".encode(), hashlib.sha256).hexdigest()

    # --- the interface ---

    def room_exists(self, room_id: int) -> bool:
        return bool(self._videoroom({"request": "exists", "room": room_id}).get("exists"))

    def ensure_room(self, room_id: int) -> None:
        """Create the SFU room (private, audio first, closed to any token not in its allowed list)."""
        if self.room_exists(room_id):
            return
        answer = self._videoroom({
            "request": "create", "room": room_id, "admin_key": self._secret.decode(),
            "secret": self._room_secret(room_id), "is_private": True, "allowed": [],
            "publishers": 100, "audiocodec": "opus", "description": f"office room {room_id}",
            "notify_joining": True, "permanent": False,
        }, allow_error_codes={427})  # 427: created meanwhile by another web process
        logger.info("sfu room %s: %s", room_id, answer.get("videoroom"))

    def destroy_room(self, room_id: int) -> None:
        self._videoroom({"request": "destroy", "room": room_id, "secret": self._room_secret(room_id)},
                        allow_error_codes={426})  # 426: no such room

    def allowed_tokens(self, room_id: int) -> set[str]:
        answer = self._videoroom({"request": "allowed", "room": room_id, "secret": self._room_secret(room_id),
                                  "action": "add", "allowed": []})
        return set(answer.get("allowed") or [])

    def grant(self, room_id: int, user_id: int) -> SfuJoin:
        """Let this person into this SFU room (idempotent); returns what their page joins with."""
        token = self.token_for(room_id, user_id)
        self._admin({"janus": "add_token", "token": token, "plugins": [VIDEOROOM]})
        self._videoroom({"request": "allowed", "room": room_id, "secret": self._room_secret(room_id),
                         "action": "add", "allowed": [token]})
        return SfuJoin(url=self.url, room=room_id, token=token)

    def revoke(self, room_id: int, user_id: int) -> None:
        self.revoke_token(room_id, self.token_for(room_id, user_id))

    def grant_service(self, room_id: int, name: str) -> SfuJoin:
        """Let one of Office's own services (e.g. "transcriber") into this SFU room, as a person is let in."""
        token = self.service_token_for(room_id, name)
        self._admin({"janus": "add_token", "token": token, "plugins": [VIDEOROOM]})
        self._videoroom({"request": "allowed", "room": room_id, "secret": self._room_secret(room_id),
                         "action": "add", "allowed": [token]})
        return SfuJoin(url=self.url, room=room_id, token=token)

    def revoke_service(self, room_id: int, name: str) -> None:
        self.revoke_token(room_id, self.service_token_for(room_id, name))

    def published_feeds(self, room_id: int) -> dict[int, PublishedFeed]:
        """Feed id -> the token that published it and its kinds of media, for the room's publishers
        (from the admin API, so a feed is attributed by its grant, never by the display name its page
        chose; a page's camera and screen are feeds of their own, with no audio)."""
        feeds = {}
        for session_id in self._admin({"janus": "list_sessions"}).get("sessions") or []:
            handles = self._admin({"janus": "list_handles"}, path=f"/{session_id}", allow_error_codes={458})
            for handle_id in handles.get("handles") or []:
                info = self._admin({"janus": "handle_info"}, path=f"/{session_id}/{handle_id}",
                                   allow_error_codes={458, 459}).get("info") or {}
                plugin = info.get("plugin_specific") or {}
                if (plugin.get("type") == "publisher" and plugin.get("room") == room_id and plugin.get("id")
                        and info.get("token")):
                    kinds = frozenset(str(s.get("type")) for s in plugin.get("streams") or [] if s.get("type"))
                    feeds[plugin["id"]] = PublishedFeed(token=info["token"], kinds=kinds)
        return feeds

    def revoke_token(self, room_id: int, token: str) -> None:
        """The token joins nothing any more, and whatever it opened is kicked and detached now."""
        self._admin({"janus": "remove_token", "token": token}, allow_error_codes={490})  # 490: not a token
        self._videoroom({"request": "allowed", "room": room_id, "secret": self._room_secret(room_id),
                         "action": "remove", "allowed": [token]}, allow_error_codes={426})
        for session_id, handle_id, info in self._handles_with_token(token):
            plugin = info.get("plugin_specific") or {}
            if plugin.get("type") == "publisher" and plugin.get("room") == room_id and plugin.get("id"):
                self._videoroom({"request": "kick", "room": room_id, "secret": self._room_secret(room_id),
                                 "id": plugin["id"]}, allow_error_codes={426, 428})
            self._admin({"janus": "detach_handle"}, path=f"/{session_id}/{handle_id}",
                        allow_error_codes={458, 459})  # gone meanwhile

    def office_rooms(self) -> list[int]:
        """The SFU rooms Office made (private ones included: the admin key lists them)."""
        answer = self._videoroom({"request": "list", "admin_key": self._secret.decode()})
        return sorted(r["room"] for r in answer.get("list") or []
                      if str(r.get("description", "")).startswith("office room ") and isinstance(r.get("room"), int))

    def participants(self, room_id: int) -> list[SfuParticipant]:
        answer = self._videoroom({"request": "listparticipants", "room": room_id}, allow_error_codes={426})
        return [SfuParticipant(feed_id=p["id"], display=p.get("display", ""), publisher=bool(p.get("publisher")))
                for p in answer.get("participants") or []]

    # --- Janus HTTP ---

    def _handles_with_token(self, token: str):
        for session_id in self._admin({"janus": "list_sessions"}).get("sessions") or []:
            handles = self._admin({"janus": "list_handles"}, path=f"/{session_id}", allow_error_codes={458})
            for handle_id in handles.get("handles") or []:
                info = self._admin({"janus": "handle_info"}, path=f"/{session_id}/{handle_id}",
                                   allow_error_codes={458, 459}).get("info") or {}
                if info.get("token") == token:
                    yield session_id, handle_id, info

    def _videoroom(self, request: dict, *, allow_error_codes: frozenset[int] | set[int] = frozenset()) -> dict:
        """A synchronous videoroom request through the admin API's message_plugin (no session needed)."""
        answer = self._admin({"janus": "message_plugin", "plugin": VIDEOROOM, "request": request})
        data = answer.get("response") or {}
        if data.get("videoroom") == "event" and data.get("error_code"):
            if data["error_code"] in allow_error_codes:
                return data
            raise SfuRefused(f"videoroom {request.get('request')}: {data['error_code']} {data.get('error')}")
        return data

    def _admin(self, body: dict, *, path: str = "", allow_error_codes=frozenset()) -> dict:
        payload = {**body, "transaction": secrets.token_hex(6), "admin_secret": self._secret.decode()}
        request = urllib.request.Request(self.admin_url + path, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                answer = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SfuUnavailable(f"the SFU did not answer {body['janus']}: {exc}") from exc
        if answer.get("janus") == "error":
            error = answer.get("error") or {}
            if error.get("code") in allow_error_codes:
                return answer
            raise SfuRefused(f"janus {body['janus']}: {error.get('code')} {error.get('reason')}")
        return answer


# --- who is granted: the SFU room follows the meeting room's occupants ---

def sfu_room_reconcile(*, room_id: int, entered_user_id: int | None = None, sfu: JanusSfu | None = None) -> list[int]:
    """Make the SFU room match who stands in the walled room; returns the people told to join now.

    A meeting or private room (open areas keep proximity voice) moves to the SFU when
    OFFICE_SFU_FROM_PARTICIPANTS people stand in it, and stays there until it empties (no switching
    back and forth around the threshold). Everyone standing in it is granted, and told (`sfu.join`)
    when newly granted or just entered (a reloaded page); every token of someone no longer there is
    revoked. Idempotent: Janus's allowed list is the state, so a retry or another web process converges."""
    sfu = sfu or JanusSfu.from_settings()
    walled = Room.objects.filter(pk=room_id).exclude(kind=Room.Kind.OPEN).exists()  # meeting and private rooms
    occupants = room_occupant_ids(room_id) if walled else set()
    exists = sfu.room_exists(room_id)
    if not exists and len(occupants) < settings.OFFICE_SFU_FROM_PARTICIPANTS:
        return []
    if exists:
        wanted = {sfu.token_for(room_id, user_id) for user_id in occupants}
        for token in sfu.allowed_tokens(room_id) - wanted:
            if occupants and token.startswith(SERVICE_TOKEN_PREFIX):
                continue  # a service listening to the room (it revokes its own token); all go when it empties
            sfu.revoke_token(room_id, token)
        if not occupants:
            sfu.destroy_room(room_id)
            return []
    sfu.ensure_room(room_id)
    allowed = sfu.allowed_tokens(room_id)
    told = []
    for user_id in sorted(occupants):
        if sfu.token_for(room_id, user_id) in allowed and user_id != entered_user_id:
            continue
        join = sfu.grant(room_id, user_id)
        told.append(user_id)
        send_event(user_group(user_id), {"type": "sfu.join", "room": room_id, "sfu": asdict(join)})
    return told


def sfu_feed_owners(room_id: int, occupants: set[int], feeds: dict[int, PublishedFeed], *,
                    sfu: JanusSfu) -> dict[int, int]:
    """Feed id -> the member who published it, for the people standing in the room, told by the token
    the feed was published with. A page names its feeds itself (`display`); pages label voices and
    tiles by this instead, so nobody granted into a room can appear there as someone else."""
    by_token = {sfu.token_for(room_id, user_id): user_id for user_id in occupants}
    return {feed: by_token[published.token] for feed, published in feeds.items() if published.token in by_token}


_owner_scans: dict[tuple[int, int], asyncio.Future] = {}


async def sfu_feed_owners_now(room_id: int) -> dict[int, int]:
    """`sfu_feed_owners` for a socket. The pages of a room ask together when a feed appears, and a scan
    is several admin requests, so they share the scan in flight (one per room and event loop). The
    admin requests run in a thread of their own, never in the database's thread."""
    key = (id(asyncio.get_running_loop()), room_id)
    scan = _owner_scans.get(key)
    if scan is None:
        scan = asyncio.ensure_future(_feed_owners_scan(room_id))
        _owner_scans[key] = scan
        scan.add_done_callback(lambda done: _owner_scans.pop(key, None) if _owner_scans.get(key) is done else None)
    return await asyncio.shield(scan)


async def _feed_owners_scan(room_id: int) -> dict[int, int]:
    occupants = await database_sync_to_async(room_occupant_ids)(room_id)
    sfu = JanusSfu.from_settings()
    feeds = await asyncio.to_thread(sfu.published_feeds, room_id) if occupants else {}
    return sfu_feed_owners(room_id, occupants, feeds, sfu=sfu)


_reconciler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sfu")


def _reconcile_in_background(room_id: int, entered_user_id: int | None) -> None:
    try:
        sfu_room_reconcile(room_id=room_id, entered_user_id=entered_user_id)
    except (SfuUnavailable, SfuRefused) as exc:
        logger.warning("sfu room %s not reconciled (it stays a mesh): %s", room_id, exc)
    except Exception:
        logger.exception("sfu room %s not reconciled", room_id)
    finally:
        connections.close_all()  # this thread's own connections: nothing stays open between visits


def sfu_presence_follow(sender, *, user, left_room_id, entered_room_id, **kwargs) -> None:
    """`room_presence_changed` receiver, inside the visit's transaction: reconcile both rooms once it
    commits (never before: a rolled-back move grants nothing)."""
    if not sfu_configured():
        return
    if left_room_id is not None and left_room_id != entered_room_id:
        transaction.on_commit(lambda: _reconciler.submit(_reconcile_in_background, left_room_id, None))
    if entered_room_id is not None:
        transaction.on_commit(lambda: _reconciler.submit(_reconcile_in_background, entered_room_id, user.id))
