"""Personas and a small office, built through services: alice (member of the private Vault),
bob (member, not on the Vault's list), carol (member), dana (admin)."""

from __future__ import annotations

import json
import warnings

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings

from rooms import services

PASSWORD = "office-test-pass-1"


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashing():
    """Passwords hashed in 1,000 rounds, not Django's 1,000,000 (see tests/password_hashing.py)."""
    with override_settings(PASSWORD_HASHERS=["tests.password_hashing.QuickPBKDF2PasswordHasher"]):
        yield


@pytest.fixture
def people(db):
    return {
        "alice": services.member_create(username="alice", password=PASSWORD, display_name="Alice Archer"),
        "bob": services.member_create(username="bob", password=PASSWORD, display_name="Bob Baker"),
        "carol": services.member_create(username="carol", password=PASSWORD, display_name="Carol Chen"),
        "dana": services.member_create(username="dana", password=PASSWORD, display_name="Dana Admin", admin=True),
    }


@pytest.fixture
def office(people):
    """A 40x24 floor: open space, meeting room Atlas (door at 6,6), private Vault (door at 20,6)."""
    hq = services.office_map_create(name="Test HQ", slug="test-hq", width=40, height=24, spawn_x=10, spawn_y=15)
    open_space = services.room_create(office_map=hq, name="Open space", kind="open", x=0, y=0, width=40, height=24)
    atlas = services.room_create(office_map=hq, name="Atlas", kind="meeting", x=2, y=1, width=9, height=6,
                                 doors=[[6, 6]], capacity=3, assistant_enabled=True)
    vault = services.room_create(office_map=hq, name="Vault", kind="private", x=16, y=1, width=9, height=6,
                                 doors=[[20, 6]])
    services.room_set_members(room=vault, user_ids=[people["alice"].id])
    return {"map": hq, "open": open_space, "atlas": atlas, "vault": vault}


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    """The test OpenID provider, started once for the sign-on tests and the browser's one (each
    module registers a client of its own; people there have names of their own)."""
    from tests.oidc_provider_site.process import running_provider

    data_dir = tmp_path_factory.mktemp("oidc-provider")
    with running_provider(data_dir, data_dir / "provider.log") as op:
        yield op


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def client_of():
    return client_for


def session_cookie(user) -> bytes:
    client = client_for(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


class OfficeSocket:
    """A test client of the office socket that collects frames by type."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.frames: list[dict] = []

    async def send(self, payload) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 3) -> dict:
        frame = json.loads(await self.communicator.receive_from(timeout=timeout))
        self.frames.append(frame)
        return frame

    async def wait_for(self, frame_type: str, timeout: float = 3, where=lambda f: True) -> dict:
        import asyncio

        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {frame_type} frame within {timeout}s; got {[f['type'] for f in self.frames][-15:]}")
            try:
                frame = await self.receive(timeout=left)
            except TimeoutError:
                raise AssertionError(f"no matching {frame_type} frame within {timeout}s; last frames: {self.frames[-8:]}") from None
            type_matches = frame["type"] in ("chat.message", "chat.backlog") if frame_type == "chat.*" else (
                frame["type"] == frame_type)
            if type_matches and where(frame):
                return frame

    async def wait_for_chat(self, seq: int, timeout: float = 3) -> dict:
        """A chat message, whether it came live or in the backlog that closes a connect."""
        frame = await self.wait_for(
            "chat.*", timeout,
            where=lambda f: any(m["seq"] == seq for m in ([f["message"]] if "message" in f else f.get("messages", []))),
        )
        return next(m for m in ([frame["message"]] if "message" in frame else frame["messages"]) if m["seq"] == seq)

    async def collect(self, seconds: float) -> list[dict]:
        """Every frame that arrives within `seconds` (without cancelling the app, as a timeout would)."""
        import asyncio

        got = []
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            if self.communicator.output_queue.empty():
                await asyncio.sleep(0.02)
                continue
            got.append(await self.receive())
        return got


@pytest.fixture
async def sockets():
    """Open office sockets as a persona; closes them and stops this test's process hub afterwards."""
    import asyncio

    from office.asgi import application
    from rooms.hub import Hub

    opened: list[WebsocketCommunicator] = []

    async def connect(user, map_id: int, *, origin: bytes = b"http://127.0.0.1", expect_hello=True, query=""):
        cookie = await database_sync_to_async(session_cookie)(user) if user is not None else b""
        headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
        if cookie:
            headers.append((b"cookie", cookie))
        communicator = WebsocketCommunicator(application, f"/ws/office/{map_id}/{query}", headers=headers)
        opened.append(communicator)
        connected, _ = await communicator.connect()
        socket = OfficeSocket(communicator)
        socket.connected = connected
        if connected and expect_hello:
            socket.hello = await socket.wait_for("hello")
        return socket

    yield connect

    for communicator in opened:
        try:
            await communicator.disconnect()
        except BaseException:  # an app that already ended (or was cancelled by a failed wait)
            pass
    hub = Hub._by_loop.get(id(asyncio.get_running_loop()))
    if hub is not None:
        # Seen once, after the browser tests: this teardown never returned and the suite hung. Bounded
        # here and reported as a warning (the test itself had passed); the cause is not found yet.
        try:
            await asyncio.wait_for(hub.shutdown(), timeout=15)
        except TimeoutError:
            Hub._by_loop.pop(id(asyncio.get_running_loop()), None)
            warnings.warn("the process hub did not stop within 15 s", stacklevel=1)


@pytest.fixture(autouse=True)
def fresh_redis():
    """Presence and last positions live in Redis: every test starts from an empty keyspace."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Every test gets its own channel layer object. A receiver an earlier test's event loop left
    behind keeps the layer's receive lock bound to that loop, and the next test's consumer then
    fails at teardown ("Lock ... is bound to a different event loop")."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(scope="session", autouse=True)
def close_stray_connections_before_teardown(django_db_setup, django_db_blocker):
    """Sockets' worker threads and Daphne subprocesses keep sessions open on the test database;
    end them before pytest-django drops it, so the drop does not fail."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session", autouse=True)
def flush_survives_a_deadlock():
    """Transactional tests end with a TRUNCATE of every table. A process the test started (a Celery
    worker finishing its task, Daphne handling a closed socket) may still hold row locks then, and
    PostgreSQL may pick the TRUNCATE as the deadlock victim: flush again rather than fail the run."""
    import time

    from django.core.management.base import CommandError
    from django.db import DatabaseError
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def teardown_with_retry(self):
        for attempt in range(3):
            try:
                return original(self)
            except CommandError as exc:
                if attempt == 2 or not isinstance(exc.__cause__, DatabaseError):  # deadlock, lock timeout...
                    raise
                time.sleep(1.0)

    TransactionTestCase._fixture_teardown = teardown_with_retry
    yield
    TransactionTestCase._fixture_teardown = original


@pytest.fixture(scope="module")
def janus(tmp_path_factory):
    """A Janus of the module's own on loopback (the SFU tests): its rooms and tokens never leak into
    another module's, whose room ids the database reuses."""
    import secrets

    from office.embedded import free_port
    from office.janus import JanusConfig, janus_binary, loopback_shim, start_janus, stop_janus

    if janus_binary() is None:
        pytest.skip("janus is not installed (scripts/install-test-system-packages.sh)")
    base = tmp_path_factory.mktemp("janus")
    config = JanusConfig(config_dir=base / "config", http_port=free_port(), admin_port=free_port(),
                         admin_secret=secrets.token_urlsafe(24), loopback_only=True)
    if loopback_shim(config.config_dir) is None:
        pytest.skip("no C compiler: Janus's media cannot be kept on 127.0.0.1 (office/janus.py)")
    process = start_janus(config, log_path=base / "janus.log")
    yield config
    stop_janus(process)


@pytest.fixture
def worker():
    """A transcription worker on a thread of this process, as `manage.py transcription_worker` runs it."""
    import threading

    from transcription.worker import TranscriptionWorker

    stop = threading.Event()
    instance = TranscriptionWorker()
    thread = threading.Thread(target=instance.run, args=(stop,), daemon=True)
    thread.start()
    yield instance
    stop.set()
    thread.join(10)


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory) -> str:
    """Three seconds of a 440 Hz tone, 48 kHz mono: an aiortc participant's microphone."""
    import math
    import struct
    import wave

    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes(b"".join(struct.pack("<h", int(12_000 * math.sin(2 * math.pi * 440 * n / 48_000)))
                                 for n in range(3 * 48_000)))
    return str(path)
