"""The office socket writes its text frames straight to Daphne's connection while it is open, byte for
byte what autobahn would write, and leaves any other case to the ASGI path (office/daphne_frames.py)."""

from __future__ import annotations

import functools

import pytest
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory
from twisted.internet.testing import StringTransport

from office.daphne_frames import direct_text_sender


@pytest.fixture
def daphne_connection():
    """A real Daphne WebSocket protocol on a recording transport, and the ASGI `send` Daphne gives its
    application (`partial(server.handle_reply, protocol)`)."""
    server = Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    factory = WebSocketFactory(server)
    factory.setProtocolOptions(openHandshakeTimeout=0, autoPingInterval=0)
    protocol = factory.buildProtocol(("127.0.0.1", 40000))
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.state = protocol.STATE_OPEN  # as after the opening handshake
    return protocol, transport, functools.partial(server.handle_reply, protocol)


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 70000])
def test_a_direct_frame_is_the_frame_autobahn_writes(daphne_connection, size):
    protocol, transport, asgi_send = daphne_connection
    text = ("é" * size)[: size // 2] + "x" * (size - size // 2)  # multi-byte characters count as bytes
    write = direct_text_sender(asgi_send)
    assert write is not None
    assert write(text) is True
    direct = transport.value()
    transport.clear()
    protocol.sendMessage(text.encode("utf-8"), False)
    assert direct == transport.value()


def test_a_connection_that_is_not_open_leaves_the_frame_to_daphne(daphne_connection):
    protocol, transport, asgi_send = daphne_connection
    write = direct_text_sender(asgi_send)
    protocol.state = protocol.STATE_CLOSING
    assert write("late") is False
    assert transport.value() == b""
    protocol.state = protocol.STATE_OPEN
    protocol._perMessageCompress = object()  # compression negotiated: framing is autobahn's business
    assert write("squeezed") is False
    assert transport.value() == b""


async def test_a_send_that_is_not_daphnes_gets_no_direct_writer():
    async def send(message):
        pass

    assert direct_text_sender(send) is None
    assert direct_text_sender(functools.partial(send)) is None
    assert direct_text_sender(functools.partial(print, object())) is None
