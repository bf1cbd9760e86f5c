"""Two Daphne nodes on one Redis: members connected to different nodes see each other's moves,
presence and chat, and a node that dies is cleaned out of presence by the other."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import websockets
from channels.db import database_sync_to_async

from office.embedded import free_port, wait_for_port
from tests.conftest import session_cookie
from tests.e2e.conftest import _database_url_for

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def two_nodes(django_db_setup):
    from django.conf import settings

    env = {**os.environ, "DATABASE_URL": _database_url_for(settings.DATABASES["default"]),
           "DATABASE_CONN_MAX_AGE": "0", "LOG_LEVEL": "WARNING", "OFFICE_HUB_HEARTBEAT_SECONDS": "1"}
    nodes = []
    for _ in range(2):
        port = free_port()
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
             "office.asgi:application"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        nodes.append((port, process))
    for port, _process in nodes:
        wait_for_port(port, timeout=30)
    yield nodes
    for _port, process in nodes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # Daphne waits for open connections; don't let it hang the suite
                process.kill()
                process.wait(5)


async def open_socket(port: int, user, map_id: int):
    cookie = (await database_sync_to_async(session_cookie)(user)).decode()
    socket = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/office/{map_id}/",
        additional_headers={"Cookie": cookie}, origin=f"http://127.0.0.1:{port}",
    )
    hello = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert hello["type"] == "hello"
    return socket


async def wait_for(socket, predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await socket.recv())
            if predicate(frame):
                return frame


async def test_members_on_different_nodes_share_the_office(office, people, two_nodes):
    (port_a, _), (port_b, process_b) = two_nodes
    map_id = office["map"].id
    alice = await open_socket(port_a, people["alice"], map_id)
    # an idle socket outlives the Redis client's read timeout (it once crashed after 5 s idle)
    await asyncio.sleep(6)
    await alice.send(json.dumps({"type": "ping"}))
    await wait_for(alice, lambda f: f["type"] == "pong")
    bob = await open_socket(port_b, people["bob"], map_id)
    # presence crosses nodes
    await wait_for(alice, lambda f: f["type"] == "presence.join" and f["person"]["user"] == people["bob"].id)
    # a move on node A reaches node B within a batch
    await alice.send(json.dumps({"type": "move", "x": 11, "y": 15, "seq": 1}))
    await wait_for(bob, lambda f: f["type"] == "moves" and [people["alice"].id, 11, 15, 1] in f["m"])
    # chat written through node B reaches node A
    thread = office["open"].chat_thread.id
    await bob.send(json.dumps({"type": "chat.send", "thread": thread, "body": "hi from B"}))
    message = await wait_for(alice, lambda f: f["type"] == "chat.message")
    assert message["message"]["body"] == "hi from B"
    # when node B dies without a goodbye, node A drops bob from presence after his heartbeat expires
    process_b.send_signal(signal.SIGKILL)
    left = await wait_for(alice, lambda f: f["type"] == "presence.leave", timeout=15)
    assert left["user"] == people["bob"].id
    await alice.close()
