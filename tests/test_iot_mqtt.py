"""The facilities scenario end to end with the real embedded MQTT broker and real amqtt clients:
a simulated device publishes, the ingester (the same `Ingester` that `manage.py iot_ingester`
runs, here as an asyncio task we can cancel) stores readings, and the evaluator (the function the
beat task calls) fires rules."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from amqtt.client import MQTTClient
from amqtt.mqtt.constants import QOS_1
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from prometheus_client import REGISTRY

from automation.models import Ticket
from iot import services
from iot.ingest import Ingester, broker_uri
from iot.models import Rule, RuleFiring, SensorReading
from rooms.models import ChatMessage

pytestmark = pytest.mark.django_db(transaction=True)


def counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class RunningIngester:
    def __init__(self, client_id: str):
        self.client_id = client_id
        self.task: asyncio.Task | None = None
        self.stop_event: asyncio.Event | None = None
        self.ingester: Ingester | None = None

    async def start(self) -> None:
        self.stop_event = asyncio.Event()
        self.ingester = Ingester(client_id=self.client_id)
        self.task = asyncio.create_task(self.ingester.run(self.stop_event))
        await asyncio.wait_for(self.ingester.connected.wait(), 10)

    async def stop(self) -> None:
        """A stop in the middle of things: the task is cancelled, as a killed process would be."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await asyncio.wait_for(self.task, 5)
            except (asyncio.CancelledError, TimeoutError):
                pass
        self.task = None

    async def forget(self) -> None:
        """Drop the persistent session on the shared broker, so later tests do not queue for it."""
        client = MQTTClient(client_id=self.client_id, config={"auto_reconnect": False})
        try:
            await client.connect(broker_uri(), cleansession=True)
            await client.disconnect()
        except Exception:
            pass


@pytest.fixture
async def ingester():
    running = RunningIngester(f"test-ingester-{uuid.uuid4().hex[:8]}")
    await running.start()
    yield running
    await running.stop()
    await running.forget()


@pytest.fixture
async def device():
    """A simulated sensor: a real MQTT client publishing JSON with QoS 1 (signed in with the office's
    service login, which may use any topic; device logins are tested on their own below)."""
    client = MQTTClient(client_id=f"test-device-{uuid.uuid4().hex[:8]}", config={"auto_reconnect": False})
    await client.connect(broker_uri())

    async def publish(topic: str, payload) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        await client.publish(topic, data, qos=QOS_1)

    yield publish
    await client.disconnect()


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    """Poll a database condition (from a worker thread) until it holds."""
    check = sync_to_async(predicate, thread_sensitive=True)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


evaluate = sync_to_async(services.rules_fire_due, thread_sensitive=True)


@database_sync_to_async
def make_projector(office, *, for_seconds: int, clear_for_seconds: int = 60, device_id: str = "atlas-projector"):
    services.builtin_rules_ensure()
    rule = Rule.objects.get(builtin_key="projector-failure")
    services.rule_update(rule=rule, for_seconds=for_seconds, clear_for_seconds=clear_for_seconds)
    sensor, _creds = services.sensor_create(room=office["atlas"], kind="projector", name="Atlas projector",
                                            device_id=device_id)
    return sensor


def readings_of(sensor) -> int:
    return SensorReading.objects.filter(sensor=sensor).count()


def office_messages(room) -> list[str]:
    return list(ChatMessage.objects.filter(thread__room=room, author__username="office").values_list("body", flat=True))


async def test_projector_failure_over_mqtt_opens_one_ticket_and_one_chat_message(office, people, ingester, device,
                                                                                 sockets):
    # given a projector in Atlas, the rule shortened to 1 s, and alice watching the office (chat)
    sensor = await make_projector(office, for_seconds=1)
    alice = await sockets(people["alice"], office["map"].id)
    atlas_thread = next(t["id"] for t in alice.hello["threads"] if t["room"] == office["atlas"].id)
    # when the projector reports offline, again and again, for two seconds
    for _ in range(5):
        await device("office/sensors/atlas-projector", {"state": "offline"})
        await asyncio.sleep(0.4)
    await wait_until(lambda: readings_of(sensor) == 5, what="five readings stored")
    # and the evaluator runs several times (beat ticks)
    for _ in range(3):
        await evaluate()
    # then exactly one facilities ticket and one chat message, seen live by alice
    assert await database_sync_to_async(Ticket.objects.filter(kind="facilities", room=office["atlas"]).count)() == 1
    messages = await database_sync_to_async(office_messages)(office["atlas"])
    assert len(messages) == 1 and "offline" in messages[0]
    frame = await alice.wait_for("chat.message", timeout=5, where=lambda f: f["message"]["thread"] == atlas_thread)
    assert frame["message"]["author"]["name"] == "Office"
    # and more offline readings in the same episode add nothing
    await device("office/sensors/atlas-projector", {"state": "error"})
    await wait_until(lambda: readings_of(sensor) == 6, what="sixth reading")
    await evaluate()
    assert await database_sync_to_async(Ticket.objects.count)() == 1
    assert len(await database_sync_to_async(office_messages)(office["atlas"])) == 1


async def test_a_flapping_projector_over_mqtt_opens_no_ticket(office, ingester, device):
    # given the rule at 2 s
    sensor = await make_projector(office, for_seconds=2)
    # when the projector flaps offline/on quickly and ends up on
    for state in ["offline", "on", "offline", "on", "offline", "on", "offline", "on"]:
        await device("office/sensors/atlas-projector", {"state": state})
        await asyncio.sleep(0.3)
    await wait_until(lambda: readings_of(sensor) == 8, what="eight readings")
    await asyncio.sleep(2.2)  # past the rule's duration since the first "offline"
    await evaluate()
    # then no ticket and no message
    assert await database_sync_to_async(Ticket.objects.count)() == 0
    assert await database_sync_to_async(office_messages)(office["atlas"]) == []


async def test_the_timer_fires_after_the_ingester_and_evaluator_restart_mid_window(office, device):
    # given the rule at 3 s, a running ingester and a projector that went offline
    sensor = await make_projector(office, for_seconds=3)
    client_id = f"test-ingester-{uuid.uuid4().hex[:8]}"
    first = RunningIngester(client_id)
    await first.start()
    await device("office/sensors/atlas-projector", {"state": "offline", "id": "r-1"})
    await wait_until(lambda: readings_of(sensor) == 1, what="first reading")
    await evaluate()  # mid-window: nothing is due yet
    assert await database_sync_to_async(RuleFiring.objects.count)() == 0
    # when the ingester is killed mid-window and the window runs out while nothing runs
    await first.stop()
    await asyncio.sleep(3.2)
    # and both come back (a fresh ingester, the evaluator's next tick)
    second = RunningIngester(client_id)
    await second.start()
    try:
        fired = await evaluate()
        # and the device keeps reporting offline afterwards
        await device("office/sensors/atlas-projector", {"state": "offline", "id": "r-2"})
        await wait_until(lambda: readings_of(sensor) == 2, what="the reading after the restart")
        fired += await evaluate()
    finally:
        await second.stop()
    # then the timer fired exactly once, for the episode that began before the restart
    assert fired == 1
    firing = await database_sync_to_async(RuleFiring.objects.get)()
    first_reading = await database_sync_to_async(SensorReading.objects.get)(sensor=sensor, message_id="r-1")
    assert firing.episode_start == first_reading.received_at
    assert await database_sync_to_async(Ticket.objects.count)() == 1
    assert len(await database_sync_to_async(office_messages)(office["atlas"])) == 1


async def test_bad_mqtt_messages_are_counted_and_the_ingester_keeps_going(office, ingester, device, caplog):
    # given a projector
    sensor = await make_projector(office, for_seconds=60)
    before = {r: counter("office_iot_readings_rejected_total", source="mqtt", reason=r)
              for r in ("malformed", "schema", "unknown_device")}
    # when a device sends garbage, broken JSON, deep nesting, a wrong schema, an unknown topic...
    await device("office/sensors/atlas-projector", b"\xff\xfe not json")
    await device("office/sensors/atlas-projector", b'{"state": ')
    await device("office/sensors/atlas-projector", b"[" * 5000 + b"]" * 5000)
    await device("office/sensors/atlas-projector", {"state": "on", "volume": 11})
    await device("office/sensors/nobody-here", {"state": "on"})
    # ...and then a valid reading
    await device("office/sensors/atlas-projector", {"state": "on"})
    await wait_until(lambda: readings_of(sensor) == 1, what="the valid reading")
    # then the valid one is stored, each bad one was refused with its reason and counted
    assert ingester.task is not None and not ingester.task.done()
    stored = await database_sync_to_async(lambda: list(SensorReading.objects.values_list("value", flat=True)))()
    assert stored == [{"state": "on"}]
    assert counter("office_iot_readings_rejected_total", source="mqtt", reason="malformed") == before["malformed"] + 3
    assert counter("office_iot_readings_rejected_total", source="mqtt", reason="schema") == before["schema"] + 1
    assert counter("office_iot_readings_rejected_total", source="mqtt",
                   reason="unknown_device") == before["unknown_device"] + 1
    reasons = " ".join(r.getMessage() for r in caplog.records)
    assert "not valid JSON" in reasons and "volume" in reasons and "nobody-here" in reasons


async def test_occupancy_shows_live_on_the_map_and_sensors_page_respects_access(office, people, ingester, device,
                                                                              sockets):
    # given occupancy sensors in Atlas and in the private Vault, and bob on the map and the sensors page
    @database_sync_to_async
    def make_sensors():
        services.sensor_create(room=office["atlas"], kind="occupancy", name="Atlas counter", device_id="atlas-people")
        services.sensor_create(room=office["vault"], kind="door", name="Vault door", device_id="vault-door")

    await make_sensors()
    bob = await sockets(people["bob"], office["map"].id)
    from office.asgi import application
    from tests.conftest import session_cookie

    cookie = await database_sync_to_async(session_cookie)(people["bob"])
    page = WebsocketCommunicator(application, "/ws/iot/sensors/",
                                 headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"), (b"cookie", cookie)])
    connected, _ = await page.connect()
    assert connected and json.loads(await page.receive_from(3))["type"] == "hello"
    try:
        # when the Vault door opens and two people are counted in Atlas
        await device("office/sensors/vault-door", {"state": "open"})
        await device("office/sensors/atlas-people", {"count": 2})
        # then the map shows Atlas' occupancy live
        frame = await bob.wait_for("room.occupancy", timeout=5)
        assert frame["room"] == office["atlas"].id and frame["count"] == 2
        # and bob's sensors page hears of Atlas only, never of the Vault (he may not enter it)
        seen = json.loads(await page.receive_from(5))
        assert seen["type"] == "sensor.reading" and seen["reading"]["value"] == {"count": 2}
        assert await page.receive_nothing(0.3)
    finally:
        await page.disconnect()
    # and the REST snapshot the map loads after hello agrees
    from tests.conftest import client_for

    snapshot = await database_sync_to_async(
        lambda: client_for(people["bob"]).get(f"/api/iot/occupancy/?map={office['map'].id}").json())()
    assert snapshot["rooms"] == [{"room": office["atlas"].id, "count": 2, "present": True,
                                  "at": snapshot["rooms"][0]["at"]}]


async def test_readings_published_while_the_ingester_is_down_are_stored_once_when_it_returns(office):
    """The embedded broker of `make run` (signed-in sessions only) queues QoS 1 messages for the
    ingester's persistent session; a redelivered message (same device message id) is stored once."""
    # given a projector and an ingester that subscribed once and was then killed
    sensor = await make_projector(office, for_seconds=600)
    running = RunningIngester(f"test-ingester-{uuid.uuid4().hex[:8]}")
    publisher = MQTTClient(client_id=f"test-device-{uuid.uuid4().hex[:8]}", config={"auto_reconnect": False})
    await publisher.connect(broker_uri())
    try:
        await running.start()
        await running.stop()
        # when the device publishes 20 readings while nothing ingests (the 7th sent twice, as a
        # device does that did not see its PUBACK)
        for n in range(20):
            payload = json.dumps({"state": "on" if n % 2 else "off", "id": f"while-down-{n}"}).encode()
            await publisher.publish("office/sensors/atlas-projector", payload, qos=QOS_1)
            if n == 7:
                await publisher.publish("office/sensors/atlas-projector", payload, qos=QOS_1)
        assert await sync_to_async(readings_of)(sensor) == 0
        # and the ingester comes back on the same session
        await running.start()
        await wait_until(lambda: readings_of(sensor) == 20, what="the readings sent while the ingester was down")
        await asyncio.sleep(0.3)  # room for anything queued twice to show up
    finally:
        await running.stop()
        await running.forget()
        await publisher.disconnect()
    # then every reading is stored exactly once, in the order sent
    ids = await database_sync_to_async(
        lambda: list(SensorReading.objects.filter(sensor=sensor).order_by("id").values_list("message_id", flat=True)))()
    assert ids == [f"while-down-{n}" for n in range(20)]


# --- broker logins (iot/mqtt_auth.py), on a broker in this process so it reads the test database ---

@pytest.fixture
async def broker():
    """The embedded broker's own configuration (office/mqtt_broker.py), on a free loopback port."""
    from amqtt.broker import Broker

    from office.embedded import free_port
    from office.mqtt_broker import broker_config

    port = free_port()
    instance = Broker(broker_config(f"127.0.0.1:{port}"))
    await instance.start()
    yield port
    await instance.shutdown()


def login_uri(port: int, username: str | None = None, password: str | None = None) -> str:
    from urllib.parse import quote

    if username is None:
        return f"mqtt://127.0.0.1:{port}"
    return f"mqtt://{quote(username, safe='')}:{quote(password or '', safe='')}@127.0.0.1:{port}"


async def try_connect(uri: str, client_id: str) -> MQTTClient | None:
    """A connected client, or None when the broker refused the login."""
    from amqtt.errors import ConnectError

    client = MQTTClient(client_id=client_id, config={"auto_reconnect": False})
    try:
        await client.connect(uri)
    except ConnectError:
        return None
    return client


async def test_the_broker_refuses_anonymous_and_wrong_logins_and_says_why(office, broker, caplog):
    # given a registered projector and its credentials
    @database_sync_to_async
    def register():
        return services.sensor_create(room=office["atlas"], kind="projector", name="Atlas projector",
                                      device_id="atlas-projector")

    sensor, creds = await register()
    caplog.set_level("WARNING", logger="iot.mqtt_auth")
    # when clients connect anonymously, with a wrong password, as an unknown user, or with the right
    # password but another device's client id
    attempts = {
        "anonymous": (login_uri(broker), "atlas-projector"),
        "wrong_password": (login_uri(broker, creds.mqtt_username, "guess"), "atlas-projector"),
        "unknown_user": (login_uri(broker, "sensor-nobody", creds.mqtt_password), "nobody"),
        "client_id_not_device_id": (login_uri(broker, creds.mqtt_username, creds.mqtt_password),
                                    settings.OFFICE_IOT_MQTT_CLIENT_ID),
    }
    results = {reason: await try_connect(uri, client_id) for reason, (uri, client_id) in attempts.items()}
    # then every one is refused, logged with its reason, and no password reaches the log
    assert results == dict.fromkeys(attempts)
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "iot.mqtt_auth")
    for reason in attempts:
        assert f"refused ({reason})" in logged
    assert creds.mqtt_password not in caplog.text
    # and the service login with a wrong password is refused too
    assert await try_connect(login_uri(broker, settings.OFFICE_IOT_MQTT_USERNAME, "guess"), "x") is None


async def test_a_sensor_signs_in_with_its_own_password_and_publishes_on_its_own_topic_only(office, broker):
    # given two projectors and an ingester signed in with the service login on this broker
    @database_sync_to_async
    def register():
        services.builtin_rules_ensure()
        atlas = services.sensor_create(room=office["atlas"], kind="projector", name="Atlas projector",
                                       device_id="atlas-projector")
        vault = services.sensor_create(room=office["vault"], kind="projector", name="Vault projector",
                                       device_id="vault-projector")
        return atlas, vault

    (atlas, atlas_creds), (vault, _vault_creds) = await register()
    ingester = Ingester(client_id=f"test-ingester-{uuid.uuid4().hex[:8]}",
                        uri=login_uri(broker, settings.OFFICE_IOT_MQTT_USERNAME, settings.OFFICE_IOT_MQTT_PASSWORD))
    stop = asyncio.Event()
    task = asyncio.create_task(ingester.run(stop))
    await asyncio.wait_for(ingester.connected.wait(), 10)
    # when the Atlas projector signs in with its own login and publishes on its topic and on the Vault's
    device = await try_connect(login_uri(broker, atlas_creds.mqtt_username, atlas_creds.mqtt_password),
                               "atlas-projector")
    try:
        assert device is not None
        await device.publish("office/sensors/vault-projector", b'{"state": "offline", "id": "forged"}', qos=QOS_1)
        await device.publish("office/sensors/atlas-projector", b'{"state": "on", "id": "own"}', qos=QOS_1)
        await wait_until(lambda: readings_of(atlas) == 1, what="the reading on its own topic")
        await asyncio.sleep(0.3)
    finally:
        if device is not None:
            await device.disconnect()
        stop.set()
        await asyncio.wait_for(task, 10)
    # then only its own reading was stored; the forged one never reached the ingester
    assert await sync_to_async(readings_of)(vault) == 0
    # and once its credentials are rotated, the old password no longer signs in, the new one does
    new_creds = await database_sync_to_async(services.sensor_credentials_rotate)(sensor=atlas)
    assert await try_connect(login_uri(broker, atlas_creds.mqtt_username, atlas_creds.mqtt_password),
                             "atlas-projector") is None
    again = await try_connect(login_uri(broker, new_creds.mqtt_username, new_creds.mqtt_password), "atlas-projector")
    assert again is not None
    await again.disconnect()
    # and a disabled sensor cannot sign in at all
    await database_sync_to_async(services.sensor_update)(sensor=atlas, enabled=False)
    assert await try_connect(login_uri(broker, new_creds.mqtt_username, new_creds.mqtt_password),
                             "atlas-projector") is None


def test_health_signs_in_to_the_broker_like_the_ingester(settings):
    from django.test import Client

    # given the embedded broker with the office's service login: /healthz signs in and passes
    response = Client().get("/healthz")
    assert response.json()["checks"]["mqtt"]["ok"] is True
    # when the configured password is wrong, the broker refuses the session and /healthz says so
    settings.OFFICE_IOT_MQTT_PASSWORD = "not-the-password"
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["mqtt"] == {"ok": False, "error": "ConnectionError"}


async def test_a_connected_sensor_stops_publishing_once_it_is_disabled(office, broker, settings):
    # given a signed-in projector whose rights are re-read every second, and an ingester
    settings.OFFICE_ACCESS_RECHECK_SECONDS = 1
    refused_by_ingester = counter("office_iot_readings_rejected_total", source="mqtt", reason="disabled")
    sensor, creds = await database_sync_to_async(services.sensor_create)(
        room=office["atlas"], kind="projector", name="Atlas projector", device_id="atlas-projector")
    ingester = Ingester(client_id=f"test-ingester-{uuid.uuid4().hex[:8]}",
                        uri=login_uri(broker, settings.OFFICE_IOT_MQTT_USERNAME, settings.OFFICE_IOT_MQTT_PASSWORD))
    stop = asyncio.Event()
    task = asyncio.create_task(ingester.run(stop))
    await asyncio.wait_for(ingester.connected.wait(), 10)
    device = await try_connect(login_uri(broker, creds.mqtt_username, creds.mqtt_password), "atlas-projector")
    assert device is not None
    try:
        await device.publish("office/sensors/atlas-projector", b'{"state": "on", "id": "before"}', qos=QOS_1)
        await wait_until(lambda: readings_of(sensor) == 1, what="the reading before it was disabled")
        # when an admin disables it while it stays connected
        await database_sync_to_async(services.sensor_update)(sensor=sensor, enabled=False)
        await asyncio.sleep(1.2)
        await device.publish("office/sensors/atlas-projector", b'{"state": "on", "id": "after"}', qos=QOS_1)
        await asyncio.sleep(0.5)
    finally:
        await device.disconnect()
        stop.set()
        await asyncio.wait_for(task, 10)
    # then the broker no longer passes its messages on (nothing reaches the ingester to refuse)
    ids = await database_sync_to_async(
        lambda: list(SensorReading.objects.filter(sensor=sensor).values_list("message_id", flat=True)))()
    assert ids == ["before"]
    assert counter("office_iot_readings_rejected_total", source="mqtt", reason="disabled") == refused_by_ingester


# --- restarts: the database and the broker go away and come back (bench/faults.py does it under load) ---

async def test_a_reading_that_arrives_while_the_database_restarts_is_stored_once_it_is_back(office, ingester, device,
                                                                                         monkeypatch):
    from django.db import OperationalError

    # given a projector and a database that refuses the first two attempts to store (it is restarting)
    sensor = await make_projector(office, for_seconds=120)
    real_ingest = services.mqtt_message_ingest
    refused = []

    def restarting_database(**kwargs):
        if len(refused) < 2:
            refused.append(kwargs["topic"])
            raise OperationalError("the database system is starting up")
        return real_ingest(**kwargs)

    monkeypatch.setattr(services, "mqtt_message_ingest", restarting_database)
    # when the projector publishes a reading (the broker counts it as delivered to the ingester)
    await device("office/sensors/atlas-projector", {"state": "on", "id": "during-restart"})
    # then the ingester keeps it and stores it once the database answers again
    await wait_until(lambda: readings_of(sensor) == 1, timeout=15, what="the reading to be stored")
    assert len(refused) == 2


async def test_messages_acknowledged_but_not_yet_taken_are_stored_when_the_session_ends(office, monkeypatch):
    from types import SimpleNamespace

    from amqtt.errors import ClientError

    # given a session that acknowledged two readings (queued in the client) and then ended: the
    # broker restarted, and will not send them again
    sensor = await make_projector(office, for_seconds=120)
    stop = asyncio.Event()
    queued: asyncio.Queue = asyncio.Queue()
    for n in (1, 2):
        queued.put_nowait(SimpleNamespace(topic="office/sensors/atlas-projector",
                                          data=json.dumps({"state": "on", "id": f"queued-{n}"}).encode()))

    class EndedSession:
        session = SimpleNamespace(delivered_message_queue=queued)

        async def connect(self, uri, cleansession):
            if stop.is_set():
                raise ConnectionError("no second round")

        async def subscribe(self, topics):
            pass

        async def deliver_message(self, timeout_duration=None):
            stop.set()  # the run ends after this session
            raise ClientError("connection lost")

        async def disconnect(self):
            pass

    ingester = Ingester(client_id="test-ended-session")
    monkeypatch.setattr(ingester, "_client", EndedSession)
    # when the ingester's session ends
    await asyncio.wait_for(ingester.run(stop), timeout=10)
    # then both acknowledged readings are stored, not dropped with the client
    assert await sync_to_async(readings_of, thread_sensitive=True)(sensor) == 2
    assert ingester.handled == 2


async def test_the_broker_keeps_a_persistent_session_and_its_messages_across_a_restart(office, tmp_path,
                                                                                     monkeypatch):
    from amqtt.broker import Broker

    from iot import mqtt_auth
    from office.embedded import free_port
    from office.mqtt_broker import broker_config

    # given the embedded broker with its sessions file, and a subscriber with a persistent session
    port = free_port()
    config = broker_config(f"127.0.0.1:{port}", tmp_path / "mqtt_sessions.json")
    service = login_uri(port, settings.OFFICE_IOT_MQTT_USERNAME, settings.OFFICE_IOT_MQTT_PASSWORD)
    broker = Broker(config)
    await broker.start()
    subscriber = MQTTClient(client_id="restart-subscriber", config={"auto_reconnect": False})
    await subscriber.connect(service, cleansession=False)
    await subscriber.subscribe([("office/sensors/#", QOS_1)])
    # when the broker restarts and a device publishes before the subscriber is back
    await broker.shutdown()
    await subscriber.disconnect()
    monkeypatch.setattr(mqtt_auth, "_grants", {})  # a new broker process knows no logins yet
    broker = Broker(config)
    await broker.start()
    device = MQTTClient(client_id="restart-device", config={"auto_reconnect": False})
    try:
        await device.connect(service)
        await device.publish("office/sensors/atlas-projector", b'{"state": "on", "id": "after-restart"}', qos=QOS_1)
        await device.disconnect()
        # then the subscriber, back with its session, gets the message
        subscriber = MQTTClient(client_id="restart-subscriber", config={"auto_reconnect": False})
        await subscriber.connect(service, cleansession=False)
        message = await subscriber.deliver_message(timeout_duration=5)
        assert json.loads(bytes(message.data))["id"] == "after-restart"
        await subscriber.disconnect()
    finally:
        await broker.shutdown()
