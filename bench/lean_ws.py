"""A lean WebSocket client for benches that run hundreds of clients on the machine they measure.

The `websockets` library costs a bench process tens of microseconds per frame (stream reader,
frame objects, a task switch per message); at 600 clients and 12,000 frames a second that was two
thirds of a core taken from the server under test. This client does only what the bench needs over
a plain asyncio Protocol: the opening handshake (origin and session cookie), text frames in both
directions (client frames masked, RFC 6455 5.3), ping/pong and the closing handshake. Each text
frame is handed to a callback as it is parsed, with no queue between.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import Callable
from urllib.parse import urlparse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class LeanClosed(Exception):
    """The connection is closed (by either side)."""


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return head + key + _mask(payload, key)


class LeanSocket(asyncio.Protocol):
    def __init__(self, on_text: Callable[[str], None] | None = None):
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = False
        self.closed = False
        self.fragments: list[bytes] = []
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future = loop.create_future()
        self.done: asyncio.Future = loop.create_future()
        self.key = base64.b64encode(os.urandom(16))
        self.pending: list[str] = []  # text frames that came before anyone listened

    # --- asyncio.Protocol ---

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[:end + 4]
            status = head.split("\r\n", 1)[0]
            expected = base64.b64encode(hashlib.sha1(self.key + GUID).digest()).decode()
            if " 101 " not in status + " " or expected not in head:
                self.opened.set_exception(ConnectionError(f"handshake refused: {status}"))
                self.transport.close()
                return
            self.open = True
            self.opened.set_result(None)
        self._parse()

    def connection_lost(self, exc) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        if not self.done.done():
            self.done.set_result(None)

    # --- frames ---

    def _parse(self) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            length, pos = b1 & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, pos = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, pos = int.from_bytes(buf[2:10], "big"), 10
            if b1 & 0x80:  # a server never masks (RFC 6455 5.1)
                self._fail("masked frame from the server")
                return
            if len(buf) < pos + length:
                return
            payload = bytes(buf[pos:pos + length])
            del buf[:pos + length]
            opcode = b0 & 0x0F
            if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                self.fragments.append(payload)
                if b0 & 0x80:
                    message = b"".join(self.fragments)
                    self.fragments = []
                    self._deliver(message.decode("utf-8"))
            elif opcode == OP_PING:
                self.transport.write(encode_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                if not self.closed:
                    self.closed = True
                    self.transport.write(encode_frame(OP_CLOSE, payload[:2]))
                self.transport.close()
                return

    def _deliver(self, text: str) -> None:
        if self.on_text is None:
            self.pending.append(text)
        else:
            self.on_text(text)

    def _fail(self, reason: str) -> None:
        self.closed = True
        self.transport.close()

    def send_text(self, text: str) -> None:
        if self.closed:
            raise LeanClosed()
        self.transport.write(encode_frame(OP_TEXT, text.encode("utf-8")))

    async def close(self, timeout: float = 2.0) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.write(encode_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
        try:
            await asyncio.wait_for(asyncio.shield(self.done), timeout)
        except TimeoutError:
            self.transport.close()


async def lean_connect(uri: str, origin: str, sessionid: str, timeout: float = 30.0) -> LeanSocket:
    """Open `uri` (ws://127.0.0.1:port/path) with the session cookie; returns once the server accepted."""
    parsed = urlparse(uri)
    loop = asyncio.get_running_loop()
    transport, sock = await asyncio.wait_for(
        loop.create_connection(LeanSocket, parsed.hostname, parsed.port), timeout)
    request = (
        f"GET {parsed.path or '/'} HTTP/1.1\r\n"
        f"Host: {parsed.hostname}:{parsed.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {sock.key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\nCookie: sessionid={sessionid}\r\n\r\n"
    )
    transport.write(request.encode("latin-1"))
    await asyncio.wait_for(sock.opened, timeout)
    return sock
