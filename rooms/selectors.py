"""Reads for rooms, the map and chat. Access rules live here so every entry point shares them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from office.redis_client import redis_client

from .geometry import MapGeometry, RoomShape
from .hub import presence_key
from .models import (
    RETENTION_FIELDS,
    Announcement,
    ApiToken,
    ChatMessage,
    ChatReadState,
    ChatThread,
    OfficeMap,
    Profile,
    Room,
    RoomGuestPass,
    RoomKnock,
    display_name,
)
from .serializers import (
    AnnouncementOut,
    ChatMessageOut,
    MapLayoutOut,
    MemberOut,
    RoomKnockOut,
    ThreadSummaryOut,
)

User = get_user_model()


class NotFound(ObjectDoesNotExist):
    """The object does not exist or the user may not know it exists (same answer for both)."""


def rooms_visible_to(user, *, office_map_id: int | None = None):
    """Rooms a user may enter and read: all open and meeting rooms, private ones only as a member."""
    rooms = Room.objects.filter(Q(kind__in=[Room.Kind.OPEN, Room.Kind.MEETING]) | Q(memberships__user=user))
    if office_map_id is not None:
        rooms = rooms.filter(office_map_id=office_map_id)
    return rooms.distinct()


def room_get_visible(*, user, room_id) -> Room:
    """The room `room_id` if `user` may see it. NotFound otherwise: a missing room and a private
    one the user may not enter get the same answer, so ids reveal nothing. Every app asks here."""
    room = rooms_visible_to(user).filter(pk=room_id).first() if isinstance(room_id, int) else None
    if room is None:
        raise NotFound("no such room")
    return room


def room_get_administrable(*, user, room_id) -> Room:
    """Admins reach every room (to configure it); members the rooms they may see."""
    if getattr(user, "is_staff", False):
        room = Room.objects.filter(pk=room_id).first() if isinstance(room_id, int) else None
        if room is None:
            raise NotFound("no such room")
        return room
    return room_get_visible(user=user, room_id=room_id)


def room_get_with_members_known(*, user, room_id) -> Room:
    """Who belongs to a room is known to its members and to admins; to anyone else it does not exist."""
    room = Room.objects.filter(pk=room_id).first() if isinstance(room_id, int) else None
    if room is None or not (getattr(user, "is_staff", False) or room.memberships.filter(user=user).exists()):
        raise NotFound("no such room")
    return room


def user_can_enter_room(user, room: Room) -> bool:
    if room.kind != Room.Kind.PRIVATE:
        return True
    return room.memberships.filter(user=user).exists()


def private_room_ids_for(user, office_map_id: int) -> set[int]:
    return private_room_ids_by_member([(user.id, office_map_id)]).get((user.id, office_map_id), set())


def private_room_ids_by_member(pairs) -> dict[tuple[int, int], set[int]]:
    """The private rooms each (user id, map id) pair may enter, in one query: a process re-reads the
    rights of all its open sockets at once instead of one database round trip per socket."""
    pairs = set(pairs)
    rights: dict[tuple[int, int], set[int]] = {pair: set() for pair in pairs}
    if not pairs:
        return rights
    rows = Room.objects.filter(
        office_map_id__in={m for _, m in pairs}, kind=Room.Kind.PRIVATE,
        memberships__user_id__in={u for u, _ in pairs},
    ).values_list("memberships__user_id", "office_map_id", "id")
    # A guest pass (a member let them in after a knock) counts as membership while it lasts.
    passes = RoomGuestPass.objects.filter(
        user_id__in={u for u, _ in pairs}, room__office_map_id__in={m for _, m in pairs},
        ended_at__isnull=True, expires_at__gt=timezone.now(),
    ).values_list("user_id", "room__office_map_id", "room_id")
    for user_id, map_id, room_id in [*rows, *passes]:
        if (user_id, map_id) in rights:
            rights[(user_id, map_id)].add(room_id)
    return rights


def map_presence_for(user, map_id: int) -> list[dict]:
    """Who is on the map now (the hubs' shared record in Redis); exact positions inside a private
    room only for that room's members."""
    raw = redis_client().hgetall(presence_key(map_id))
    mine = private_room_ids_for(user, map_id)
    people = []
    for value in raw.values():
        person = json.loads(value)
        entry = {k: person[k] for k in ("user", "name", "status", "room")}
        if not person["private"] or person["room"] in mine:
            entry.update(x=person["x"], y=person["y"])
        people.append(entry)
    return sorted(people, key=lambda p: p["user"])


def office_map_get(map_id: int) -> OfficeMap:
    try:
        return OfficeMap.objects.get(pk=map_id)
    except OfficeMap.DoesNotExist as exc:
        raise NotFound("no such map") from exc


def default_office_map() -> OfficeMap | None:
    return OfficeMap.objects.order_by("id").first()


def map_geometry(office_map: OfficeMap) -> MapGeometry:
    rooms = [room_shape(room) for room in office_map.rooms.all()]
    return MapGeometry(
        width=office_map.width, height=office_map.height, spawn=(office_map.spawn_x, office_map.spawn_y), rooms=rooms
    )


def room_shape(room: Room) -> RoomShape:
    return RoomShape(
        id=room.id,
        name=room.name,
        kind=room.kind,
        x=room.x,
        y=room.y,
        width=room.width,
        height=room.height,
        doors=frozenset(tuple(d) for d in room.doors),
        capacity=room.capacity,
    )


def map_layout_payload(office_map: OfficeMap) -> dict:
    """What a client draws: the grid, rooms with doors, desks (JSON-safe)."""
    return dict(MapLayoutOut(office_map).data)


def office_map_document(office_map: OfficeMap) -> dict:
    """The map as a portable document (`services.office_map_import` reads it back): its fields, rooms
    with doors and members, desks with owners; people by username, never by id."""
    rooms = office_map.rooms.order_by("id").prefetch_related("memberships__user")
    desks = office_map.desks.order_by("id").select_related("owner")
    return {
        "format": "office-map",
        "version": 1,
        "map": {
            "name": office_map.name, "slug": office_map.slug, "width": office_map.width,
            "height": office_map.height, "spawn": [office_map.spawn_x, office_map.spawn_y],
            **{field: getattr(office_map, field) for field in RETENTION_FIELDS},
        },
        "rooms": [{
            "name": room.name, "slug": room.slug, "kind": room.kind, "x": room.x, "y": room.y,
            "width": room.width, "height": room.height, "doors": [list(door) for door in room.doors],
            "capacity": room.capacity, "assistant_enabled": room.assistant_enabled,
            "members": sorted(m.user.username for m in room.memberships.all()),
            **{field: getattr(room, field) for field in RETENTION_FIELDS},
        } for room in rooms],
        "desks": [{"label": desk.label, "x": desk.x, "y": desk.y, "owner": desk.owner.username if desk.owner else None}
                  for desk in desks],
    }


TILED_TILE_PX = 32


def office_map_tiled(office_map: OfficeMap) -> dict:
    """The layout in Tiled's JSON map format (1.10): an orthogonal map of the same size with three object
    layers, rooms (rectangles, `type` the kind, capacity and assistant as properties), doors and desks
    (one-tile rectangles). No tile layer: Office draws its own floor. Members, owners and retention are
    not layout and stay out (they are in `office_map_document`)."""
    px = TILED_TILE_PX
    next_id = 1

    def obj(name: str, kind: str, x: int, y: int, width: int = 1, height: int = 1, **properties) -> dict:
        nonlocal next_id
        entry = {"id": next_id, "name": name, "type": kind, "x": x * px, "y": y * px, "width": width * px,
                 "height": height * px, "rotation": 0, "visible": True}
        if properties:
            entry["properties"] = [
                {"name": key, "type": "bool" if isinstance(value, bool) else "int", "value": value}
                for key, value in properties.items() if value is not None]
        next_id += 1
        return entry

    rooms = list(office_map.rooms.order_by("id"))
    room_objects = [obj(room.name, room.kind, room.x, room.y, room.width, room.height,
                        capacity=room.capacity, assistant_enabled=room.assistant_enabled) for room in rooms]
    door_objects = [obj(f"{room.name} door", "door", x, y) for room in rooms for x, y in room.doors]
    desk_objects = [obj(desk.label, "desk", desk.x, desk.y) for desk in office_map.desks.order_by("id")]
    layers = [
        {"id": layer_id, "name": name, "type": "objectgroup", "draworder": "topdown", "objects": objects,
         "opacity": 1, "visible": True, "x": 0, "y": 0}
        for layer_id, (name, objects) in enumerate(
            [("rooms", room_objects), ("doors", door_objects), ("desks", desk_objects)], start=1)
    ]
    return {
        "type": "map", "version": "1.10", "tiledversion": "1.10.2", "orientation": "orthogonal",
        "renderorder": "right-down", "infinite": False, "width": office_map.width, "height": office_map.height,
        "tilewidth": px, "tileheight": px, "nextlayerid": len(layers) + 1, "nextobjectid": next_id,
        "layers": layers, "tilesets": [],
        "properties": [{"name": "spawn_x", "type": "int", "value": office_map.spawn_x},
                       {"name": "spawn_y", "type": "int", "value": office_map.spawn_y}],
    }


# --- chat ---

def threads_visible_to(user):
    return ChatThread.objects.filter(
        Q(kind=ChatThread.Kind.ROOM, room__in=rooms_visible_to(user)) | Q(kind=ChatThread.Kind.DIRECT, participants=user)
    ).distinct()


def thread_for_user(user, thread_id: int) -> ChatThread:
    """The thread if the user may read it; NotFound otherwise, so ids cannot be probed."""
    thread = threads_visible_to(user).filter(pk=thread_id).select_related("room").first()
    if thread is None:
        raise NotFound("no such conversation")
    return thread


@dataclass(frozen=True)
class ThreadSummary:
    id: int
    kind: str
    title: str
    room_id: int | None
    last_seq: int
    unread: int
    with_user_id: int | None

    def as_dict(self) -> dict:
        return dict(ThreadSummaryOut(self).data)


def thread_summaries_for(user) -> list[ThreadSummary]:
    """Every conversation the user can read, with unread counts (others' messages after the read mark)."""
    threads = list(
        threads_visible_to(user)
        .select_related("room")
        .prefetch_related("participants__profile")
        .order_by("kind", "room__name", "id")
    )
    unread = dict(
        ChatMessage.objects.filter(thread__in=[t.id for t in threads])
        .exclude(author=user)
        .annotate(
            mark=Coalesce(
                Subquery(ChatReadState.objects.filter(thread=OuterRef("thread_id"), user=user).values("last_read_seq")[:1]),
                Value(0),
            )
        )
        .filter(seq__gt=F("mark"))
        .values("thread")
        .annotate(n=Count("id"))
        .values_list("thread", "n")
    )
    summaries = []
    for thread in threads:
        other = None
        if thread.kind == ChatThread.Kind.DIRECT:
            other = next((p for p in thread.participants.all() if p.id != user.id), None)
            title = display_name(other) if other else "Direct message"
        else:
            title = thread.room.name
        summaries.append(
            ThreadSummary(
                id=thread.id,
                kind=thread.kind,
                title=title,
                room_id=thread.room_id,
                last_seq=thread.last_seq,
                unread=unread.get(thread.id, 0),
                with_user_id=other.id if other else None,
            )
        )
    return summaries


def thread_last_seqs(thread_ids: list[int]) -> dict[int, int]:
    return dict(ChatThread.objects.filter(pk__in=thread_ids).values_list("id", "last_seq"))


def chat_message_payload(message: ChatMessage) -> dict:
    return dict(ChatMessageOut(message).data)


def chat_messages_after(thread: ChatThread, after_seq: int, limit: int) -> list[ChatMessage]:
    return list(
        ChatMessage.objects.filter(thread=thread, seq__gt=after_seq)
        .select_related("author__profile")
        .order_by("seq")[:limit]
    )


def chat_messages_before(thread: ChatThread, before_seq: int | None, limit: int) -> list[ChatMessage]:
    """One page of history, newest last; `before_seq=None` means the latest page."""
    messages = ChatMessage.objects.filter(thread=thread).select_related("author__profile")
    if before_seq is not None:
        messages = messages.filter(seq__lt=before_seq)
    return list(reversed(messages.order_by("-seq")[:limit]))


def members_directory() -> list[dict]:
    return list(MemberOut(User.objects.filter(is_active=True).select_related("profile").order_by("username"),
                          many=True).data)


def api_tokens_for(user):
    """A member's tokens, active first (revoked ones stay listed: they are the record)."""
    return ApiToken.objects.filter(user=user).order_by(F("revoked_at").asc(nulls_first=True), "-created_at")


# --- retention ---

def retention_days(room: Room | None, kind: str) -> int | None:
    """Days `kind` records of `room` are kept: the room's policy, else its map's, else the site
    default (records without a room: the site default). None: kept forever."""
    for policy in (room, room.office_map) if room is not None else ():
        days = getattr(policy, f"keep_{kind}_days")
        if days is not None:
            return days
    return settings.OFFICE_RETENTION_DEFAULT_DAYS[kind]


def expired_records_filter(kind: str, *, now: datetime, room_field: str = "room",
                           time_field: str = "created_at") -> Q | None:
    """A filter for the `kind` records past their room's retention at `now`, for any model that
    names its room by `room_field` (a null room takes the site default); None if nothing expires."""
    rooms_by_days: dict[int, list[int]] = {}
    for room in Room.objects.select_related("office_map"):
        days = retention_days(room, kind)
        if days is not None:
            rooms_by_days.setdefault(days, []).append(room.pk)
    parts = [Q(**{f"{room_field}_id__in": ids, f"{time_field}__lt": now - timedelta(days=days)})
             for days, ids in rooms_by_days.items()]
    default = settings.OFFICE_RETENTION_DEFAULT_DAYS[kind]
    if default is not None:
        parts.append(Q(**{f"{room_field}__isnull": True, f"{time_field}__lt": now - timedelta(days=default)}))
    return reduce(or_, parts) if parts else None


def personal_data_of(user) -> dict:
    """What rooms holds about `user`, for their export."""
    profile = Profile.objects.filter(user=user).first()
    return {
        "account": {"id": user.pk, "username": user.get_username(), "email": user.email,
                    "name": display_name(user), "status": profile.status if profile else None,
                    "joined_at": user.date_joined.isoformat(),
                    "last_sign_in_at": user.last_login.isoformat() if user.last_login else None},
        "room_memberships": [{"room": m.room.name, "room_id": m.room_id, "added_at": m.added_at.isoformat()}
                             for m in user.room_memberships.select_related("room")],
        "room_visits": [{"room": v.room.name, "room_id": v.room_id, "entered_at": v.entered_at.isoformat(),
                         "left_at": v.left_at.isoformat() if v.left_at else None}
                        for v in user.room_visits.select_related("room").order_by("entered_at")],
        "chat_messages": [{"thread": m.thread_id, "room": m.thread.room.name if m.thread.room else None,
                           "direct": m.thread.kind == ChatThread.Kind.DIRECT, "seq": m.seq, "body": m.body,
                           "sent_at": m.created_at.isoformat()}
                          for m in ChatMessage.objects.filter(author=user).select_related("thread__room")
                          .order_by("created_at", "id")],
        "api_tokens": [{"name": t.name, "scope": t.scope, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
                        "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None}
                       for t in ApiToken.objects.filter(user=user)],
        "announcements": [{"id": a.pk, "map": a.office_map_id, "room": a.room.name if a.room else None,
                           "text": a.text, "with_audio_clip": bool(a.audio), "created_at": a.created_at.isoformat()}
                          for a in Announcement.objects.filter(author=user).select_related("room")
                          .order_by("created_at")],
        "knocks": [{"room": k.room.name, "room_id": k.room_id, "knocked_at": k.created_at.isoformat(),
                    "answer": k.answer or None} for k in RoomKnock.objects.filter(user=user).select_related("room")
                   .order_by("created_at")],
        "guest_passes": [{"room": g.room.name, "room_id": g.room_id, "granted_at": g.created_at.isoformat(),
                          "ended_at": g.ended_at.isoformat() if g.ended_at else None}
                         for g in RoomGuestPass.objects.filter(user=user).select_related("room")
                         .order_by("created_at")],
    }


# --- the megaphone and knocks ---

def announcement_payload(announcement: Announcement) -> dict:
    return dict(AnnouncementOut(announcement).data)


def room_knock_payload(knock: RoomKnock) -> dict:
    return dict(RoomKnockOut(knock).data)


def announcements_visible_to(user, office_map_id: int):
    """A map's announcements the user may read: to the whole map, or to a room they may see (admins: all)."""
    announcements = Announcement.objects.filter(office_map_id=office_map_id).select_related(
        "room", "author__profile")
    if getattr(user, "is_staff", False):
        return announcements
    return announcements.filter(Q(room__isnull=True) | Q(room__in=rooms_visible_to(user, office_map_id=office_map_id)))


def announcements_recent_for(user, office_map_id: int, limit: int = 50) -> list[dict]:
    return [announcement_payload(a) for a in announcements_visible_to(user, office_map_id)[:limit]]


def announcements_active_on(office_map_id: int) -> list[dict]:
    """Announcements still showing on a map (a socket that connects, or walks into their room, shows
    them); whether one is for this member's room is the socket's to decide, it knows where they stand."""
    return [announcement_payload(a) for a in Announcement.objects.filter(
        office_map_id=office_map_id, ends_at__gt=timezone.now()).select_related("room", "author__profile")[:20]]


def announcement_audio_for(user, *, office_map_id: int, announcement_id: int) -> Announcement:
    announcement = announcements_visible_to(user, office_map_id).filter(pk=announcement_id).exclude(
        audio_type="").first()
    if announcement is None:
        raise NotFound("no such announcement clip")
    return announcement
