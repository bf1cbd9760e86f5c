"""autobahn (Daphne's WebSocket layer) builds the arguments of a debug log line on every frame it
reads and writes (`hltype`, `hlval`: `inspect` checks and `click.style` colouring), whether or not
debug lines are kept. Profiled under bench/movement.py that was a few per cent of a web node's core.
Unless debug logging is on, the names those modules call are swapped for a plain pass-through: the
lines are dropped anyway, and nothing else changes."""

from __future__ import annotations

_PATCHED_MODULES = ("autobahn.websocket.protocol", "autobahn.twisted.websocket")


def _plain(value):
    return value


def skip_frame_debug_formatting() -> bool:
    """Returns whether the formatting was skipped (False: debug logging is on, or no autobahn)."""
    import importlib

    try:
        modules = [importlib.import_module(name) for name in _PATCHED_MODULES]  # selects Twisted for txaio
        import txaio

        level = txaio.get_global_log_level()
    except (ImportError, RuntimeError):
        return False
    if level in ("debug", "trace"):
        return False
    for module in modules:
        for helper in ("hltype", "hlval"):
            if hasattr(module, helper):
                setattr(module, helper, _plain)
    return True
