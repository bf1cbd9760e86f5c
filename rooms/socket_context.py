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
