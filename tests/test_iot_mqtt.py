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
from iot.ingest import Ingester
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
        self.ingester = Ingester(client_id=self.client_id, uri=settings.MQTT_URL)
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


@pytest.fixture
async def ingester():
    running = RunningIngester(f"test-ingester-{uuid.uuid4().hex[:8]}")
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def device():
    """A simulated sensor: a real MQTT client publishing JSON with QoS 1."""
    client = MQTTClient(client_id=f"test-device-{uuid.uuid4().hex[:8]}", config={"auto_reconnect": False})
    await client.connect(settings.MQTT_URL)

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


async def test_readings_sent_while_the_ingester_is_down_arrive_after_it_reconnects(office):
    """On a broker that keeps sessions for signed-in clients (amqtt without anonymous access here;
    Mosquitto and EMQX alike), the ingester's persistent QoS 1 session loses nothing while it restarts.
    (The embedded broker of `make run` allows anonymous clients, and amqtt keeps no messages for those.)"""
    from amqtt.broker import Broker

    from office.embedded import free_port

    port = free_port()
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
    })
    await broker.start()
    sensor = await make_projector(office, for_seconds=600)
    publisher = MQTTClient(client_id="test-device-session", config={"auto_reconnect": False})
    ingester_uri = f"mqtt://office-ingester@127.0.0.1:{port}"
    try:
        await publisher.connect(f"mqtt://atlas-projector@127.0.0.1:{port}")
        running = RunningIngester("test-ingester-session")
        running_ingester = Ingester(client_id=running.client_id, uri=ingester_uri)
        stop = asyncio.Event()
        task = asyncio.create_task(running_ingester.run(stop))
        await asyncio.wait_for(running_ingester.connected.wait(), 10)
        await publisher.publish("office/sensors/atlas-projector", b'{"state": "on", "id": "before"}', qos=QOS_1)
        await wait_until(lambda: readings_of(sensor) == 1, what="the first reading")
        # when the ingester is killed, and the device publishes twice while it is down
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for n in (1, 2):
            await publisher.publish("office/sensors/atlas-projector",
                                    json.dumps({"state": "offline", "id": f"while-down-{n}"}).encode(), qos=QOS_1)
        # then a fresh ingester on the same session receives both
        again = Ingester(client_id=running.client_id, uri=ingester_uri)
        stop = asyncio.Event()
        task = asyncio.create_task(again.run(stop))
        await wait_until(lambda: readings_of(sensor) == 3, what="the readings sent while the ingester was down")
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        await publisher.disconnect()
        await broker.shutdown()
    ids = await database_sync_to_async(
        lambda: sorted(SensorReading.objects.filter(sensor=sensor).values_list("message_id", flat=True)))()
    assert ids == ["before", "while-down-1", "while-down-2"]


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
