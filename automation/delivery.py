"""The one way reminders and digests leave the work kernel.

Called inside the transaction that claims a send, so the claim and the hand-over commit together.
Until the durable workflow engine routes these (in-app inbox, e-mail, chat, with retries), the
member gets a live event after commit.
"""

from __future__ import annotations

import logging

from office.events import send_event_on_commit, user_group

logger = logging.getLogger(__name__)


def member_notify(*, user_id: int, kind: str, title: str, body: str, data: dict, idempotency_key: str) -> None:
    """Tell a member something (`kind` is "task.reminder" or "digest.ready"); at most once per key."""
    send_event_on_commit(
        user_group(user_id),
        {"type": "notification", "kind": kind, "title": title, "body": body, "data": data, "key": idempotency_key},
    )
    logger.info("notification %s for user %s queued", idempotency_key, user_id)
