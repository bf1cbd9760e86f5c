"""Writes for rooms, the map, profiles and chat: validate, write in one transaction, announce on commit."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.text import slugify

from office.events import map_editors_group, map_group, send_event_on_commit, thread_group, user_group
from office.observability import CHAT_MESSAGES

from . import audio_clips, selectors, signals
from .geometry import MapGeometry, overlapping_walled_rooms
from .models import (
    RETENTION_FIELDS,
    Announcement,
    ApiToken,
    ChatMessage,
    ChatReadState,
    ChatThread,
    Desk,
    OfficeMap,
    Profile,
    Room,
    RoomGuestPass,
    RoomKnock,
    RoomMembership,
    RoomVisit,
)

logger = logging.getLogger(__name__)
User = get_user_model()

AVATAR_COLORS = ["#4f7cff", "#e8590c", "#2b8a3e", "#ae3ec9", "#0b7285", "#c2255c", "#5f3dc4", "#e67700"]


# --- profiles ---

def profile_ensure(user) -> Profile:
    profile, _ = Profile.objects.get_or_create(
        user=user,
        defaults={
            "display_name": (user.get_full_name() or user.get_username())[:80],
            "color": AVATAR_COLORS[user.id % len(AVATAR_COLORS)],
        },
    )
    return profile


def profile_set_status(*, user, status: str) -> Profile:
    if status not in Profile.Status.values:
        raise ValidationError(f"status must be one of {', '.join(Profile.Status.values)}")
    profile = profile_ensure(user)
    Profile.objects.filter(pk=profile.pk).update(status=status)
    profile.status = status
    return profile


def profile_set_display_name(*, user, display_name: str) -> Profile:
    display_name = display_name.strip()
    if not display_name or len(display_name) > 80:
        raise ValidationError("display name must be 1 to 80 characters")
    profile = profile_ensure(user)
    Profile.objects.filter(pk=profile.pk).update(display_name=display_name)
    profile.display_name = display_name
    return profile


def member_create(*, username: str, password: str, display_name: str = "", admin: bool = False) -> User:
    with transaction.atomic():
        user = User.objects.create_user(username=username, password=password, is_staff=admin, is_superuser=admin)
        profile = profile_ensure(user)
        if display_name:
            profile.display_name = display_name
            profile.save(update_fields=["display_name"])
    return user


# --- single sign-on (docs/adr/0016) ---

def _unused_username(hint: str) -> str:
    """`hint` cut to what a username may hold (letters, digits, @.+-_), with -2, -3... if it is taken."""
    base = re.sub(r"[^\w.@+-]", "", hint)[:140] or "member"
    candidate, n = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _member_for_identity(*, subject: str, username_hint: str, email: str, email_verified: bool) -> tuple[User, str]:
    profile = Profile.objects.select_for_update().select_related("user").filter(oidc_subject=subject).first()
    if profile is not None:
        return profile.user, "matched"
    # An account made here before single sign-on is taken over only through an address the provider
    # vouches for, and only once: an account already tied to another subject is never re-tied.
    same_address = list(User.objects.filter(Q(profile__isnull=True) | Q(profile__oidc_subject__isnull=True),
                                            email__iexact=email)[:2]) if email and email_verified else []
    if len(same_address) == 1:
        return same_address[0], "linked"
    user = User.objects.create_user(username=_unused_username(username_hint), email=email)  # no password
    return user, "created"


def member_sign_in_with_identity(*, subject: str, username_hint: str, display_name: str, email: str = "",
                                 email_verified: bool = False, admin: bool | None = None) -> User:
    """The member an account at the sign-on provider signs in as, with name, e-mail and (unless `admin`
    is None) the admin role brought up to date from the provider's claims on every sign-in.

    Found by the provider's subject; else an account here with the same verified address and no
    subject yet; else a new member with a unique username made from `username_hint`."""
    if not subject:
        raise ValidationError("the provider sent no subject (sub claim)")
    for _attempt in range(3):
        try:
            with transaction.atomic():
                user, how = _member_for_identity(subject=subject, username_hint=username_hint, email=email,
                                                 email_verified=email_verified)
                profile = profile_ensure(user)
                profile.oidc_subject = subject
                profile.display_name = (display_name.strip() or user.get_username())[:80]
                profile.save(update_fields=["oidc_subject", "display_name"])
                changed = ["email"] if email and email != user.email else []
                user.email = email or user.email
                if admin is not None and (user.is_staff, user.is_superuser) != (admin, admin):
                    user.is_staff = user.is_superuser = admin
                    changed += ["is_staff", "is_superuser"]
                    logger.info("%s %s the admin role by single sign-on", user.get_username(),
                                "given" if admin else "lost", extra={
                                    "audit": "member.admin_granted" if admin else "member.admin_revoked",
                                    "user_id": user.pk})
                if changed:
                    user.save(update_fields=changed)
        except IntegrityError:
            continue  # a concurrent first sign-in took this subject or username: look again
        if how != "matched":
            logger.info("%s signed in through single sign-on for the first time (%s)", user.get_username(),
                        "new member" if how == "created" else "existing account, same verified e-mail",
                        extra={"audit": f"member.sign_on_{how}", "user_id": user.pk})
        return user
    raise ValidationError("could not sign this account in; try again")


# --- map and rooms ---

def _validate_layout(office_map: OfficeMap, rooms: list[Room]) -> None:
    shapes = [selectors.room_shape(r) for r in rooms]
    problems: list[str] = []
    for shape in shapes:
        problems.extend(shape.edge_problems())
        if shape.x + shape.width > office_map.width or shape.y + shape.height > office_map.height:
            problems.append(f"room {shape.name!r} does not fit on the {office_map.width}x{office_map.height} map")
    for a, b in overlapping_walled_rooms(shapes):
        problems.append(f"walled rooms {a.name!r} and {b.name!r} overlap")
    geometry = MapGeometry(office_map.width, office_map.height, (office_map.spawn_x, office_map.spawn_y), shapes)
    if not geometry.passable(office_map.spawn_x, office_map.spawn_y):
        problems.append("the spawn point is not on a free tile")
    spawn_room = geometry.room_at(office_map.spawn_x, office_map.spawn_y)
    if spawn_room is not None and spawn_room.private:
        problems.append("the spawn point may not be inside a private room")
    if problems:
        raise ValidationError(problems)


def _clean_doors(doors) -> list[list[int]]:
    if not isinstance(doors, list) or not all(
        isinstance(d, list | tuple) and len(d) == 2 and all(isinstance(v, int) and v >= 0 for v in d) for d in doors
    ):
        raise ValidationError("doors must be a list of [x, y] pairs of non-negative integers")
    return [list(d) for d in doors]


def _retention_fields(retention: dict) -> dict:
    unknown = set(retention) - set(RETENTION_FIELDS)
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}")
    return retention


def _announce_map_changed(office_map_id: int) -> None:
    # Open maps (the office socket) and open map editors (their own socket and group) reload the layout.
    send_event_on_commit(map_group(office_map_id), {"type": "map.changed", "map": office_map_id})
    send_event_on_commit(map_editors_group(office_map_id), {"type": "map.changed", "map": office_map_id})


def office_map_create(*, name: str, width: int, height: int, spawn_x: int, spawn_y: int, slug: str = "",
                      **retention: int | None) -> OfficeMap:
    """A new floor; `retention` holds its policy's `keep_<kind>_days` (empty: the site defaults)."""
    office_map = OfficeMap(
        name=name, slug=slug or slugify(name), width=width, height=height, spawn_x=spawn_x, spawn_y=spawn_y,
        **_retention_fields(retention),
    )
    office_map.full_clean()
    _validate_layout(office_map, [])
    office_map.save()
    return office_map


def office_map_update(*, office_map: OfficeMap, **fields) -> OfficeMap:
    with transaction.atomic():
        locked = OfficeMap.objects.select_for_update().get(pk=office_map.pk)
        for key, value in fields.items():
            setattr(locked, key, value)
        locked.full_clean()
        _validate_layout(locked, list(locked.rooms.all()))
        locked.save()
        _announce_map_changed(locked.id)
    return locked


def room_create(
    *,
    office_map: OfficeMap,
    name: str,
    kind: str,
    x: int,
    y: int,
    width: int,
    height: int,
    doors: list | None = None,
    capacity: int | None = None,
    assistant_enabled: bool = False,
    slug: str = "",
    **retention: int | None,
) -> Room:
    """Create a room and its chat thread; the whole layout is re-validated under a map lock.
    `retention` holds the room's own `keep_<kind>_days` (empty: the map's)."""
    with transaction.atomic():
        locked_map = OfficeMap.objects.select_for_update().get(pk=office_map.pk)
        room = Room(
            office_map=locked_map,
            name=name,
            slug=slug or slugify(name),
            kind=kind,
            x=x,
            y=y,
            width=width,
            height=height,
            doors=_clean_doors(doors or []),
            capacity=capacity,
            assistant_enabled=assistant_enabled,
            **_retention_fields(retention),
        )
        room.full_clean()
        _validate_layout(locked_map, [*locked_map.rooms.all(), room])
        room.save()
        ChatThread.objects.create(kind=ChatThread.Kind.ROOM, room=room)
        locked_map.save(update_fields=["updated_at"])
        _announce_map_changed(locked_map.id)
    return room


def room_check_layout(room: Room) -> None:
    """Raise ValidationError if `room` (new or changed, unsaved) would break its map's layout."""
    office_map = room.office_map
    others = [r for r in office_map.rooms.all() if r.pk != room.pk]
    _validate_layout(office_map, [*others, room])


def room_update(*, room: Room, **fields) -> Room:
    with transaction.atomic():
        locked_map = OfficeMap.objects.select_for_update().get(pk=room.office_map_id)
        room = Room.objects.get(pk=room.pk)
        if "doors" in fields:
            fields["doors"] = _clean_doors(fields["doors"])
        for key, value in fields.items():
            setattr(room, key, value)
        room.full_clean()
        others = [r for r in locked_map.rooms.all() if r.pk != room.pk]
        _validate_layout(locked_map, [*others, room])
        room.save()
        _announce_map_changed(locked_map.id)
    return room


def room_delete(*, room: Room) -> None:
    with transaction.atomic():
        map_id = room.office_map_id
        room.delete()
        _announce_map_changed(map_id)


def room_members_changed(*, room: Room, user_ids: set[int]) -> None:
    """Tell these members' open sockets to re-check their access (after commit)."""
    for uid in user_ids:
        send_event_on_commit(user_group(uid), {"type": "access.changed", "room": room.id})


def office_map_changed(*, office_map_id: int) -> None:
    """Open sockets on this map reload its layout (after commit)."""
    _announce_map_changed(office_map_id)


def room_set_members(*, room: Room, user_ids: list[int]) -> list[int]:
    """Replace a room's member list; affected members' open sockets re-check their access."""
    with transaction.atomic():
        wanted = set(User.objects.filter(pk__in=user_ids, is_active=True).values_list("id", flat=True))
        missing = set(user_ids) - wanted
        if missing:
            raise ValidationError(f"unknown or inactive users: {sorted(missing)}")
        current = set(room.memberships.values_list("user_id", flat=True))
        RoomMembership.objects.filter(room=room, user_id__in=current - wanted).delete()
        RoomMembership.objects.bulk_create([RoomMembership(room=room, user_id=uid) for uid in wanted - current])
        room_members_changed(room=room, user_ids=current ^ wanted)
    return sorted(wanted)


def _validate_desk(office_map: OfficeMap, desk: Desk) -> None:
    """A desk stands on a free tile of its map (not a wall); one desk per tile is the table's constraint."""
    desk.full_clean()
    geometry = selectors.map_geometry(office_map)
    if not geometry.in_bounds(desk.x, desk.y):
        raise ValidationError(f"desk {desk.label!r} at [{desk.x}, {desk.y}] is outside the "
                              f"{office_map.width}x{office_map.height} map")
    if not geometry.passable(desk.x, desk.y):
        raise ValidationError(f"desk {desk.label!r} at [{desk.x}, {desk.y}] would stand on a wall")


def desk_check(desk: Desk) -> None:
    """Raise ValidationError if `desk` (new or changed, unsaved) may not stand where it is (the admin's form),
    with plain messages (a form shows them above its fields)."""
    try:
        _validate_desk(desk.office_map, desk)
    except ValidationError as exc:
        raise ValidationError(exc.messages) from exc


def desk_create(*, office_map: OfficeMap, label: str, x: int, y: int, owner=None) -> Desk:
    with transaction.atomic():
        locked_map = OfficeMap.objects.select_for_update().get(pk=office_map.pk)
        desk = Desk(office_map=locked_map, label=label, x=x, y=y, owner=owner)
        _validate_desk(locked_map, desk)
        desk.save()
        _announce_map_changed(locked_map.id)
    return desk


def desk_update(*, desk: Desk, **fields) -> Desk:
    """Move, relabel or give a desk to someone (`owner`: a user or None)."""
    unknown = set(fields) - {"label", "x", "y", "owner"}
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        locked_map = OfficeMap.objects.select_for_update().get(pk=desk.office_map_id)
        desk = Desk.objects.get(pk=desk.pk)
        for key, value in fields.items():
            setattr(desk, key, value)
        _validate_desk(locked_map, desk)
        desk.save()
        _announce_map_changed(locked_map.id)
    return desk


def desk_delete(*, desk: Desk) -> None:
    with transaction.atomic():
        map_id = desk.office_map_id
        desk.delete()
        _announce_map_changed(map_id)


# --- a map as a document (export / import) ---

MAP_DOCUMENT_FORMAT = "office-map"
MAP_DOCUMENT_VERSION = 1


def office_map_import(*, document: dict) -> OfficeMap:
    """A new map from a `selectors.office_map_document` (already shape-checked by the API), built
    through the same services and validation as every other write, in one transaction: any problem
    (an overlap, a door off an edge, an unknown member) and nothing is created. Members and desk
    owners are named by username, so a map moves between offices."""
    if document.get("format") != MAP_DOCUMENT_FORMAT or document.get("version") != MAP_DOCUMENT_VERSION:
        raise ValidationError(f"not an {MAP_DOCUMENT_FORMAT} document of version {MAP_DOCUMENT_VERSION}")
    map_fields = dict(document["map"])
    spawn_x, spawn_y = map_fields.pop("spawn")
    rooms = document.get("rooms", [])
    desks = document.get("desks", [])
    usernames = {name for room in rooms for name in room.get("members", [])}
    usernames |= {desk["owner"] for desk in desks if desk.get("owner")}
    users = {u.username: u for u in User.objects.filter(username__in=usernames, is_active=True)}
    if missing := sorted(usernames - set(users)):
        raise ValidationError(f"unknown or inactive members: {', '.join(missing)}")
    with transaction.atomic():
        office_map = office_map_create(spawn_x=spawn_x, spawn_y=spawn_y, **map_fields)
        # The whole layout first, so the answer lists every problem, not only the first room's.
        _validate_layout(office_map, [Room(office_map=office_map, **_room_fields(room)) for room in rooms])
        for room_doc in rooms:
            room = room_create(office_map=office_map, **_room_fields(room_doc))
            if room_doc.get("members"):
                room_set_members(room=room, user_ids=[users[name].pk for name in room_doc["members"]])
        for desk in desks:
            desk_create(office_map=office_map, label=desk["label"], x=desk["x"], y=desk["y"],
                        owner=users.get(desk.get("owner") or ""))
    return office_map


def _room_fields(room: dict) -> dict:
    return {key: value for key, value in room.items() if key != "members"}


# --- room visits (who is in which room) ---

def room_visit_move(*, user, from_room_id: int | None, to_room_id: int | None) -> None:
    """Record that a member left one room and/or entered another (one open visit per member)."""
    now = timezone.now()
    with transaction.atomic():
        RoomVisit.objects.filter(user=user, left_at__isnull=True).update(left_at=now)
        if to_room_id is not None and Room.objects.filter(pk=to_room_id).exists():
            RoomVisit.objects.create(user=user, room_id=to_room_id)
        signals.room_presence_changed.send(sender=RoomVisit, user=user, left_room_id=from_room_id,
                                           entered_room_id=to_room_id)


def room_occupant_ids(room_id: int) -> set[int]:
    return set(RoomVisit.objects.filter(room_id=room_id, left_at__isnull=True).values_list("user_id", flat=True))


# --- chat ---

def _validate_body(body) -> str:
    if not isinstance(body, str):
        raise ValidationError("body must be text")
    body = body.strip()
    if not body:
        raise ValidationError("message is empty")
    if len(body) > settings.OFFICE_CHAT_MAX_CHARS:
        raise ValidationError(f"message is longer than {settings.OFFICE_CHAT_MAX_CHARS} characters")
    return body


def chat_message_send(*, user, thread_id: int, body: str, client_id: str = "") -> tuple[ChatMessage, bool]:
    """Persist a message with the thread's next sequence number, then nudge readers after commit.

    Returns (message, created). A retried send with the same client_id returns the stored message
    instead of writing a second one, so a client may resend freely after a dropped connection.
    """
    body = _validate_body(body)
    thread = selectors.thread_for_user(user, thread_id)  # authorisation on every send
    return _chat_message_write(thread=thread, author=user, body=body, client_id=client_id)


SYSTEM_USERNAME = "office"


def system_user() -> User:
    """The author of messages the office itself posts (assistant, facilities): cannot sign in."""
    user, created = User.objects.get_or_create(username=SYSTEM_USERNAME, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        profile = profile_ensure(user)
        profile.display_name = "Office"
        profile.save(update_fields=["display_name"])
    return user


def system_message_send(*, room: Room, body: str, client_id: str = "") -> tuple[ChatMessage, bool]:
    """Post to a room's chat as the office (rules, assistant). `client_id` makes retries post once."""
    body = _validate_body(body)
    thread, _ = ChatThread.objects.get_or_create(kind=ChatThread.Kind.ROOM, room=room)
    return _chat_message_write(thread=thread, author=system_user(), body=body, client_id=client_id)


def _chat_message_write(*, thread: ChatThread, author, body: str, client_id: str) -> tuple[ChatMessage, bool]:
    if not isinstance(client_id, str) or len(client_id) > 64:
        raise ValidationError("client_id must be text of at most 64 characters")
    if client_id:
        existing = ChatMessage.objects.filter(thread=thread, author=author, client_id=client_id).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            # The row lock from this UPDATE serialises writers of one thread; seq has no gaps.
            ChatThread.objects.filter(pk=thread.pk).update(last_seq=F("last_seq") + 1)
            seq = ChatThread.objects.filter(pk=thread.pk).values_list("last_seq", flat=True).get()
            message = ChatMessage.objects.create(
                thread=thread, seq=seq, author=author, body=body, client_id=client_id
            )
            _advance_read_mark(user=author, thread_id=thread.pk, seq=seq)
            payload = selectors.chat_message_payload(message)
            send_event_on_commit(thread_group(thread.pk), {"type": "chat.message", "message": payload})
            signals.chat_message_sent.send(sender=ChatMessage, message=message)
    except IntegrityError:
        # A concurrent retry with the same client_id won the race; hand back its row.
        existing = ChatMessage.objects.filter(thread=thread, author=author, client_id=client_id).first()
        if existing is None:
            raise
        return existing, False
    CHAT_MESSAGES.inc()
    return message, True


def _advance_read_mark(*, user, thread_id: int, seq: int) -> None:
    updated = ChatReadState.objects.filter(thread_id=thread_id, user=user).update(
        last_read_seq=Greatest(F("last_read_seq"), seq)
    )
    if not updated:
        ChatReadState.objects.get_or_create(thread_id=thread_id, user=user, defaults={"last_read_seq": seq})


def chat_thread_mark_read(*, user, thread_id: int, seq: int) -> int:
    """Move the user's read mark forward (never back); returns the new unread count."""
    if not isinstance(seq, int) or seq < 0:
        raise ValidationError("seq must be a non-negative integer")
    thread = selectors.thread_for_user(user, thread_id)
    with transaction.atomic():
        _advance_read_mark(user=user, thread_id=thread.pk, seq=min(seq, thread.last_seq))
    mark = ChatReadState.objects.get(thread=thread, user=user).last_read_seq
    return ChatMessage.objects.filter(thread=thread, seq__gt=mark).exclude(author=user).count()


def direct_thread_open(*, user, other_user_id: int) -> tuple[ChatThread, bool]:
    """The one direct conversation between two active members, created on first use."""
    if other_user_id == user.id:
        raise ValidationError("you cannot start a direct conversation with yourself")
    other = User.objects.filter(pk=other_user_id, is_active=True).first()
    if other is None:
        raise selectors.NotFound("no such member")
    low, high = sorted((user.id, other.id))
    key = f"{low}:{high}"
    with transaction.atomic():
        thread, created = ChatThread.objects.get_or_create(kind=ChatThread.Kind.DIRECT, direct_key=key)
        if created:
            thread.participants.add(user, other)
            for uid in (user.id, other.id):
                send_event_on_commit(user_group(uid), {"type": "thread.added", "thread": thread.pk})
    return thread, created


# --- API tokens (scripts and integrations) ---

API_TOKEN_LIMIT = 20  # active tokens per member


def api_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, user, name: str, scope: str) -> tuple[ApiToken, str]:
    """A new token for `user`: (its row, the token itself, which is shown once and never stored)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("give the token a name (what will use it)")
    if len(name) > 80:
        raise ValidationError("a token's name has at most 80 characters")
    if scope not in ApiToken.Scope.values:
        raise ValidationError(f"scope must be one of {', '.join(ApiToken.Scope.values)}")
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= API_TOKEN_LIMIT:
        raise ValidationError(f"at most {API_TOKEN_LIMIT} active tokens: revoke one first")
    prefix = secrets.token_hex(4)
    token = f"office_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken.objects.create(user=user, name=name, scope=scope, prefix=prefix, token_hash=api_token_hash(token))
    logger.info("API token %s… (%s) created by %s", prefix, scope, user.get_username(),
                extra={"audit": "api_token.created", "token_prefix": prefix, "user_id": user.pk})
    return row, token


def api_token_revoke(*, user, token_id: int) -> ApiToken:
    """Revoke one of `user`'s own tokens (at once, on every node: it is checked on each request)."""
    row = ApiToken.objects.filter(pk=token_id, user=user).first()
    if row is None:
        raise selectors.NotFound("no such token")
    if row.revoked_at is None:
        ApiToken.objects.filter(pk=row.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        row.refresh_from_db()
        logger.info("API token %s… revoked by %s", row.prefix, user.get_username(),
                    extra={"audit": "api_token.revoked", "token_prefix": row.prefix, "user_id": user.pk})
    return row


def api_token_authenticate(token: str) -> ApiToken | None:
    """The active token row for a presented token (its member active), else None; notes its use."""
    parts = token.split("_", 2)  # the secret part may itself contain "_"
    if len(parts) != 3 or parts[0] != "office":
        return None
    row = (ApiToken.objects.select_related("user").filter(prefix=parts[1], revoked_at__isnull=True,
                                                           user__is_active=True).first())
    if row is None or not hmac.compare_digest(row.token_hash, api_token_hash(token)):
        return None
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:  # one write a minute at most
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row


# --- the megaphone (docs/adr/0022) ---

ANNOUNCEMENT_MAX_CHARS = 500
ANNOUNCEMENT_DEFAULT_SECONDS = 120
ANNOUNCEMENT_MAX_SECONDS = 3600


def announcement_make(*, author, office_map: OfficeMap, text: str, room: Room | None = None,
                      audio: bytes | None = None, duration_seconds: int = ANNOUNCEMENT_DEFAULT_SECONDS) -> Announcement:
    """An admin speaks to a whole map or one room of it. Stored first; the map's sockets hear of it
    after commit and each shows it only if it is for the whole map or the room its member stands in."""
    if not getattr(author, "is_staff", False):
        raise PermissionDenied("only admins may use the megaphone")
    text = (text or "").strip()
    if not text:
        raise ValidationError("say something: the announcement's text is empty")
    if len(text) > ANNOUNCEMENT_MAX_CHARS:
        raise ValidationError(f"an announcement is at most {ANNOUNCEMENT_MAX_CHARS} characters")
    if room is not None and room.office_map_id != office_map.pk:
        raise ValidationError("that room is not on this map")
    if not 10 <= duration_seconds <= ANNOUNCEMENT_MAX_SECONDS:
        raise ValidationError(f"an announcement shows for 10 to {ANNOUNCEMENT_MAX_SECONDS} seconds")
    audio_type = ""
    if audio is not None:
        try:
            audio_type = audio_clips.clip_check(audio)
        except audio_clips.ClipRefused as exc:
            raise ValidationError(str(exc)) from exc
    with transaction.atomic():
        announcement = Announcement.objects.create(
            office_map=office_map, room=room, author=author, text=text, audio=audio or None, audio_type=audio_type,
            ends_at=timezone.now() + timedelta(seconds=duration_seconds),
        )
        send_event_on_commit(map_group(office_map.pk), {
            "type": "announcement.made", "announcement": selectors.announcement_payload(announcement)})
    logger.info("announcement %s by %s", announcement.pk, author.get_username(),
                extra={"audit": "announcement.made", "announcement_id": announcement.pk, "user_id": author.pk})
    return announcement


# --- knocking on private rooms (docs/adr/0022) ---

KNOCK_ANSWER_SECONDS = 30  # members have this long to answer; then the knock lapses
KNOCK_INTERVAL_SECONDS = 30  # one knock per person per room this often
GUEST_PASS_MINUTES = 30


class KnockTooSoon(ValidationError):
    """The same person knocked on the same door less than KNOCK_INTERVAL_SECONDS ago."""


def room_knock(*, user, room_id: int) -> RoomKnock:
    """Someone at a private room's door asks to come in; the room's members are asked after commit.
    (Where they stand is the socket's to check: it knows.)"""
    with transaction.atomic():
        # The room's row lock serialises knocks on it, so two frames cannot both pass the interval check.
        room = Room.objects.select_for_update().filter(pk=room_id, kind=Room.Kind.PRIVATE).first()
        if room is None:
            raise selectors.NotFound("no such private room")
        if room.id in selectors.private_room_ids_for(user, room.office_map_id):
            raise ValidationError(f"you may already enter {room.name}")
        since = timezone.now() - timedelta(seconds=KNOCK_INTERVAL_SECONDS)
        if RoomKnock.objects.filter(user=user, room=room, created_at__gt=since).exists():
            raise KnockTooSoon(f"you knocked on {room.name} less than {KNOCK_INTERVAL_SECONDS} seconds ago; "
                               "wait before knocking again")
        knock = RoomKnock.objects.create(room=room, user=user)
        knock_out = selectors.room_knock_payload(knock)
        for member_id in room.memberships.exclude(user=user).values_list("user_id", flat=True):
            send_event_on_commit(user_group(member_id), {"type": "room.knock", "knock": knock_out})
    return knock


def _knock_settled(knock: RoomKnock, *, result: str, by_name: str | None) -> None:
    """Tell the knocker how it went and close the prompt on every member's page (after commit)."""
    send_event_on_commit(user_group(knock.user_id), {
        "type": "room.knock.answered", "knock": knock.pk, "room": knock.room_id, "map": knock.room.office_map_id,
        "result": result, "by": by_name})
    for member_id in RoomMembership.objects.filter(room_id=knock.room_id).values_list("user_id", flat=True):
        send_event_on_commit(user_group(member_id), {"type": "room.knock.closed", "knock": knock.pk,
                                                     "result": result})


def room_knock_answer(*, user, knock_id: int, let_in: bool) -> RoomKnock:
    """A member lets the knocker in (a guest pass) or ignores them. The first answer wins: claimed with
    a conditional UPDATE, so two members answering at once cannot both decide."""
    knock = RoomKnock.objects.select_related("room").filter(pk=knock_id, room__memberships__user=user).first()
    if knock is None:
        raise selectors.NotFound("no such knock")
    now = timezone.now()
    answer = RoomKnock.Answer.LET_IN if let_in else RoomKnock.Answer.IGNORED
    with transaction.atomic():
        claimed = RoomKnock.objects.filter(
            pk=knock.pk, answered_at__isnull=True,
            created_at__gt=now - timedelta(seconds=KNOCK_ANSWER_SECONDS),
        ).update(answered_at=now, answer=answer, answered_by=user)
        if claimed != 1:
            raise ValidationError("this knock was already answered or has lapsed", code="conflict")
        if let_in:
            RoomGuestPass.objects.create(room=knock.room, user_id=knock.user_id, granted_by=user, knock=knock,
                                         expires_at=now + timedelta(minutes=GUEST_PASS_MINUTES))
        _knock_settled(knock, result="accepted" if let_in else "ignored", by_name=profile_ensure(user).display_name)
    knock.refresh_from_db()
    return knock


def room_knock_lapse(*, knock_id: int) -> bool:
    """No one answered in time: the knock lapses (once) and the knocker is told. True if it lapsed now."""
    knock = RoomKnock.objects.select_related("room").filter(pk=knock_id).first()
    if knock is None:
        return False
    with transaction.atomic():
        lapsed = RoomKnock.objects.filter(pk=knock_id, answered_at__isnull=True).update(
            answered_at=timezone.now(), answer=RoomKnock.Answer.UNANSWERED)
        if lapsed:
            _knock_settled(knock, result="unanswered", by_name=None)
    return bool(lapsed)


def room_knocks_lapse_overdue(*, now=None, user_id: int | None = None) -> int:
    """Knocks nobody answered in time lapse, however their knocker's page went (closed, or its web
    process stopped: the page's own timer went with it). With `user_id`: that knocker's open knocks,
    due or not (they left the door). Returns how many lapsed now."""
    now = now or timezone.now()
    pending = RoomKnock.objects.filter(answered_at__isnull=True)
    if user_id is not None:
        pending = pending.filter(user_id=user_id)
    else:
        pending = pending.filter(created_at__lte=now - timedelta(seconds=KNOCK_ANSWER_SECONDS))
    return sum(room_knock_lapse(knock_id=knock_id) for knock_id in pending.values_list("pk", flat=True))


def room_guest_pass_end(*, user, room_id: int) -> int:
    """The guest walked out: their passes to that room end (how many ended)."""
    return RoomGuestPass.objects.filter(user=user, room_id=room_id, ended_at__isnull=True,
                                        expires_at__gt=timezone.now()).update(ended_at=timezone.now())
