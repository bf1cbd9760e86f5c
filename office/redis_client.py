"""One synchronous Redis connection pool per process for short commands (rate limits, locks,
replay marks, breaker state). Bytes in, bytes out; short timeouts so a Redis outage is an error
the caller handles, not a hang."""

from __future__ import annotations

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis:
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client
