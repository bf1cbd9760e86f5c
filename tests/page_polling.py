"""Waiting on an async page function. Playwright's `wait_for_function` does not await a predicate's
promise: it takes the promise itself as truthy and returns at once, so a check written as an async
function must be polled from the test instead."""

from __future__ import annotations

import time


def wait_for_async(page, script: str, arg=None, *, timeout_ms: int = 10000, interval_s: float = 0.2):
    """Evaluate `script` (an async function, with `arg`) until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        value = page.evaluate(script, arg)
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"still {value!r} after {timeout_ms} ms: {script.strip()[:120]}")
        time.sleep(interval_s)
