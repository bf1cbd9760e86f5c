"""Members' notification inbox: create (idempotent, announced after commit) and mark read.

A service module of its own, below `services/` and `connectors/`: the notification connector delivers
through it and the services re-export it, so neither has to import the other."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from automation.serializers import NotificationOut
from office.events import send_event_on_commit, user_group

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
    """Mark some (or all, with None) of the member's own notifications read; returns how many changed."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())
