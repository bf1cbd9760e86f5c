"""Daphne's WebSocket layer does not colour debug-log arguments per frame unless debug logging is on
(office/ws_frame_logging.py)."""

from __future__ import annotations

import importlib

import pytest


@pytest.fixture
def fresh_autobahn(monkeypatch):
    """autobahn's modules with their own helpers back (office.asgi, imported by other tests, swapped
    them process-wide); whatever was there is put back afterwards."""
    import autobahn.util

    names = ("autobahn.util", "autobahn.websocket.protocol", "autobahn.twisted.websocket")
    modules = [importlib.import_module(name) for name in names]
    for module in modules[1:]:
        monkeypatch.setattr(module, "hltype", autobahn.util.hltype)
        monkeypatch.setattr(module, "hlval", autobahn.util.hlval)
    import txaio

    level = txaio.get_global_log_level()
    yield modules
    txaio.set_global_log_level(level)


def test_frame_log_arguments_are_not_formatted_at_info(fresh_autobahn, monkeypatch):
    import click
    import txaio

    from office.ws_frame_logging import skip_frame_debug_formatting

    _, protocol, twisted_ws = fresh_autobahn
    txaio.set_global_log_level("info")
    # given autobahn as installed: every frame's log arguments are styled
    styled = []
    monkeypatch.setattr(click, "style", lambda text, **kw: styled.append(text) or text)
    twisted_ws.hltype(twisted_ws.WebSocketServerProtocol.dataReceived)
    assert styled
    # when the web process starts at info level, then nothing is styled per frame any more
    assert skip_frame_debug_formatting()
    styled.clear()
    peer = protocol.hlval("tcp:127.0.0.1:5555")
    twisted_ws.hltype(twisted_ws.WebSocketServerProtocol.dataReceived)
    assert styled == [] and peer == "tcp:127.0.0.1:5555"


def test_with_debug_logging_on_the_lines_keep_their_formatting(fresh_autobahn):
    import txaio

    from office.ws_frame_logging import skip_frame_debug_formatting

    _, protocol, _ = fresh_autobahn
    original = protocol.hltype
    txaio.set_global_log_level("debug")
    assert not skip_frame_debug_formatting()
    assert protocol.hltype is original
