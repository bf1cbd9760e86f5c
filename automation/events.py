"""What the office socket sends about work and the inbox: frame `type` -> the serializer of its
other fields (see rooms/events.py). Each is sent after its write commits and is only a nudge."""

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


CLIENT_EVENTS = {
    "task.changed": TaskChangedEvent,
    "ticket.changed": TicketChangedEvent,
    "notification.new": NotificationNewEvent,
}
