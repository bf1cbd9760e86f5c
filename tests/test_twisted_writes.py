"""A frame is sent at once when a connection has nothing waiting, and only then: what the kernel does
not take waits in Twisted's buffer, and nothing written later overtakes it (office/twisted_writes.py)."""

from __future__ import annotations

import socket

from twisted.internet import tcp
from twisted.internet.protocol import Protocol

from office.twisted_writes import send_at_once_when_idle


class FakeReactor:
    """Records the reactor calls a write makes (the real one would poll the socket)."""

    def __init__(self):
        self.writers: set = set()
        self.registrations = 0

    def addWriter(self, writer):
        self.registrations += 1
        self.writers.add(writer)

    def removeWriter(self, writer):
        self.writers.discard(writer)

    def addReader(self, reader):
        pass

    def removeReader(self, reader):
        pass


def _connection():
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    reactor = FakeReactor()
    connection = tcp.Connection(ours, Protocol(), reactor=reactor)
    connection.connected = True
    theirs.setblocking(False)
    return connection, theirs, reactor


def _drain(peer: socket.socket) -> bytes:
    got = b""
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return got
        if not chunk:
            return got
        got += chunk


def test_a_frame_goes_out_at_once_and_a_backlog_keeps_its_order():
    assert send_at_once_when_idle()
    connection, peer, reactor = _connection()
    try:
        # when a frame is written on an idle connection, then it is on the wire already, no reactor pass
        connection.write(b"frame-1")
        assert _drain(peer) == b"frame-1"
        assert reactor.registrations == 0
        # when more is written than the kernel takes at once, then the rest waits for the reactor...
        big = bytes(range(256)) * (32 * 1024)  # 8 MiB
        connection.write(big)
        assert reactor.registrations == 1 and connection in reactor.writers
        # ...and a frame written meanwhile waits behind it instead of jumping the queue
        connection.write(b"frame-2")
        received = _drain(peer)
        assert b"frame-2" not in received
        while connection in reactor.writers:  # what the reactor does as the socket drains
            connection.doWrite()
            received += _drain(peer)
        received += _drain(peer)
        assert received == big + b"frame-2"
    finally:
        connection.socket.close()
        peer.close()


def test_a_closed_peer_is_left_to_the_reactor_to_report():
    assert send_at_once_when_idle()
    connection, peer, reactor = _connection()
    peer.close()
    try:
        for _ in range(3):  # the first sends may still be taken by the kernel
            connection.write(b"x" * 1024)
        # then the error is not raised from write(): the data is buffered and the reactor's pass sees it
        assert connection in reactor.writers
        assert connection.doWrite() is not None  # CONNECTION_LOST
    finally:
        connection.socket.close()
