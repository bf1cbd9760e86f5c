"""Members' notification inbox: create (idempotent, announced after commit), notify the people a
chat message @mentions, and mark read (announced too, so every open tab shows the same count).

A service module of its own, below `services/` and `connectors/`: the notification connector delivers
through it and the services re-export it, so neither has to import the other."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from automation.serializers import NotificationOut
from office import events as live_events
from office.events import send_event_on_commit, user_group
from rooms.mentions import chat_mentioned_readers
from rooms.models import ChatMessage, display_name

from .models import Notification


def notification_payload(notification: Notification) -> dict:
    return dict(NotificationOut(notification).data)


def notification_create(*, user, title: str, body: str = "", url: str = "", idempotency_key: str | None = None,
                        run_id: int | None = None) -> Notification:
    """Put a notification in the member's inbox; their sockets hear of it after commit."""
    with transaction.atomic():
        if idempotency_key:
            existing = Notification.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        notification = Notification.objects.create(
            user=user, title=title[:200], body=body, url=url[:500], idempotency_key=idempotency_key or None,
            run_id=run_id,
        )
        send_event_on_commit(user_group(user.pk), {"type": "notification.new",
                                                   "notification": notification_payload(notification)})
    return notification


def notification_mark_read(*, user, notification_ids: list[int] | None = None) -> int:
    """Mark some (or all, with None) of the member's own notifications read; returns how many changed.

    Once that commits, the member's sockets hear `notification.read` with the unread count as it is
    then, so a read in one tab clears the bell in the others."""
    with transaction.atomic():
        unread = Notification.objects.filter(user=user, read_at__isnull=True)
        if notification_ids is not None:
            unread = unread.filter(pk__in=notification_ids)
        ids = sorted(unread.values_list("pk", flat=True))
        marked = Notification.objects.filter(pk__in=ids, read_at__isnull=True).update(read_at=timezone.now())
        if marked:
            user_id = user.pk
            transaction.on_commit(lambda: live_events.send_event(user_group(user_id), {
                "type": "notification.read", "ids": ids if notification_ids is not None else None,
                "unread": Notification.objects.filter(user_id=user_id, read_at__isnull=True).count(),
            }))
    return marked


def chat_mentions_notify(*, message: ChatMessage) -> list[Notification]:
    """A notification for each member `message` @mentions who may read it (rooms.mentions), once per
    message and person: runs inside the message's transaction (rooms' `chat_message_sent`)."""
    readers = chat_mentioned_readers(message)
    if not readers:
        return []
    thread = message.thread
    where = f"in {thread.room.name}" if thread.room_id else "in a direct message"
    author = display_name(message.author)
    return [
        notification_create(user=reader, title=f"{author} mentioned you {where}", body=message.body[:500],
                            url="/", idempotency_key=f"mention:{message.pk}:{reader.pk}")
        for reader in readers
    ]
