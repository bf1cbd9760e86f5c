"""A cheaper message loop for busy sockets.

Channels' consumer loop (`channels.utils.await_many_dispatch`) creates a new task for every message
and waits on both sources with `asyncio.wait`; on the office socket, at thousands of frames a second,
that bookkeeping cost a tenth of a Daphne process. Here each source (the client's frames, the channel
layer) has one long-lived pump feeding a bounded inbox, and messages are handled one at a time in
arrival order, as Channels does.
"""

from __future__ import annotations

import asyncio
import functools

from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

INBOX_SIZE = 256  # a slow consumer stops reading its sources rather than buffering without bound


async def dispatch_in_order(sources, dispatch) -> None:
    inbox: asyncio.Queue = asyncio.Queue(maxsize=INBOX_SIZE)

    async def pump(source) -> None:
        try:
            while True:
                await inbox.put((None, await source()))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the source failed: the loop below raises it, as Channels would
            await inbox.put((exc, None))

    pumps = [asyncio.create_task(pump(source)) for source in sources]
    try:
        while True:
            failure, message = await inbox.get()
            if failure is not None:
                raise failure
            await dispatch(message)
    finally:
        for task in pumps:
            task.cancel()
        for task in pumps:
            try:
                await task
            except asyncio.CancelledError:
                pass


class InOrderDispatch:
    """Mixin for an async consumer: `AsyncConsumer.__call__` with `dispatch_in_order` as its loop."""

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        self.base_send = send
        try:
            await dispatch_in_order(sources, self.dispatch)
        except StopConsumer:
            pass
