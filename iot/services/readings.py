"""Readings from MQTT and signed webhooks: validate, store with the sensor's live state, announce."""

# A reading is persisted first (with the sensor's live state and every rule timer it moves), and
# only then announced; the rule timers it made due fire at once (`firing.rule_states_fire`).

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from office.events import map_group, send_event_on_commit
from office.redis_client import redis_client

from .. import selectors
from ..credentials import secret_decrypt
from ..metrics import READINGS, READINGS_REJECTED
from ..models import Sensor, SensorReading
from ..schemas import reading_problems
from .common import SENSORS_GROUP
from .firing import _rules_apply_reading, rule_states_fire

logger = logging.getLogger(__name__)


class ReadingRejected(Exception):
    """A message that is not stored, with a reason code (a counter label) and a clear message."""

    def __init__(self, reason: str, message: str, status: int = 400):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass
class IngestResult:
    reading: SensorReading
    created: bool
    due_state_ids: list[int]


def _reject(source: str, reason: str, message: str, *, status: int = 400, where: str = "",
            payload: bytes | None = None) -> ReadingRejected:
    READINGS_REJECTED.labels(source, reason).inc()
    excerpt = payload[:120].decode("utf-8", "replace") if payload is not None else ""
    logger.warning("sensor message refused (%s, %s) from %s: %s; payload starts %r", source, reason, where,
                   message, excerpt, extra={"reason": reason, "source": source})
    return ReadingRejected(reason, message, status)


def _parse(sensor: Sensor, payload: bytes, source: str) -> tuple[dict, datetime | None, str]:
    where = sensor.device_id
    if len(payload) > settings.OFFICE_IOT_MAX_PAYLOAD_BYTES:
        raise _reject(source, "too_large", f"message is larger than {settings.OFFICE_IOT_MAX_PAYLOAD_BYTES} bytes",
                      where=where)
    try:
        value = json.loads(payload)
    except RecursionError:
        raise _reject(source, "malformed", "JSON is nested too deeply", where=where) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _reject(source, "malformed", f"message is not valid JSON: {exc}", where=where, payload=payload) from None
    if not isinstance(value, dict):
        raise _reject(source, "schema", "message must be a JSON object", where=where, payload=payload)
    problems = reading_problems(sensor.kind, value)
    if problems:
        raise _reject(source, "schema", f"not a valid {sensor.kind} reading: {'; '.join(problems)}", where=where,
                      payload=payload)
    measured_at = None
    if "measured_at" in value:
        measured_at = parse_datetime(value["measured_at"])
        if measured_at is None:
            raise _reject(source, "schema", "measured_at must be an ISO 8601 date and time", where=where,
                          payload=payload)
        if timezone.is_naive(measured_at):
            measured_at = timezone.make_aware(measured_at, UTC)
    message_id = value.pop("id", "")
    value.pop("measured_at", None)
    return value, measured_at, message_id


def reading_ingest(*, sensor: Sensor, payload: bytes, source: str, received_at: datetime | None = None) -> IngestResult:
    """Validate and store one message from `sensor`, move its rule timers, announce after commit.

    Raises ReadingRejected (logged and counted) for anything that is not a valid reading.
    """
    if not sensor.enabled:
        raise _reject(source, "disabled", "this sensor is disabled", status=403, where=sensor.device_id)
    value, measured_at, message_id = _parse(sensor, payload, source)
    now = received_at or timezone.now()
    with transaction.atomic():
        if message_id:
            existing = SensorReading.objects.filter(sensor=sensor, message_id=message_id).first()
            if existing is not None:
                return IngestResult(existing, False, [])
        try:
            with transaction.atomic():
                reading = SensorReading.objects.create(sensor=sensor, value=value, received_at=now,
                                                       measured_at=measured_at, source=source, message_id=message_id)
        except IntegrityError:  # the same message id arrived twice at once
            return IngestResult(SensorReading.objects.get(sensor=sensor, message_id=message_id), False, [])
        Sensor.objects.filter(pk=sensor.pk).update(last_state=value, last_seen_at=now)
        sensor.last_state, sensor.last_seen_at = value, now
        due = _rules_apply_reading(sensor, value, now)
        _announce_reading(sensor, reading)
    READINGS.labels(source, sensor.kind).inc()
    return IngestResult(reading, True, due)


def _ingest_and_fire_due(*, sensor: Sensor, payload: bytes, source: str) -> IngestResult:
    """What a device's message does: store it, then at once fire the rule timers it made due (a
    zero-second rule need not wait for the beat tick)."""
    result = reading_ingest(sensor=sensor, payload=payload, source=source)
    if result.due_state_ids:
        rule_states_fire(result.due_state_ids)
    return result


def mqtt_message_ingest(*, topic: str, payload: bytes) -> IngestResult:
    sensor = selectors.sensor_by_topic(topic)
    if sensor is None:
        raise _reject("mqtt", "unknown_device", f"no sensor publishes on topic {topic[:200]!r}", where=topic[:200])
    return _ingest_and_fire_due(sensor=sensor, payload=payload, source="mqtt")


def _announce_reading(sensor: Sensor, reading: SensorReading) -> None:
    send_event_on_commit(SENSORS_GROUP, {
        "type": "iot.reading",
        "sensor": sensor.id,
        "room": sensor.room_id,
        "reading": selectors.reading_payload(reading),
    })
    if sensor.kind == Sensor.Kind.OCCUPANCY and sensor.room_id is not None:
        occupancy = selectors.occupancy_of_rooms([sensor.room_id]).get(sensor.room_id)
        if occupancy is not None:
            send_event_on_commit(map_group(sensor.room.office_map_id), {"type": "iot.occupancy", **occupancy})


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of `<timestamp>.<body>` under the device's secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_ingest(*, device_id: str, body: bytes, timestamp: str | None, signature: str | None,
                   now: float | None = None) -> IngestResult:
    """Authenticate a webhook by its signature, refuse stale or replayed ones, then ingest it."""
    sensor = selectors.sensor_by_device_id(device_id)
    if sensor is None:
        raise _reject("webhook", "unknown_device", "no such device", status=404, where=device_id[:64])
    if not timestamp or not signature:
        raise _reject("webhook", "unsigned", "X-Office-Timestamp and X-Office-Signature headers are required",
                      status=401, where=device_id)
    tolerance = settings.OFFICE_IOT_WEBHOOK_TOLERANCE_SECONDS
    now = time.time() if now is None else now
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:  # int() refuses "²"
        raise _reject("webhook", "unsigned", "X-Office-Timestamp must be Unix seconds", status=401, where=device_id)
    if abs(now - int(timestamp)) > tolerance:
        raise _reject("webhook", "stale", f"timestamp is more than {tolerance} s away from the server's clock",
                      status=401, where=device_id)
    secret = secret_decrypt(sensor.webhook_secret_encrypted)
    if secret is None or not hmac.compare_digest(webhook_signature(secret, timestamp, body), signature.strip()):
        raise _reject("webhook", "bad_signature", "signature does not match (HMAC-SHA256 of timestamp.body)",
                      status=401, where=device_id)
    key = f"iot:webhook:seen:{sensor.id}:{hashlib.sha256(signature.encode()).hexdigest()}"
    try:
        first_time = redis_client().set(key, b"1", nx=True, ex=2 * tolerance + 5)
    except redis.RedisError as exc:
        raise _reject("webhook", "replay_store_down", "cannot check for replays right now; retry",
                      status=503, where=device_id) from exc
    if not first_time:
        raise _reject("webhook", "replayed", "this signed message was already received", status=409, where=device_id)
    return _ingest_and_fire_due(sensor=sensor, payload=body, source="webhook")
