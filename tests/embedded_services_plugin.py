"""Starts the real embedded services before Django reads its settings, stops them at the end.

Loaded with `-p` (see pyproject) so it runs before pytest-django configures Django: the tests
then talk to a real PostgreSQL with pgvector, a real Redis-protocol server and a real MQTT broker,
exactly as `make run` does. Setting DATABASE_URL / REDIS_URL / MQTT_URL runs them against
external servers instead.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_services = None
_data_dir_lock = None


def _test_data_dir() -> Path:
    """`.data/test`, or `.data/test-<n>` while another run on this checkout holds it (two suites at
    once must not share one database cluster)."""
    global _data_dir_lock
    if "OFFICE_TEST_DATA_DIR" in os.environ:
        return Path(os.environ["OFFICE_TEST_DATA_DIR"]).resolve()
    for n in range(16):
        data_dir = ROOT / ".data" / ("test" if n == 0 else f"test-{n}")
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(data_dir / ".in-use.lock", "w")  # noqa: SIM115 (held until the process exits)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _data_dir_lock = handle
        return data_dir.resolve()
    raise RuntimeError("16 test runs already use this checkout's .data/test* directories")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    global _services
    from office.embedded import EmbeddedServices, free_port

    data_dir = _test_data_dir()
    _services = EmbeddedServices(data_dir=data_dir, redis_port=free_port(), mqtt_port=free_port())
    started = _services.start()
    os.environ.update(started)
    if "REDIS_URL" in started:  # our own throwaway server: start every run from an empty keyspace
        import redis

        redis.Redis.from_url(started["REDIS_URL"]).flushall()
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
    os.environ.setdefault("OFFICE_DATA_DIR", str(data_dir))
    # The packaged language models are joined once per checkout, not once per test data dir.
    os.environ.setdefault("OFFICE_MODEL_DIR", str(ROOT / ".data" / "models"))
    (data_dir / "staticfiles").mkdir(exist_ok=True)
    os.environ.setdefault("LOG_FORMAT", "plain")
    # WebRTC in tests stays on loopback: server peers offer 127.0.0.1 only (docs: ../shared/ASSETS.md).
    os.environ.setdefault("OFFICE_RTC_HOST_ADDRESSES", "127.0.0.1")
    os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"office-test-{secrets.token_hex(3)}")
    return (yield)


def pytest_unconfigure(config):
    if _services is not None:
        _services.stop()
