"""Text frames written straight to a Daphne WebSocket connection.

Each frame the office socket sends through ASGI crosses Daphne's reply hand-over (`handle_reply`, its
header check, `serverSend`), then autobahn's `sendMessage`, `sendFrame` and `sendData`, before the
bytes reach the transport. Profiled on a web node under bench/movement.py (N=600 over two nodes),
those layers were about a sixth of the node, more than the `send` system call itself. A server's
text frame is only a two-to-ten-byte header and the payload (RFC 6455 5.2, never masked), so the
office socket writes it to the connection's transport itself while autobahn says the connection is
open and nothing is negotiated that changes framing (per-message compression); otherwise the frame
takes the ASGI path as before (closing, closed, or any server but Daphne).
"""

from __future__ import annotations

import functools
from collections.abc import Callable


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame (FIN + opcode 1) carrying `payload`."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def direct_text_sender(asgi_send) -> Callable[[str], bool] | None:
    """For an ASGI `send` that Daphne made for a WebSocket connection, a function that writes a text
    frame to that connection now and returns True, or returns False when the connection is not open
    (the caller then sends through ASGI). None when `asgi_send` is not Daphne's."""
    if not (isinstance(asgi_send, functools.partial) and len(asgi_send.args) == 1 and not asgi_send.keywords):
        return None
    try:
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        return None
    handle_reply = getattr(asgi_send.func, "__func__", None)
    protocol = asgi_send.args[0]
    if handle_reply is not Server.handle_reply or not isinstance(protocol, WebSocketProtocol):
        return None

    def send_text(text: str) -> bool:
        if (protocol.state != protocol.STATE_OPEN or protocol.send_state != protocol.SEND_STATE_GROUND
                or protocol._perMessageCompress is not None or protocol.transport is None):
            return False
        protocol.transport.write(text_frame(text.encode("utf-8")))
        return True

    return send_text
