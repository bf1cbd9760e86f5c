"""Real server processes started by tests (Celery, transcription workers): stopping them cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import time


def stop_process_group(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM the process's whole group (it was started with start_new_session), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM one process (not its group), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def wait_until(predicate, timeout: float, what: str, every=None, pause: float = 0.2) -> None:
    """Poll `predicate` until it holds, calling `every` (a worker's step, beat's tick) before each look;
    `pause` between looks (0 when `every` blocks by itself)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if every is not None:
            every()
        if predicate():
            return
        if pause:
            time.sleep(pause)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s")
