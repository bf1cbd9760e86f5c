"""Daphne writes each WebSocket frame with Twisted's `FileDescriptor.write`, which only buffers it
and registers the socket for writing; the reactor's next pass sends it and unregisters the socket.
That is two `epoll_ctl` calls and a reactor pass per frame on top of the `send` itself: profiled on a
web node under bench/movement.py (N=600 over two nodes), `startWriting` and `stopWriting` were about
12 % of its time. asyncio's own transports send at once when nothing is waiting; this does the same
for plain TCP connections: when the connection's buffer is empty, the frame is sent now, and only
what the kernel did not take is buffered the usual way (so order and back-pressure are unchanged)."""

from __future__ import annotations

_applied = False


def send_at_once_when_idle() -> bool:
    """Patch Twisted (process-wide, idempotent); returns whether it is applied."""
    global _applied
    if _applied:
        return True
    try:
        from twisted.internet import abstract, tcp
    except ImportError:
        return False
    buffered_write = abstract.FileDescriptor.write

    def write(self, data):
        if (type(data) is bytes and data and isinstance(self, tcp.Connection) and self.connected
                and not self._writeDisconnected and not self.disconnecting
                and not self._tempDataLen and self.offset == len(self.dataBuffer)):
            sent = self.writeSomeData(data)
            if type(sent) is int:
                if sent == len(data):
                    return None
                data = data[sent:]
            # an error (a lost connection): buffered as usual, the reactor's write pass reports it
        return buffered_write(self, data)

    write.__doc__ = buffered_write.__doc__
    abstract.FileDescriptor.write = write
    _applied = True
    return True
