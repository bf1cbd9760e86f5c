"""Work features of the office socket (composed in office/routing.py): a member's own
notifications, task and ticket changes, sent on their user group once the change has committed.
They are nudges; the pages hold the full state over REST."""

from __future__ import annotations


class WorkSocketMixin:
    async def notification_new(self, event: dict) -> None:
        await self._send_json(event)

    async def task_changed(self, event: dict) -> None:
        await self._send_json(event)

    async def ticket_changed(self, event: dict) -> None:
        await self._send_json(event)
