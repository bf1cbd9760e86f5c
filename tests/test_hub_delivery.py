"""A process sends its sockets one movement frame per tick however many processes publish batches,
and never lets a presence event overtake the moves received before it."""

from __future__ import annotations

import asyncio
import json

import pytest

from rooms.hub import NODE_ID, Hub, MapState

OTHER_NODE = "another-web-process"


class Socket:
    def __init__(self, user_id: int):
        self.user_id, self.conn_id, self.frames = user_id, f"conn-{user_id}", []

    def aoi_keys(self) -> list:
        return [(0, 0)]

    async def send_text(self, text: str) -> None:
        self.frames.append(json.loads(text))

    async def replaced(self) -> None:
        pass


def batch(node: str, moves=(), events=()) -> dict:
    return {"type": "hub.tick", "map": 1, "node": node, "moves": [list(m) for m in moves], "events": list(events)}


@pytest.fixture
async def hub():
    hub = Hub()
    hub.maps[1] = MapState(1)
    yield hub
    await hub.shutdown()


class StalledLayer:
    """A channel layer whose sends never finish: what this process's sockets get must not wait on it."""

    def __init__(self):
        self.sent: list[dict] = []

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append(message)
        await asyncio.Event().wait()


async def test_a_tick_sends_this_processs_own_moves_without_waiting_for_redis(hub):
    # given a watcher, a mover of this process, and a channel layer that never answers
    watcher = Socket(1)
    hub.maps[1].observers[1] = watcher
    hub.layer = StalledLayer()
    hub.move(1, 8, 4, 4, 5, None, False)
    # when the tick runs
    await asyncio.wait_for(hub._publish_pending(), timeout=1)
    # then the watcher has the move already, and the batch waits for the publisher
    assert watcher.frames == [{"type": "moves", "m": [[8, 4, 4, 5]]}]
    publishing = asyncio.ensure_future(hub._publish_outbox())
    await asyncio.sleep(0)
    assert [m["moves"] for m in hub.layer.sent] == [[[8, 4, 4, 5, None, False, None]]]
    publishing.cancel()


async def test_batches_of_two_processes_reach_a_socket_as_one_frame(hub):
    watcher = Socket(1)
    hub.maps[1].observers[1] = watcher
    await hub._apply_tick(batch(OTHER_NODE, moves=[(7, 3, 3, 12, None, False, None)]))
    assert watcher.frames == []  # waits for this process's next tick
    hub.move(1, 8, 4, 4, 5, None, False)
    await hub._publish_pending()
    assert watcher.frames == [{"type": "moves", "m": [[7, 3, 3, 12], [8, 4, 4, 5]]}]


class FlakyLayer:
    """A channel layer whose first `failures` sends fail (Redis restarting), then deliver."""

    def __init__(self, failures: int):
        self.failures, self.sent = failures, []

    async def group_send(self, group: str, message: dict) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis is restarting")
        self.sent.append(message)


async def test_batches_that_could_not_be_published_wait_merged_and_lose_nothing(hub):
    hub.layer = FlakyLayer(failures=1)
    # given a tick's batch that fails to go out (Redis away)
    hub.move(1, 8, 4, 4, 1, None, False)
    hub.move(1, 9, 5, 5, 1, None, False)
    await hub._publish_pending()
    assert await hub._publish_outbox() is False
    # when more ticks come meanwhile: member 8 walks on, member 9 leaves
    hub.move(1, 8, 5, 4, 2, None, False)
    hub.maps[1].pending_events.append({"e": "leave", "user": 9, "conn": "c9"})
    await hub._publish_pending()
    # then once Redis is back one batch goes: events in order, 8's latest step, no move of 9 after he left
    assert await hub._publish_outbox() is True
    assert [(m["moves"], m["events"]) for m in hub.layer.sent] == [
        ([[8, 5, 4, 2, None, False, None]], [{"e": "leave", "user": 9, "conn": "c9"}])]
    assert hub._outbox == {}


async def test_this_processs_own_batch_coming_back_through_redis_is_not_sent_twice(hub):
    watcher = Socket(1)
    hub.maps[1].observers[1] = watcher
    hub.layer = FlakyLayer(failures=0)
    hub.move(1, 8, 4, 4, 5, None, False)
    await hub._publish_pending()
    await hub._publish_outbox()
    echo = hub.layer.sent[0]
    # when the receive loop gets this process's own batch back
    hub.layer = FeedLayer([echo])
    hub.channel = "hub-test"
    receiving = asyncio.ensure_future(hub._receive_loop())
    await hub.layer.drained.wait()
    await hub._publish_pending()
    receiving.cancel()
    # then the watcher still has the move once
    assert watcher.frames == [{"type": "moves", "m": [[8, 4, 4, 5]]}]


class FeedLayer:
    """A channel layer that hands out the given messages, then waits."""

    def __init__(self, messages: list[dict]):
        self.messages, self.drained = list(messages), asyncio.Event()

    async def receive(self, channel: str) -> dict:
        if self.messages:
            return self.messages.pop(0)
        self.drained.set()
        await asyncio.Event().wait()


async def test_moves_of_other_processes_go_out_with_the_next_tick_when_this_one_has_none(hub):
    watcher = Socket(1)
    hub.maps[1].observers[1] = watcher
    await hub._apply_tick(batch(OTHER_NODE, moves=[(7, 3, 3, 12, None, False, None)]))
    await hub._publish_pending()
    assert watcher.frames == [{"type": "moves", "m": [[7, 3, 3, 12]]}]


async def test_a_presence_event_never_overtakes_the_moves_received_before_it(hub):
    watcher = Socket(1)
    hub.maps[1].observers[1] = watcher
    await hub._apply_tick(batch(OTHER_NODE, moves=[(7, 3, 3, 12, None, False, None)]))
    await hub._apply_tick(batch(OTHER_NODE, events=[{"e": "leave", "user": 7, "conn": "c7"}]))
    assert [f["type"] for f in watcher.frames] == ["moves", "presence.leave"]


async def test_a_movers_shared_record_follows_the_tick_and_a_leave_leaves_none_behind():
    import redis.asyncio as aioredis
    from django.conf import settings

    from rooms.hub import Person, presence_key

    hub = await Hub.current()
    client = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    map_id, alice = 4242, Socket(1)
    try:
        # given alice on the map
        await hub.join(alice, map_id, Person(user=1, name="Alice Archer", color="#e11d48", status="available",
                                             x=1, y=1, seq=0, room=None, private=False, conn=alice.conn_id,
                                             node=NODE_ID))
        # when she takes a step, then the shared record (what the presence API reads) has it soon after
        hub.move(map_id, 1, 2, 1, 1, None, False)
        for _ in range(50):
            record = await client.hget(presence_key(map_id), "1")
            if json.loads(record)["x"] == 2:
                break
            await asyncio.sleep(0.02)
        assert json.loads(record)["x"] == 2
        # when she steps again and leaves right after the tick, before her record is written
        hub.move(map_id, 1, 3, 1, 2, None, False)
        await hub._publish_pending()
        await hub.leave(alice, map_id)
        await asyncio.sleep(0.2)
        # then no record of hers is left behind
        assert await client.hget(presence_key(map_id), "1") is None
    finally:
        await client.aclose()
        await hub.shutdown()
