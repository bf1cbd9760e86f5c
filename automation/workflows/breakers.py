"""One circuit breaker per external connector (or webhook endpoint), shared by every worker
process through Redis: when a receiver is down, all workers stop calling it together."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pybreaker
import redis
from django.conf import settings

from office.redis_client import redis_client

from .errors import PermanentError

logger = logging.getLogger(__name__)
_breakers: dict[str, pybreaker.CircuitBreaker] = {}


def _redis_client() -> redis.Redis:
    # pybreaker's storage decodes bytes itself: the shared bytes client fits.
    return redis_client()


def breaker_for(name: str) -> pybreaker.CircuitBreaker:
    breaker = _breakers.get(name)
    if breaker is None:
        storage = pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, _redis_client(), namespace=f"{settings.OFFICE_WORKFLOW_BREAKER_PREFIX}:{name}"
        )
        breaker = pybreaker.CircuitBreaker(
            fail_max=settings.OFFICE_WORKFLOW_BREAKER_FAILURES,
            reset_timeout=settings.OFFICE_WORKFLOW_BREAKER_RESET_SECONDS,
            exclude=[PermanentError],  # a refused request is not an outage
            state_storage=storage,
            name=name,
            throw_new_error_on_trip=False,  # the failure that trips it counts as that failure
        )
        _breakers[name] = breaker
    return breaker


def retry_after_seconds(breaker: pybreaker.CircuitBreaker) -> float:
    opened_at = breaker._state_storage.opened_at
    if opened_at is None:
        return float(breaker.reset_timeout)
    left = (opened_at.replace(tzinfo=opened_at.tzinfo or UTC) - datetime.now(UTC)).total_seconds() + breaker.reset_timeout
    return max(left, 0.5)


def breakers_forget() -> None:
    """Drop this process's breaker objects (their shared state stays in Redis); for tests."""
    _breakers.clear()
