"""Starts the real embedded services before Django reads its settings, stops them at the end.

Loaded with `-p` (see pyproject) so it runs before pytest-django configures Django: the tests
then talk to a real PostgreSQL with pgvector, a real Redis-protocol server and a real MQTT broker,
exactly as `make run` does. Setting DATABASE_URL / REDIS_URL / MQTT_URL runs them against
external servers instead.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_services = None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    global _services
    from office.embedded import EmbeddedServices, free_port

    data_dir = Path(os.environ.get("OFFICE_TEST_DATA_DIR", ROOT / ".data" / "test")).resolve()
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
