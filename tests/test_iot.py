"""Sensors over signed webhooks, rule timers with debounce and hysteresis, bookings and free-room
suggestions, and who may see what. Real PostgreSQL and Redis; the MQTT path is in test_iot_mqtt.py."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from automation.models import Ticket
from iot import services
from iot.models import Rule, RuleFiring, RuleState, SensorReading
from rooms import services as room_services
from rooms.models import ChatMessage

pytestmark = pytest.mark.django_db(transaction=True)


def counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def office_messages(room) -> list[str]:
    return list(ChatMessage.objects.filter(thread__room=room, author__username="office").values_list("body", flat=True))


@pytest.fixture(autouse=True)
def builtin_rules(db):
    """The migration creates them; transactional tests empty the tables between tests."""
    return services.builtin_rules_ensure()


@pytest.fixture
def projector(office, client_of, people):
    """A projector in Atlas registered by dana over REST; the credentials come back once."""
    response = client_of(people["dana"]).post(
        "/api/iot/sensors/", {"room": office["atlas"].id, "kind": "projector", "name": "Atlas projector",
                              "device_id": "atlas-projector"}, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    return {"id": body["id"], "secret": body["credentials"]["webhook_secret"], "body": body}


def signed_post(client, device_id: str, secret: str, payload, *, timestamp: int | None = None, signature=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"HTTP_X_OFFICE_TIMESTAMP": ts,
               "HTTP_X_OFFICE_SIGNATURE": signature or services.webhook_signature(secret, ts, body)}
    return client.post(f"/api/iot/webhook/{device_id}", data=body, content_type="application/json", **headers)


def reading_at(sensor_id: int, payload: dict, seconds_ago: float):
    from iot.models import Sensor

    sensor = Sensor.objects.select_related("room").get(pk=sensor_id)
    return services.reading_ingest(sensor=sensor, payload=json.dumps(payload).encode(), source="mqtt",
                                   received_at=timezone.now() - timedelta(seconds=seconds_ago))


def projector_rule(**overrides) -> Rule:
    rule = Rule.objects.get(builtin_key="projector-failure")
    return services.rule_update(rule=rule, **overrides)


# --- registration and credentials ---

def test_admin_registers_a_sensor_and_sees_its_secrets_once(projector, client_of, people):
    # given the sensor dana just registered
    body = projector["body"]
    # then it got the default topic and per-device credentials, shown in the create answer only
    assert body["mqtt_topic"] == "office/sensors/atlas-projector"
    assert body["credentials"]["mqtt_password"] and body["credentials"]["webhook_secret"]
    again = client_of(people["dana"]).get(f"/api/iot/sensors/{projector['id']}/").json()
    assert "credentials" not in again and projector["secret"] not in json.dumps(again)
    # when dana rotates them, the old webhook secret stops working
    rotated = client_of(people["dana"]).post(f"/api/iot/sensors/{projector['id']}/rotate-credentials/").json()
    assert rotated["credentials"]["webhook_secret"] != projector["secret"]
    old = signed_post(client_of(people["bob"]), "atlas-projector", projector["secret"], {"state": "on"})
    assert old.status_code == 401 and old.json()["error"]["code"] == "bad_signature"
    new = signed_post(client_of(people["bob"]), "atlas-projector", rotated["credentials"]["webhook_secret"],
                      {"state": "on"})
    assert new.status_code == 201


# --- webhooks ---

def test_signed_webhook_is_stored_and_becomes_the_live_state(projector):
    from django.test import Client

    # given a device without any session
    device = Client(enforce_csrf_checks=True)
    # when it posts a signed reading
    response = signed_post(device, "atlas-projector", projector["secret"],
                           {"state": "on", "measured_at": "2026-01-05T09:00:00Z", "id": "m-1"})
    # then the reading is stored with both times and the sensor's live state follows it
    assert response.status_code == 201, response.content
    reading = SensorReading.objects.get(pk=response.json()["reading"])
    assert reading.value == {"state": "on"} and reading.source == "webhook"
    assert reading.measured_at.isoformat().startswith("2026-01-05T09:00:00")
    assert reading.sensor.last_state == {"state": "on"}
    # and the same device message id sent again (newly signed) is stored once
    again = signed_post(device, "atlas-projector", projector["secret"], {"state": "on", "id": "m-1"},
                        timestamp=int(time.time()) + 1)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert SensorReading.objects.filter(sensor_id=projector["id"]).count() == 1


def test_bad_webhooks_are_refused_with_clear_errors_and_counted(projector):
    from django.test import Client

    device = Client()
    before = {reason: counter("office_iot_readings_rejected_total", source="webhook", reason=reason)
              for reason in ("unsigned", "stale", "bad_signature", "replayed", "unknown_device", "schema", "malformed")}

    # unsigned
    unsigned = device.post("/api/iot/webhook/atlas-projector", data=b'{"state":"on"}', content_type="application/json")
    assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "unsigned"
    # stale: signed correctly, ten minutes old
    stale = signed_post(device, "atlas-projector", projector["secret"], {"state": "on"},
                        timestamp=int(time.time()) - 600)
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "stale"
    # wrong secret
    forged = signed_post(device, "atlas-projector", "not-the-secret", {"state": "on"})
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"
    # unknown device
    unknown = signed_post(device, "no-such-device", projector["secret"], {"state": "on"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_device"
    # wrong schema and malformed JSON, correctly signed
    wrong = signed_post(device, "atlas-projector", projector["secret"], {"state": "melting"})
    assert wrong.status_code == 400 and "state" in wrong.json()["error"]["message"]
    broken = signed_post(device, "atlas-projector", projector["secret"], b'{"state": "on"')
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "malformed"
    # a good one, then the very same request replayed
    ts = int(time.time())
    good = signed_post(device, "atlas-projector", projector["secret"], {"state": "off"}, timestamp=ts)
    assert good.status_code == 201
    replay = signed_post(device, "atlas-projector", projector["secret"], {"state": "off"}, timestamp=ts)
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "replayed"

    # then only the good reading was stored, and every refusal was counted by reason
    assert list(SensorReading.objects.filter(sensor_id=projector["id"]).values_list("value", flat=True)) == [
        {"state": "off"}]
    for reason in before:
        assert counter("office_iot_readings_rejected_total", source="webhook", reason=reason) == before[reason] + 1, reason


# --- rules: timers, debounce, hysteresis ---

class Timeline:
    """Readings and evaluator runs at chosen moments of a replayed past (t seconds from its start),
    as the ingester and the beat task would see them."""

    def __init__(self, sensor_id: int):
        self.sensor_id = sensor_id
        self.start = timezone.now() - timedelta(hours=1)

    def at(self, t: float):
        return self.start + timedelta(seconds=t)

    def reading(self, t: float, payload: dict):
        from iot.models import Sensor

        sensor = Sensor.objects.select_related("room").get(pk=self.sensor_id)
        return services.reading_ingest(sensor=sensor, payload=json.dumps(payload).encode(), source="mqtt",
                                       received_at=self.at(t))

    def tick(self, t: float) -> int:
        return services.rules_fire_due(now=self.at(t))


def test_projector_offline_for_the_rule_duration_opens_one_ticket_and_one_message(projector, office):
    # given the built-in projector rule (2 minutes) and a projector offline for 3 minutes
    timeline = Timeline(projector["id"])
    fired = 0
    for t in range(0, 185, 5):  # a reading and a beat tick every 5 s
        timeline.reading(t, {"state": "offline" if t < 150 else "error"})
        fired += timeline.tick(t)
    # then the rule fired once, at 2 minutes: one facilities ticket and one chat message in Atlas
    assert fired == 1
    firing = RuleFiring.objects.get()
    assert firing.episode_start == timeline.at(0) and firing.fired_at is not None
    tickets = Ticket.objects.filter(kind="facilities", room=office["atlas"])
    assert tickets.count() == 1 and tickets.get().severity == "high"
    messages = office_messages(office["atlas"])
    assert len(messages) == 1 and "offline" in messages[0] and f"#{tickets.get().id}" in messages[0]


def test_a_flapping_projector_opens_no_ticket_storm(projector, office):
    # given a projector that drops out for 30 s and comes back, again and again, for 10 minutes
    timeline = Timeline(projector["id"])
    for t in range(0, 600, 5):
        timeline.reading(t, {"state": "offline" if (t // 30) % 2 == 0 else "on"})
        timeline.tick(t)
    # then nothing fired: it was never offline for the rule's 2 minutes
    assert not RuleFiring.objects.exists() and not Ticket.objects.exists()
    assert office_messages(office["atlas"]) == []


def test_after_firing_flapping_does_not_fire_again_until_it_has_cleared(projector, office):
    projector_rule(for_seconds=60, clear_for_seconds=60)
    timeline = Timeline(projector["id"])
    # given an episode that fired after a minute offline
    for t in range(0, 65, 5):
        timeline.reading(t, {"state": "offline"})
        timeline.tick(t)
    assert RuleFiring.objects.count() == 1
    # when it flaps (back on for 20 s, offline for 10 s) for five minutes
    for t in range(65, 365, 5):
        timeline.reading(t, {"state": "on" if (t - 65) % 30 < 20 else "offline"})
        timeline.tick(t)
    # then still one firing, one ticket and one message: "on" never held for the clear duration
    assert RuleFiring.objects.count() == 1 and Ticket.objects.count() == 1
    assert len(office_messages(office["atlas"])) == 1
    # when it is on for longer than the clear duration, the episode closes
    for t in range(365, 440, 5):
        timeline.reading(t, {"state": "on"})
        timeline.tick(t)
    assert RuleState.objects.get(sensor_id=projector["id"]).phase == "idle"
    # and a later outage is a new episode with its own message
    for t in range(440, 510, 5):
        timeline.reading(t, {"state": "error"})
        timeline.tick(t)
    assert RuleFiring.objects.count() == 2 and len(office_messages(office["atlas"])) == 2


def test_a_rule_on_a_deleted_room_is_skipped_with_a_reason_and_nothing_is_lost(projector, office, caplog):
    # given a room rule on Atlas' projectors, mid-window
    Rule.objects.filter(builtin_key="projector-failure").update(enabled=False)
    services.rule_create(name="Atlas projector", scope="room", room=office["atlas"], sensor_kind="projector",
                         op="in", value=["offline"], for_seconds=30)
    reading_at(projector["id"], {"state": "offline"}, 60)
    skipped = counter("office_iot_rules_skipped_total", reason="room_deleted")
    # when the room is deleted before the timer runs out
    room_services.room_delete(room=office["atlas"])
    fired = services.rules_fire_due()
    # then nothing fires, the skip is logged with its reason and counted, and the timer is dropped
    assert fired == 0 and not Ticket.objects.exists()
    assert counter("office_iot_rules_skipped_total", reason="room_deleted") == skipped + 1
    assert any("room deleted" in r.getMessage() for r in caplog.records)
    assert RuleState.objects.get().due_at is None
    # and the sensor keeps its history and still accepts readings
    reading_at(projector["id"], {"state": "on"}, 0)
    assert SensorReading.objects.filter(sensor_id=projector["id"]).count() == 2


def test_rule_validation_explains_what_is_wrong(office, client_of, people):
    response = client_of(people["dana"]).post("/api/iot/rules/", {
        "name": "too warm", "scope": "kind", "sensor_kind": "temperature", "field": "colour", "op": "gt",
        "value": "warm"}, content_type="application/json")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "no field 'colour'" in message and "needs a number" in message


# --- bookings and free rooms ---

@pytest.fixture
def rooms_with_occupancy(office, people):
    """Atlas (capacity 3) with an occupancy sensor; a free meeting room Orion (capacity 8)."""
    orion = room_services.room_create(office_map=office["map"], name="Orion", kind="meeting", x=28, y=1, width=9,
                                      height=6, doors=[[32, 6]], capacity=8)
    sensor, _ = services.sensor_create(room=office["atlas"], kind="occupancy", name="Atlas people counter",
                                       device_id="atlas-people")
    return {"orion": orion, "sensor": sensor}


def test_an_over_full_booked_meeting_gets_a_free_room_suggested(rooms_with_occupancy, office, people, client_of):
    # given a meeting booked in Atlas now (through the API, by bob)
    now = timezone.now()
    booked = client_of(people["bob"]).post("/api/iot/bookings/", {
        "room": office["atlas"].id, "title": "Design review", "start": (now - timedelta(minutes=30)).isoformat(),
        "end": (now + timedelta(minutes=30)).isoformat()}, content_type="application/json")
    assert booked.status_code == 201, booked.content
    # when five people are counted in it (capacity 3) for over a minute
    sensor = rooms_with_occupancy["sensor"]
    for seconds_ago in (90, 45, 2):
        reading_at(sensor.id, {"count": 5}, seconds_ago)
    services.rules_fire_due()
    # then the room's chat suggests Orion, once, and the sensors page lists it
    messages = office_messages(office["atlas"])
    assert len(messages) == 1 and "Orion" in messages[0] and "5 people" in messages[0]
    services.rules_fire_due()
    assert len(office_messages(office["atlas"])) == 1
    overview = client_of(people["carol"]).get("/api/iot/overview/").json()
    assert overview["suggestions"][0]["suggested_room_name"] == "Orion"


def test_an_empty_booked_room_counts_from_the_booking_start(rooms_with_occupancy, office, people):
    # given Atlas empty for an hour, and a booking that started 5 minutes ago
    now = timezone.now()
    services.booking_create(user=people["alice"], room=office["atlas"], title="Standup",
                            start=now - timedelta(minutes=5), end=now + timedelta(minutes=25))
    sensor = rooms_with_occupancy["sensor"]
    reading_at(sensor.id, {"count": 0}, 3600)
    reading_at(sensor.id, {"count": 0}, 1)
    # when the evaluator runs now, only 5 of the 10 minutes of the booking have passed
    services.rules_fire_due()
    # then nothing is posted yet, and the timer waits for start + 10 minutes
    assert office_messages(office["atlas"]) == []
    state = RuleState.objects.get(rule__builtin_key="booked-room-empty")
    assert abs((state.due_at - (now + timedelta(minutes=5))).total_seconds()) < 5


def test_bookings_cannot_overlap(office, people):
    now = timezone.now()
    services.booking_create(user=people["alice"], room=office["atlas"], title="One", start=now,
                            end=now + timedelta(hours=1))
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="already booked"):
        services.booking_create(user=people["bob"], room=office["atlas"], title="Two",
                                start=now + timedelta(minutes=30), end=now + timedelta(hours=2))


# --- who may see what ---

def test_members_see_sensors_of_rooms_they_may_enter_admins_see_all(office, people, client_of):
    # given sensors in Atlas (a meeting room) and the private Vault (alice only)
    services.sensor_create(room=office["atlas"], kind="temperature", name="Atlas thermometer", device_id="atlas-temp")
    vault, _ = services.sensor_create(room=office["vault"], kind="door", name="Vault door", device_id="vault-door")
    names = lambda user: {s["name"] for s in client_of(user).get("/api/iot/sensors/").json()}  # noqa: E731
    # then bob sees Atlas only, alice and dana both
    assert names(people["bob"]) == {"Atlas thermometer"}
    assert names(people["alice"]) == {"Atlas thermometer", "Vault door"}
    assert names(people["dana"]) == {"Atlas thermometer", "Vault door"}
    # and bob cannot read the Vault sensor's readings (no hint that it exists)
    assert client_of(people["bob"]).get(f"/api/iot/sensors/{vault.id}/readings/").status_code == 404
    assert client_of(people["alice"]).get(f"/api/iot/sensors/{vault.id}/readings/").status_code == 200
    # and the page renders for members, and sends strangers to sign in
    page = client_of(people["bob"]).get("/sensors/")
    assert page.status_code == 200 and b"sensors.js" in page.content
    from django.test import Client

    assert Client().get("/sensors/").status_code == 302
    assert Client().get("/api/iot/sensors/").status_code in (401, 403)


def test_only_admins_register_sensors_and_rules(office, people, client_of):
    bob = client_of(people["bob"])
    created = bob.post("/api/iot/sensors/", {"room": office["atlas"].id, "kind": "door", "name": "x",
                                             "device_id": "x"}, content_type="application/json")
    assert created.status_code == 403 and created.json()["error"]["code"]
    assert bob.get("/api/iot/rules/").status_code == 403
    assert client_of(people["dana"]).get("/api/iot/rules/").status_code == 200


def test_the_beat_entry_is_registered_once_and_its_task_fires_due_rules(projector, office):
    from django_celery_beat.models import PeriodicTask

    from iot.schedules import periodic_tasks_ensure
    from iot.tasks import rules_fire_due

    # given the tick registered twice (the ingester does it at every start)
    periodic_tasks_ensure()
    periodic_tasks_ensure()
    entry = PeriodicTask.objects.get(task="iot.tasks.rules_fire_due")
    assert entry.enabled and entry.interval.every == 5
    # when a projector has been offline past the rule's duration and the task runs
    reading_at(projector["id"], {"state": "offline"}, 300)
    assert rules_fire_due.apply().get() == 1
    # then the ticket is open
    assert Ticket.objects.filter(room=office["atlas"]).count() == 1


def test_admin_registers_a_sensor_in_the_admin_and_sees_the_credentials_once(office, people, client_of):
    dana = client_of(people["dana"])
    response = dana.post("/admin/iot/sensor/add/", {
        "room": office["atlas"].id, "kind": "door", "name": "Atlas door", "device_id": "atlas-door",
        "mqtt_topic": "", "enabled": "on"}, follow=True)
    assert response.status_code == 200
    shown = " ".join(str(m) for m in response.context["messages"])
    assert "webhook secret" in shown and "office/sensors/atlas-door" in shown
    from iot.models import Sensor

    sensor = Sensor.objects.get(device_id="atlas-door")
    assert sensor.mqtt_password_hash and sensor.webhook_secret_encrypted
    assert dana.get(f"/admin/iot/sensor/{sensor.id}/change/").status_code == 200
