"""A per-user fixed-window limit in Redis for expensive assistant calls (model time is scarce)."""

from __future__ import annotations

import logging
import time

import redis

from office.redis_client import redis_client

logger = logging.getLogger(__name__)


def allow(key: str, *, per_minute: int) -> bool:
    window = int(time.time() // 60)
    try:
        name = f"office:ratelimit:{key}:{window}"
        # One round trip, and the key always gets its expiry (no window key left behind forever).
        count, _ = redis_client().pipeline().incr(name).expire(name, 120).execute()
        return count <= per_minute
    except redis.RedisError:
        logger.warning("rate limiter unavailable; allowing %s", key)
        return True
