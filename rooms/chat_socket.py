"""The chat part of the office socket: chat and DM frames, gap-free delivery by per-thread cursors."""

# Per-thread cursors make chat delivery gap-free and duplicate-free across reconnects: a live event
# is sent only if it is the next sequence number (`OfficeConsumer.chat_message`), and a gap is
# filled from the database. The mixin uses the consumer's `user`, `scope`, `groups_joined`,
# `channel_layer`, `channel_name` and `_send_json`; it owns `cursors` and `delivered_floor`.

from __future__ import annotations

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError

from office.events import thread_group

from . import selectors, services
from .protocol import ProtocolError
from .socket_context import parse_resume


class ChatSocketMixin:
    # --- cursors ---

    def _chat_cursors_open(self, threads: list[dict]) -> None:
        # Per-thread cursors: the last seq this socket has delivered. A reconnecting client names
        # its last seen seq per thread in the URL (?resume=<thread>.<seq>,...), so the cursor is
        # right before any live event can arrive; the gap is sent as a backlog after hello.
        resume = parse_resume(self.scope.get("query_string", b""))
        self.cursors: dict[int, int] = {
            t["id"]: min(resume.get(t["id"], t["last_seq"]), t["last_seq"]) for t in threads
        }
        # Everything above this floor is delivered by this connection; chat.resume sends what is below.
        self.delivered_floor = dict(self.cursors)

    async def _chat_fill_gaps(self) -> None:
        # Fill what the client missed, and anything written between loading hello and joining groups.
        latest = await database_sync_to_async(selectors.thread_last_seqs)(list(self.cursors))
        for thread, last_seq in latest.items():
            if self.cursors.get(thread, last_seq) < last_seq:
                await self._catch_up(thread)

    # --- frames from the client ---

    async def on_chat_send(self, thread: int, body: str, client_id: str = "") -> None:
        try:
            if thread not in self.cursors:
                raise selectors.NotFound("no such conversation")
            message, _created = await database_sync_to_async(services.chat_message_send)(
                user=self.user, thread_id=thread, body=body, client_id=client_id
            )
        except ValidationError as exc:
            raise ProtocolError("invalid", "; ".join(exc.messages), "chat.send", client_id) from exc
        except selectors.NotFound as exc:
            raise ProtocolError("not_found", str(exc), "chat.send", client_id) from exc
        await self._send_json({"type": "chat.ack", "thread": thread, "seq": message.seq, "client_id": client_id or None})

    async def on_chat_resume(self, thread: int, after: int) -> None:
        """Send what the client missed before this connection (after a reconnect).

        Messages above the connection's floor were already delivered on this socket, so only the
        range (after, floor] is sent, then anything the cursor has not reached yet.
        """
        if thread not in self.cursors:
            raise selectors.NotFound("no such conversation")
        upto = self.delivered_floor.get(thread, 0)
        if after < upto:
            await self._send_range(thread, after, upto)
            self.delivered_floor[thread] = after
        await self._catch_up(thread)

    async def on_chat_history(self, thread: int, before: int | None = None, limit: int | None = None) -> None:
        limit = min(limit or settings.OFFICE_CHAT_PAGE_SIZE, 200)

        def page():
            thread_row = selectors.thread_for_user(self.user, thread)
            return [selectors.chat_message_payload(m) for m in selectors.chat_messages_before(thread_row, before, limit)]

        messages = await database_sync_to_async(page)()
        await self._send_json({
            "type": "chat.history", "thread": thread, "messages": messages,
            "more": bool(messages) and messages[0]["seq"] > 1,
        })

    async def on_chat_read(self, thread: int, seq: int) -> None:
        unread = await database_sync_to_async(services.chat_thread_mark_read)(user=self.user, thread_id=thread, seq=seq)
        await self._send_json({"type": "chat.unread", "thread": thread, "unread": unread})

    async def on_dm_open(self, user: int) -> None:
        thread, _created = await database_sync_to_async(services.direct_thread_open)(user=self.user, other_user_id=user)
        await self._add_thread(thread.id, from_seq=0)
        await self._send_json({"type": "dm.opened", "thread": thread.id, "user": user})

    # --- delivery ---

    async def _catch_up(self, thread: int) -> None:
        page_size = 200
        while True:
            def page(after=self.cursors[thread]):
                thread_row = selectors.thread_for_user(self.user, thread)
                return [selectors.chat_message_payload(m) for m in selectors.chat_messages_after(thread_row, after, page_size)]

            messages = await database_sync_to_async(page)()
            if messages:
                self.cursors[thread] = messages[-1]["seq"]
            more = len(messages) == page_size
            await self._send_json({"type": "chat.backlog", "thread": thread, "messages": messages, "more": more})
            if not more:
                return

    async def _send_range(self, thread: int, after: int, upto: int) -> None:
        def page(start):
            thread_row = selectors.thread_for_user(self.user, thread)
            messages = selectors.chat_messages_after(thread_row, start, 200)
            return [selectors.chat_message_payload(m) for m in messages if m.seq <= upto]

        start = after
        while start < upto:
            messages = await database_sync_to_async(page)(start)
            if not messages:
                return
            start = messages[-1]["seq"]
            await self._send_json({"type": "chat.backlog", "thread": thread, "messages": messages,
                                   "more": start < upto})

    async def _add_thread(self, thread_id: int, *, from_seq: int) -> None:
        if thread_id in self.cursors:
            return
        summaries = await database_sync_to_async(selectors.thread_summaries_for)(self.user)
        summary = next((s for s in summaries if s.id == thread_id), None)
        if summary is None:
            return
        await self.channel_layer.group_add(thread_group(thread_id), self.channel_name)
        self.groups_joined.append(thread_group(thread_id))
        self.cursors[thread_id] = self.delivered_floor[thread_id] = from_seq
        await self._send_json({"type": "thread.added", "thread": summary.as_dict()})
        await self._catch_up(thread_id)

    async def _threads_refresh(self) -> None:
        """Follow a change of access: leave the threads no longer visible, join the new ones."""
        summaries = await database_sync_to_async(selectors.thread_summaries_for)(self.user)
        visible = {s.id: s for s in summaries}
        for thread_id in [t for t in self.cursors if t not in visible]:
            del self.cursors[thread_id]
            await self.channel_layer.group_discard(thread_group(thread_id), self.channel_name)
            await self._send_json({"type": "thread.removed", "thread": thread_id})
        for summary in visible.values():
            if summary.id not in self.cursors:
                await self.channel_layer.group_add(thread_group(summary.id), self.channel_name)
                self.groups_joined.append(thread_group(summary.id))
                self.cursors[summary.id] = self.delivered_floor[summary.id] = summary.last_seq
                await self._send_json({"type": "thread.added", "thread": summary.as_dict()})
