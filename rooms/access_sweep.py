"""Periodic re-check of every open office socket's rights, one batch per process.

A socket must notice a signed-out session, a deactivated account or a lost private-room membership
within OFFICE_ACCESS_RECHECK_SECONDS. Checking each socket on its own cost two thread hops and four
queries per socket per period: at 400 sockets that was a quarter of a Daphne process. One sweep per
event loop re-reads all of them in three queries and hands each socket its result; a socket whose
sweep is overdue (the sweep failed, or the period is 0 in tests) still checks itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from .socket_context import SocketAccess, sockets_access_load

logger = logging.getLogger(__name__)

MIN_PERIOD_SECONDS = 0.5


class Checked(Protocol):
    def access_entry(self) -> tuple[str | None, int, int]: ...

    async def access_refreshed(self, access: SocketAccess) -> None: ...


class AccessSweep:
    _by_loop: dict[int, AccessSweep] = {}

    def __init__(self) -> None:
        self.sockets: dict[int, Checked] = {}  # by id(): consumers are not hashable
        self.task: asyncio.Task | None = None

    @classmethod
    def current(cls) -> AccessSweep:
        loop = asyncio.get_running_loop()
        sweep = cls._by_loop.get(id(loop))
        if sweep is None or sweep._loop is not loop:
            sweep = cls()
            sweep._loop = loop
            cls._by_loop[id(loop)] = sweep
        return sweep

    def add(self, socket: Checked) -> None:
        self.sockets[id(socket)] = socket
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="access-sweep")

    def discard(self, socket: Checked) -> None:
        self.sockets.pop(id(socket), None)

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(max(MIN_PERIOD_SECONDS, settings.OFFICE_ACCESS_RECHECK_SECONDS))
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("access sweep failed; sockets fall back to checking themselves")

    async def sweep(self) -> None:
        sockets = list(self.sockets.values())
        if not sockets:
            return
        entries = [(socket, socket.access_entry()) for socket in sockets]
        access = await database_sync_to_async(sockets_access_load)({entry for _, entry in entries})
        for socket, entry in entries:
            if id(socket) in self.sockets:
                try:
                    await socket.access_refreshed(access[entry])
                except Exception:
                    logger.debug("could not refresh a socket's access", exc_info=True)
