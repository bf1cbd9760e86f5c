"""What the office socket reads from the database and its URL: its context, resume cursors, session checks."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone

from . import selectors, services
from .geometry import MapGeometry


@dataclass
class SocketContext:
    """Everything a socket needs from the database at connect, loaded in one sync call."""

    layout: dict
    geometry: MapGeometry
    private_rooms: set[int]
    me: dict
    threads: list[dict]
    members: list[dict]
    session_expires_at: object
    desk: tuple[int, int] | None


def socket_context_load(user, map_id: int, session_key: str | None) -> SocketContext | None:
    try:
        office_map = selectors.office_map_get(map_id)
    except selectors.NotFound:
        return None
    profile = services.profile_ensure(user)
    session = Session.objects.filter(session_key=session_key).first() if session_key else None
    desk = office_map.desks.filter(owner=user).values_list("x", "y").first()
    return SocketContext(
        layout=selectors.map_layout_payload(office_map),
        geometry=selectors.map_geometry(office_map),
        private_rooms=selectors.private_room_ids_for(user, map_id),
        me={
            "id": user.id,
            "username": user.get_username(),
            "name": profile.display_name,
            "color": profile.color,
            "status": profile.status,
            "role": profile.role,
        },
        threads=[t.as_dict() for t in selectors.thread_summaries_for(user)],
        members=selectors.members_directory(),
        session_expires_at=session.expire_date if session else None,
        desk=desk,
    )


def parse_resume(query_string: bytes) -> dict[int, int]:
    """`resume=12.40,13.7` -> {12: 40, 13: 7}; anything malformed is ignored (the client then gets
    live messages only, and can still ask with chat.resume)."""
    cursors: dict[int, int] = {}
    try:
        raw = parse_qs(query_string.decode("ascii", "replace")).get("resume", [""])[0]
    except ValueError:
        return cursors
    for pair in raw.split(",")[:500]:
        thread, _, seq = pair.partition(".")
        if (thread + seq).isascii() and thread.isdigit() and seq.isdigit() and len(thread) < 19 and len(seq) < 19:
            cursors[int(thread)] = int(seq)
    return cursors


def session_still_valid(session_key: str | None, user_id: int):
    """The session's expiry if it still exists and its user is active, else None."""
    if not session_key:
        return None
    row = Session.objects.filter(session_key=session_key, expire_date__gt=timezone.now()).first()
    if row is None or row.get_decoded().get("_auth_user_id") != str(user_id):
        return None
    if not get_user_model().objects.filter(pk=user_id, is_active=True).exists():
        return None
    return row.expire_date


@dataclass
class SocketAccess:
    """What one socket may still do: its session's expiry (None: signed out, expired or deactivated)
    and the private rooms of its map it may enter."""

    session_expires_at: object
    private_rooms: set[int]


def sockets_access_load(entries) -> dict[tuple, SocketAccess]:
    """Re-read the rights of many open sockets, keyed by (session key, user id, map id), in the same
    few queries whatever their number."""
    entries = set(entries)
    now = timezone.now()
    keys = {key for key, _, _ in entries if key}
    sessions = {s.session_key: s for s in Session.objects.filter(session_key__in=keys, expire_date__gt=now)}
    active = set(
        get_user_model().objects.filter(pk__in={u for _, u, _ in entries}, is_active=True).values_list("pk", flat=True)
    )
    rights = selectors.private_room_ids_by_member((user_id, map_id) for _, user_id, map_id in entries)
    access = {}
    for key, user_id, map_id in entries:
        session = sessions.get(key) if key else None
        valid = (session is not None and user_id in active
                 and session.get_decoded().get("_auth_user_id") == str(user_id))
        access[(key, user_id, map_id)] = SocketAccess(
            session_expires_at=session.expire_date if valid else None,
            private_rooms=rights.get((user_id, map_id), set()),
        )
    return access
