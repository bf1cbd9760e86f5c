"""Limits every node must agree on live in Redis: the API's per-user rate limit counts in the shared
cache (two web nodes do not allow twice the limit), and a cache outage lets requests through
instead of failing them."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from django.test import override_settings

from office.drf import SharedUserRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_per_minute(monkeypatch, people):
    from django.core.cache import cache

    monkeypatch.setattr(SharedUserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    keys = [f"throttle_user_{person.pk}" for person in people.values()]
    cache.delete_many(keys)  # not clear(): that would flush the Redis the channel layer shares
    yield
    cache.delete_many(keys)


def test_the_api_rate_limit_is_counted_where_every_node_reads_it(people, client_of, three_per_minute):
    alice = client_of(people["alice"])
    assert [alice.get("/api/tickets/").status_code for _ in range(4)] == [200, 200, 200, 429]
    # another node: its own connection to the same cache sees alice's three requests
    other_node = RedisCache(settings.CACHES["default"]["LOCATION"], {"KEY_PREFIX": "office-cache"})
    assert len(other_node.get(f"throttle_user_{people['alice'].pk}")) == 3
    assert client_of(people["bob"]).get("/api/tickets/").status_code == 200  # per user


def test_a_cache_outage_lets_requests_through(people, client_of, three_per_minute):
    dead = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"}}
    with override_settings(CACHES=dead):
        alice = client_of(people["alice"])
        assert [alice.get("/api/tickets/").status_code for _ in range(4)] == [200, 200, 200, 200]
