"""Work features on sockets: a member's own notifications (and reads of them), task and ticket
changes, sent on their user group once the change has committed. They are nudges; the pages hold
the full state over REST.

`WorkSocketMixin` joins the office socket (office/routing.py). `InboxConsumer` is the same events
on a socket of their own, `/ws/inbox/`, which every page's top bar opens for the bell: pages other
than the map have no office socket, and the map's is one per member (a second tab replaces it).
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from office.events import user_group
from office.listening_socket import ListeningSocket

from .workflows import selectors as inbox_selectors

CLOSE_NOT_SIGNED_IN = 4401  # docs/adr/0003


class WorkSocketMixin:
    async def notification_new(self, event: dict) -> None:
        await self._send_json(event)

    async def notification_read(self, event: dict) -> None:
        await self._send_json(event)

    async def task_changed(self, event: dict) -> None:
        await self._send_json(event)

    async def ticket_changed(self, event: dict) -> None:
        await self._send_json(event)


class InboxConsumer(WorkSocketMixin, ListeningSocket):
    """Listens only (and answers a ping); every connect says the unread count, so a reconnect resyncs."""

    async def connect(self) -> None:
        self.user = self.scope["user"]
        await self.accept()
        if not self.user.is_authenticated:
            await self._send_json({"type": "error", "code": "not_signed_in", "fatal": True})
            await self.close(code=CLOSE_NOT_SIGNED_IN)
            return
        # Join first, then count: a notification in between is counted and announced, never lost.
        await self.listen(user_group(self.user.pk))
        unread = await database_sync_to_async(inbox_selectors.notifications_unread_count)(self.user)
        await self._send_json({"type": "hello", "unread": unread})
