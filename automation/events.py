"""What the sockets send about work and the inbox: frame `type` -> the serializer of its other fields
(see rooms/events.py). `CLIENT_EVENTS` come on the office socket and on the inbox socket, which
every page opens for the top bar's bell (`INBOX_SOCKET_EVENTS`). Each is sent after its write
commits and is only a nudge."""

from __future__ import annotations

from rest_framework import serializers

from .serializers import NotificationOut, TaskOut, TicketOut


class TaskChangedEvent(serializers.Serializer):
    """To the task's owner and creator (and anyone a change moved it away from); `GET /api/tasks/`."""

    task = TaskOut()


class TicketChangedEvent(serializers.Serializer):
    """To admins (facilities) and whoever opened the ticket; `GET /api/tickets/`."""

    ticket = TicketOut()


class NotificationNewEvent(serializers.Serializer):
    """To the member it is for; the inbox is `/notifications/`."""

    notification = NotificationOut()


class NotificationReadEvent(serializers.Serializer):
    """To the member, after notifications were marked read (in any tab): `unread` is the count once that committed."""

    ids = serializers.ListField(child=serializers.IntegerField(), allow_null=True,
                                help_text="the ids marked read; null: all of them")
    unread = serializers.IntegerField()


CLIENT_EVENTS = {
    "task.changed": TaskChangedEvent,
    "ticket.changed": TicketChangedEvent,
    "notification.new": NotificationNewEvent,
    "notification.read": NotificationReadEvent,
}


class InboxHelloEvent(serializers.Serializer):
    """The first frame, on every (re)connect: the count to show (what was missed meanwhile is in the REST inbox)."""

    unread = serializers.IntegerField(help_text="unread notifications")


class InboxPongEvent(serializers.Serializer):
    """The answer to exactly `{"type":"ping"}`."""


class InboxErrorEvent(serializers.Serializer):
    """Not signed in: the socket then closes with 4401."""

    code = serializers.CharField(help_text="not_signed_in")
    fatal = serializers.BooleanField(help_text="true")


INBOX_SOCKET_EVENTS = {
    "hello": InboxHelloEvent,
    **CLIENT_EVENTS,
    "pong": InboxPongEvent,
    "error": InboxErrorEvent,
}
