"""In-app notifications: a row in the member's inbox, then a live nudge to their sockets."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from ..errors import PermanentError
from ..inbox import notification_create


class NotificationConnector:
    name = "notification"
    transactional = True

    def deliver(self, message: dict, *, idempotency_key: str) -> dict:
        user = get_user_model().objects.filter(pk=message.get("user_id"), is_active=True).first()
        if user is None:
            raise PermanentError(f"no active member with id {message.get('user_id')!r}")
        title = str(message.get("title", "")).strip()
        if not title:
            raise PermanentError("a notification needs a title")
        notification = notification_create(
            user=user, title=title, body=str(message.get("body", "")), url=str(message.get("url", "")),
            idempotency_key=idempotency_key, run_id=message.get("run_id"),
        )
        return {"notification_id": notification.pk}

    def breaker_name(self, message: dict) -> str:
        return self.name
