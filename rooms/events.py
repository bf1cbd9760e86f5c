"""What the office socket sends about the map, presence and chat: frame `type` -> the serializer of
its other fields (docstring: when it comes). docs/protocol.md's table is generated from this
(office/protocol.py) and tests/test_protocol_doc.py checks real frames against it."""

from __future__ import annotations

from rest_framework import serializers

from office.serializers import JsonListField

from .serializers import (
    AnnouncementOut,
    ChatMessageOut,
    MapLayoutOut,
    MemberOut,
    MeOut,
    PresenceOut,
    RoomKnockOut,
    ThreadSummaryOut,
)


class PositionOut(serializers.Serializer):
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    room = serializers.IntegerField(allow_null=True)


class LimitsOut(serializers.Serializer):
    max_frame_bytes = serializers.IntegerField()
    rate_per_second = serializers.IntegerField()
    chat_max_chars = serializers.IntegerField()


class HelloEvent(serializers.Serializer):
    """The first frame: who you are, where you stand, the map, your conversations and who is here."""

    protocol = serializers.IntegerField(help_text="1")
    me = MeOut()
    you = PositionOut()
    map = MapLayoutOut()
    threads = ThreadSummaryOut(many=True)
    presence = PresenceOut(many=True)
    members = MemberOut(many=True)
    tick_ms = serializers.IntegerField()
    ice_servers = JsonListField(help_text="STUN/TURN servers for voice; none by default")
    ice_transport_policy = serializers.ChoiceField(
        choices=["all", "relay"], help_text="RTCPeerConnection iceTransportPolicy; relay: media only through TURN")
    node = serializers.CharField(help_text="the web node holding this socket")
    limits = LimitsOut()


class MovesEvent(serializers.Serializer):
    """Batched per tick: positions of people in your area of interest, your own moves included (the
    server's acknowledgement)."""

    m = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()),
                              help_text="[[user, x, y, seq], ...]")


class MoveRejectedEvent(serializers.Serializer):
    """A step was refused (or your access changed): go back to the authoritative position."""

    seq = serializers.IntegerField()
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    reason = serializers.CharField()


class PresenceJoinEvent(serializers.Serializer):
    """Someone arrived on the map."""

    person = PresenceOut()


class PresenceUpdateEvent(serializers.Serializer):
    """Someone changed status or room."""

    person = PresenceOut()


class PresenceLeaveEvent(serializers.Serializer):
    """Someone left the map."""

    user = serializers.IntegerField()


class ChatMessageEvent(serializers.Serializer):
    """A new message in a conversation you read, in sequence (a gap is filled from the database)."""

    message = ChatMessageOut()


class ChatAckEvent(serializers.Serializer):
    """Your `chat.send` is stored."""

    thread = serializers.IntegerField()
    seq = serializers.IntegerField()
    client_id = serializers.CharField(allow_null=True)


class ChatBacklogEvent(serializers.Serializer):
    """What you missed (after `hello` or `chat.resume`), oldest first."""

    thread = serializers.IntegerField()
    messages = ChatMessageOut(many=True)
    more = serializers.BooleanField(help_text="another backlog frame follows")


class ChatHistoryEvent(serializers.Serializer):
    """The answer to `chat.history`."""

    thread = serializers.IntegerField()
    messages = ChatMessageOut(many=True, help_text="oldest first")
    more = serializers.BooleanField(help_text="older pages exist")


class ChatUnreadEvent(serializers.Serializer):
    """The answer to `chat.read`."""

    thread = serializers.IntegerField()
    unread = serializers.IntegerField()


class ThreadAddedEvent(serializers.Serializer):
    """A conversation you may now read (a direct message, or access to a private room)."""

    thread = ThreadSummaryOut()


class ThreadRemovedEvent(serializers.Serializer):
    """A conversation you may no longer read."""

    thread = serializers.IntegerField(help_text="id")


class DmOpenedEvent(serializers.Serializer):
    """The answer to `dm.open`."""

    thread = serializers.IntegerField()
    user = serializers.IntegerField()


class MapChangedEvent(serializers.Serializer):
    """An admin changed the map: the new layout."""

    map = MapLayoutOut()


class PongEvent(serializers.Serializer):
    """The answer to `ping`."""

    t = serializers.IntegerField(help_text="server time, ms since the epoch")


class ErrorEvent(serializers.Serializer):
    """A frame was refused, or (fatal) the socket closes next with a close code (below)."""

    code = serializers.CharField()
    message = serializers.CharField()
    ref = serializers.CharField(required=False, help_text="the frame type it refers to")
    client_id = serializers.CharField(required=False, help_text="of a failed `chat.send`")
    fatal = serializers.BooleanField(required=False, help_text="true")


class AnnouncementEvent(serializers.Serializer):
    """An admin's megaphone message: to the whole map, or to the room you stand in (also when you walk
    in, or open the page, while it still shows)."""

    announcement = AnnouncementOut()


class RoomKnockEvent(serializers.Serializer):
    """Someone knocks on a private room you belong to: answer with `room.knock.answer`."""

    knock = RoomKnockOut()
    answer_within = serializers.IntegerField(help_text="seconds before the knock lapses")


class RoomKnockResultEvent(serializers.Serializer):
    """How your knock goes: waiting (sent), then accepted (you may step in now), ignored or unanswered."""

    knock = serializers.IntegerField()
    room = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["waiting", "accepted", "ignored", "unanswered"])
    by = serializers.CharField(allow_null=True, help_text="the member who answered")
    answer_within = serializers.IntegerField(allow_null=True, help_text="while waiting: seconds members have")


class RoomKnockClosedEvent(serializers.Serializer):
    """A knock you were asked about was answered (by you or another member) or lapsed."""

    knock = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["accepted", "ignored", "unanswered"])


class SfuGrantOut(serializers.Serializer):
    url = serializers.CharField(help_text="the SFU's Janus HTTP API")
    room = serializers.IntegerField(help_text="the SFU (videoroom) room")
    token = serializers.CharField(help_text="send as `token` with every Janus request and in the videoroom join")


class SfuJoinEvent(serializers.Serializer):
    """The meeting room you stand in sends its media through the SFU now (docs/adr/0023): join it with
    this grant. The grant is revoked when you walk out or lose access to the room."""

    room = serializers.IntegerField(help_text="the office room")
    sfu = SfuGrantOut()


class SfuFeedsEvent(serializers.Serializer):
    """Who published each feed of the SFU room you stand in, told by the grant each feed was published
    with (answers `sfu.feeds`): label voices and tiles by this, never by a feed's display name."""

    room = serializers.IntegerField(help_text="the office room")
    owners = serializers.DictField(child=serializers.IntegerField(),
                                   help_text="feed id (as text) -> the member who published it")


CLIENT_EVENTS = {
    "hello": HelloEvent,
    "moves": MovesEvent,
    "move.rejected": MoveRejectedEvent,
    "presence.join": PresenceJoinEvent,
    "presence.update": PresenceUpdateEvent,
    "presence.leave": PresenceLeaveEvent,
    "chat.message": ChatMessageEvent,
    "chat.ack": ChatAckEvent,
    "chat.backlog": ChatBacklogEvent,
    "chat.history": ChatHistoryEvent,
    "chat.unread": ChatUnreadEvent,
    "thread.added": ThreadAddedEvent,
    "thread.removed": ThreadRemovedEvent,
    "dm.opened": DmOpenedEvent,
    "map.changed": MapChangedEvent,
    "announcement": AnnouncementEvent,
    "room.knock": RoomKnockEvent,
    "room.knock.result": RoomKnockResultEvent,
    "room.knock.closed": RoomKnockClosedEvent,
    "sfu.join": SfuJoinEvent,
    "sfu.feeds": SfuFeedsEvent,
    "pong": PongEvent,
    "error": ErrorEvent,
}


class EditorHelloEvent(serializers.Serializer):
    """The first frame, on every (re)connect: the map's layout as it is now."""

    map = MapLayoutOut()


class EditorPongEvent(serializers.Serializer):
    """The answer to exactly `{"type":"ping"}`."""


class EditorErrorEvent(serializers.Serializer):
    """Not signed in (4401), not an admin or no such map (4403): the socket then closes."""

    code = serializers.CharField(help_text="not_signed_in, forbidden or not_found")
    message = serializers.CharField()
    fatal = serializers.BooleanField(help_text="true")


# The map editor's socket (`ws/maps/<id>/edit/`, admins): it only listens for the layout.
EDITOR_SOCKET_EVENTS = {
    "hello": EditorHelloEvent,
    "map.changed": MapChangedEvent,
    "pong": EditorPongEvent,
    "error": EditorErrorEvent,
}
