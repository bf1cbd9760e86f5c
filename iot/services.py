"""Writes for sensors, readings, rules and bookings: validate, write in one transaction, announce on commit.

A reading is persisted first (with the sensor's live state and every rule timer it moves), and
only then announced. Rules fire in `rule_states_fire`, which the beat task runs every few seconds
and a device message (MQTT or webhook) runs at once for timers it made due; a firing, its ticket and its chat
message share one transaction and are keyed by the episode, so an episode acts exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from office.events import map_group, send_event_on_commit
from office.redis_client import redis_client
from rooms.models import Room
from rooms.selectors import user_can_enter_room

from . import actions, selectors
from .credentials import (
    DeviceCredentials,
    device_credentials_new,
    mqtt_password_hash,
    secret_decrypt,
    secret_encrypt,
)
from .metrics import READINGS, READINGS_REJECTED, RULE_ERRORS, RULE_FIRINGS, RULES_SKIPPED
from .models import RoomBooking, Rule, RuleFiring, RuleState, Sensor, SensorReading
from .rules import RuleSpec, Timer, timer_after_reading
from .schemas import PRIMARY_FIELD, READING_SCHEMAS, reading_field, reading_problems
from .serializers import RuleFiredOut

logger = logging.getLogger(__name__)

SENSORS_GROUP = "iot.sensors"  # the sensors page listens here (filtered per member by the consumer)
RETRY_BROKEN_RULE_SECONDS = 30


# --- sensors ---

def _clean_sensor(sensor: Sensor) -> None:
    if sensor.mqtt_topic:
        if any(ch in sensor.mqtt_topic for ch in "+#") or sensor.mqtt_topic.startswith("$"):
            raise ValidationError("mqtt_topic must be a plain topic (no wildcards, not $SYS)")
    sensor.full_clean(exclude=["mqtt_password_hash", "webhook_secret_encrypted"])


def sensor_create(*, room: Room | None, kind: str, name: str, device_id: str, mqtt_topic: str = "",
                  enabled: bool = True) -> tuple[Sensor, DeviceCredentials]:
    """Register a sensor; the returned credentials are the only time its secrets are readable."""
    creds = device_credentials_new(device_id)
    sensor = Sensor(
        room=room, kind=kind, name=name, device_id=device_id, mqtt_topic=mqtt_topic, enabled=enabled,
        mqtt_username=creds.mqtt_username, mqtt_password_hash=mqtt_password_hash(creds.mqtt_password),
        webhook_secret_encrypted=secret_encrypt(creds.webhook_secret),
    )
    _clean_sensor(sensor)
    sensor.save()
    return sensor, creds


def _locked_update(instance, fields: dict, check):
    """Re-read `instance` under a row lock, apply `fields`, validate with `check`, save; inside the
    caller's transaction, so two admins editing at once cannot interleave."""
    instance = type(instance).objects.select_for_update().get(pk=instance.pk)
    for key, value in fields.items():
        setattr(instance, key, value)
    check(instance)
    instance.save()
    return instance


def sensor_update(*, sensor: Sensor, **fields) -> Sensor:
    allowed = {"room", "name", "mqtt_topic", "enabled"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"cannot change {', '.join(sorted(unknown))}")
    with transaction.atomic():
        return _locked_update(sensor, fields, _clean_sensor)


def sensor_credentials_rotate(*, sensor: Sensor) -> DeviceCredentials:
    """New MQTT password and webhook secret; the old ones stop working at once."""
    creds = device_credentials_new(sensor.device_id)
    Sensor.objects.filter(pk=sensor.pk).update(
        mqtt_username=creds.mqtt_username,
        mqtt_password_hash=mqtt_password_hash(creds.mqtt_password),
        webhook_secret_encrypted=secret_encrypt(creds.webhook_secret),
        credentials_rotated_at=timezone.now(),
    )
    logger.info("credentials rotated for sensor %s", sensor.device_id)
    return creds


def sensor_delete(*, sensor: Sensor) -> None:
    sensor.delete()


# --- readings ---

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


# --- webhooks ---

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
    if not timestamp.isdigit() or len(timestamp) > 12:
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


# --- rules ---

_OPS_NEEDING_LIST = {"in", "not_in"}
_OPS_NEEDING_NUMBER = {"gt", "ge", "lt", "le"}


def _check_condition(kind: str, field: str, op: str, value, label: str) -> list[str]:
    problems = []
    if field not in READING_SCHEMAS.get(kind, {}).get("properties", {}) or field in ("id", "measured_at"):
        problems.append(f"{label}: {kind} sensors have no field {field!r}")
    if op in _OPS_NEEDING_LIST and not (isinstance(value, list) and value):
        problems.append(f"{label}: {op} needs a non-empty list of values")
    if op in _OPS_NEEDING_NUMBER and (not isinstance(value, int | float) or isinstance(value, bool)):
        problems.append(f"{label}: {op} needs a number")
    if op == "over_capacity" and (kind != Sensor.Kind.OCCUPANCY or field != "count"):
        problems.append(f"{label}: over_capacity applies to occupancy count only")
    return problems


def rule_check(rule: Rule) -> None:
    rule.full_clean()
    problems = _check_condition(rule.sensor_kind, rule.field, rule.op, rule.value, "condition")
    if rule.clear_op:
        problems += _check_condition(rule.sensor_kind, rule.field, rule.clear_op, rule.clear_value, "clear condition")
    if rule.scope == Rule.Scope.SENSOR:
        if rule.sensor is None:
            problems.append("a sensor rule needs a sensor")
        elif rule.sensor.kind != rule.sensor_kind:
            problems.append(f"sensor {rule.sensor.device_id} is a {rule.sensor.kind} sensor, not {rule.sensor_kind}")
    if rule.scope == Rule.Scope.ROOM and rule.room is None:
        problems.append("a room rule needs a room")
    if rule.action == Rule.Action.SUGGEST_ROOM and rule.sensor_kind != Sensor.Kind.OCCUPANCY:
        problems.append("suggesting a free room needs an occupancy rule")
    if problems:
        raise ValidationError(problems)


def rule_create(**fields) -> Rule:
    fields.setdefault("field", PRIMARY_FIELD.get(fields.get("sensor_kind", ""), ""))
    rule = Rule(**fields)
    rule_check(rule)
    rule.save()
    return rule


def rule_update(*, rule: Rule, **fields) -> Rule:
    with transaction.atomic():
        rule = _locked_update(rule, fields, rule_check)
        if not rule.enabled:  # a disabled rule forgets its timers; re-enabling starts afresh
            RuleState.objects.filter(rule=rule).delete()
    return rule


def rule_delete(*, rule: Rule) -> None:
    rule.delete()


BUILTIN_RULES = [
    {
        "builtin_key": "projector-failure",
        "name": "Projector offline or failing",
        "scope": Rule.Scope.KIND, "sensor_kind": Sensor.Kind.PROJECTOR, "field": "state",
        "op": "in", "value": ["offline", "error"], "for_seconds": 120,
        "clear_op": "in", "clear_value": ["on", "off"], "clear_for_seconds": 120,
        "action": Rule.Action.FACILITIES_TICKET, "severity": "high",
    },
    {
        "builtin_key": "booked-room-empty",
        "name": "Booked room empty for 10 minutes",
        "scope": Rule.Scope.KIND, "sensor_kind": Sensor.Kind.OCCUPANCY, "field": "count",
        "op": "eq", "value": 0, "for_seconds": 600,
        "clear_op": "gt", "clear_value": 0, "clear_for_seconds": 60,
        "action": Rule.Action.SUGGEST_ROOM, "severity": "low",
    },
    {
        "builtin_key": "booked-room-over-capacity",
        "name": "Booked room over capacity",
        "scope": Rule.Scope.KIND, "sensor_kind": Sensor.Kind.OCCUPANCY, "field": "count",
        "op": "over_capacity", "value": None, "for_seconds": 60,
        "clear_op": "", "clear_value": None, "clear_for_seconds": 120,
        "action": Rule.Action.SUGGEST_ROOM, "severity": "low",
    },
]


def builtin_rules_ensure() -> list[Rule]:
    """The rules every office starts with; existing ones (possibly edited by an admin) are kept."""
    rules = []
    for spec in BUILTIN_RULES:
        rule, _ = Rule.objects.get_or_create(builtin_key=spec["builtin_key"], defaults=dict(spec))
        rules.append(rule)
    return rules


def _rules_apply_reading(sensor: Sensor, value: dict, now: datetime) -> list[int]:
    """Move every matching rule's timer for this sensor; ids of states already due."""
    capacity = sensor.room.capacity if sensor.room_id else None
    due: list[int] = []
    for rule in selectors.rules_for_sensor(sensor):
        spec = RuleSpec.of(rule)
        holds, clears = spec.matches(value, capacity)
        state = RuleState.objects.select_for_update().filter(rule=rule, sensor=sensor).first()
        if state is None:
            if not holds:
                continue  # idle rows are not worth keeping
            state, _ = RuleState.objects.get_or_create(rule=rule, sensor=sensor)
            state = RuleState.objects.select_for_update().get(pk=state.pk)
        before = Timer(state.phase, state.condition_since, state.fired_at, state.cleared_since, state.due_at)
        after = timer_after_reading(before, holds=holds, clears=clears, now=now, spec=spec)
        if after != before:
            state.phase, state.condition_since, state.fired_at = after.phase, after.condition_since, after.fired_at
            state.cleared_since, state.due_at = after.cleared_since, after.due_at
            state.save()
        if state.due_at is not None and state.due_at <= now:
            due.append(state.id)
    return due


def rules_fire_due(*, limit: int = 500, now: datetime | None = None) -> int:
    """What the beat task runs: advance every rule timer that has run out. Returns episodes fired.

    `now` is the evaluator's clock (tests replay a timeline with it); by default the real time."""
    at = now or timezone.now()
    ids = list(RuleState.objects.filter(due_at__lte=at).order_by("due_at").values_list("id", flat=True)[:limit])
    return rule_states_fire(ids, now=now)


def rule_states_fire(state_ids: list[int], *, now: datetime | None = None) -> int:
    """Advance these states if due; each in its own transaction, claimed with SKIP LOCKED so two
    evaluators never act on one state. A failing rule is retried later, not in a tight loop."""
    fired = 0
    clock = now
    for state_id in state_ids:
        now = clock or timezone.now()
        try:
            with transaction.atomic():
                state = (
                    RuleState.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("rule", "rule__room", "sensor", "sensor__room")
                    .filter(pk=state_id, due_at__lte=now)
                    .first()
                )
                if state is not None and _state_advance(state, now):
                    fired += 1
        except Exception:
            RULE_ERRORS.inc()
            logger.exception("rule state %s could not be advanced; retrying in %ss", state_id,
                             RETRY_BROKEN_RULE_SECONDS)
            RuleState.objects.filter(pk=state_id).update(
                due_at=timezone.now() + timedelta(seconds=RETRY_BROKEN_RULE_SECONDS))
    return fired


def _state_reset(state: RuleState) -> None:
    state.phase = RuleState.Phase.IDLE
    state.condition_since = state.fired_at = state.cleared_since = state.due_at = None


def _target_problem(rule: Rule, sensor: Sensor) -> str | None:
    if not rule.enabled:
        return "rule_disabled"
    if not sensor.enabled:
        return "sensor_disabled"
    if rule.scope == Rule.Scope.SENSOR and rule.sensor_id != sensor.id:
        return "sensor_deleted"
    if rule.scope == Rule.Scope.ROOM and rule.room_id is None:
        return "room_deleted"
    if rule.scope == Rule.Scope.ROOM and rule.room_id != sensor.room_id:
        return "sensor_moved"
    if rule.action != Rule.Action.NOTHING and sensor.room_id is None:
        return "room_deleted"
    return None


def _state_advance(state: RuleState, now: datetime) -> bool:
    rule, sensor = state.rule, state.sensor
    fired = False
    if state.phase == RuleState.Phase.PENDING:
        problem = _target_problem(rule, sensor)
        if problem is not None:
            RULES_SKIPPED.labels(problem).inc()
            logger.warning("rule %s (%s) skipped for sensor %s: %s", rule.id, rule.name, sensor.device_id,
                           problem.replace("_", " "), extra={"reason": problem})
            _state_reset(state)
        else:
            episode_start = state.condition_since
            if rule.action == Rule.Action.SUGGEST_ROOM:
                episode_start, wait_until = _booking_window(rule, sensor, state, now)
            else:
                wait_until = None
            if episode_start is None or wait_until is not None:
                state.due_at = wait_until  # None: parked until the next reading
            else:
                _fire(rule, sensor, episode_start, now)
                state.phase, state.fired_at, state.due_at = RuleState.Phase.FIRED, now, None
                fired = True
    elif state.phase == RuleState.Phase.CLEARING:
        _state_reset(state)
    else:
        state.due_at = None
    state.save()
    return fired


def _booking_window(rule: Rule, sensor: Sensor, state: RuleState, now: datetime):
    """(episode start, None) when a booked meeting is affected now; (None, when to look again) else.

    An empty room only counts from the booking's start: empty since 8:00 and booked at 9:00 fires
    at 9:10, and each booking is its own episode."""
    booking = selectors.booking_active(sensor.room_id, now)
    wait = timedelta(seconds=rule.for_seconds)
    if booking is None:
        upcoming = selectors.booking_next(sensor.room_id, now)
        return None, (upcoming.start + wait if upcoming else None)
    since = max(state.condition_since, booking.start)
    if now < since + wait:
        return None, since + wait
    return since, None


def _describe_value(sensor: Sensor, field: str) -> str:
    actual = reading_field(sensor.kind, sensor.last_state or {}, field)
    if sensor.kind == Sensor.Kind.TEMPERATURE:
        return f"{actual} °C"
    return str(actual)


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds} s"


def _fire(rule: Rule, sensor: Sensor, episode_start: datetime, now: datetime) -> RuleFiring:
    """Record the episode and act once (ticket, chat message, suggestion) in the caller's transaction."""
    room = sensor.room
    dedupe_key = f"iot:rule:{rule.id}:sensor:{sensor.id}:{episode_start.isoformat()}"
    firing, created = RuleFiring.objects.get_or_create(
        rule=rule, sensor=sensor, episode_start=episode_start, defaults={"dedupe_key": dedupe_key, "room": room},
    )
    if not created:
        return firing
    client_id = f"iot-{rule.id}-{sensor.id}-{int(episode_start.timestamp() * 1000)}"
    if rule.action == Rule.Action.FACILITIES_TICKET:
        state = _describe_value(sensor, rule.field)
        title = f"{sensor.name} in {room.name}: {rule.field} {state}"
        detail = (f"Rule “{rule.name}”: {sensor.name} ({sensor.device_id}) reported {rule.field} {state} "
                  f"since {episode_start:%H:%M:%S} UTC (held for {_minutes(rule.for_seconds)}).")
        firing.ticket_id = actions.facilities_ticket_open(
            room=room, severity=rule.severity, title=title, detail=detail, dedupe_key=dedupe_key,
            actor_label=f"sensor rule: {rule.name}",
        )
        ticket = f" Facilities have a ticket (#{firing.ticket_id})." if firing.ticket_id else " Facilities were told."
        body = (f"{sensor.name}: {rule.field} has been {state} for {_minutes(rule.for_seconds)} or more "
                f"(rule “{rule.name}”).{ticket}")
        firing.chat_message_id = actions.room_chat_post(room=room, body=body, client_id=client_id)
        firing.outcome = "ticket opened and room told"
    elif rule.action == Rule.Action.SUGGEST_ROOM:
        _suggest_room(firing, rule, sensor, room, now, client_id)
    else:
        firing.outcome = "recorded"
    firing.save()
    transaction.on_commit(lambda: RULE_FIRINGS.labels(rule.action).inc())
    send_event_on_commit(SENSORS_GROUP, {"type": "iot.firing", **RuleFiredOut(firing).data})
    return firing


def _suggest_room(firing: RuleFiring, rule: Rule, sensor: Sensor, room: Room, now: datetime, client_id: str) -> None:
    booking = selectors.booking_active(room.id, now)
    count = reading_field(sensor.kind, sensor.last_state or {}, "count") or 0
    over = rule.op == "over_capacity"
    until = booking.end if booking else now + timedelta(hours=1)
    free = selectors.free_room_for(room, needed=count if over else 1, start=now, end=until)
    meeting = f"“{booking.title}”" if booking else "the booked meeting"
    if over:
        body = f"{room.name} holds {room.capacity} but {count} people are here for {meeting}."
    else:
        body = f"{room.name} is booked for {meeting} but nobody has been here for {_minutes(rule.for_seconds)}."
    if free is not None:
        body += f" {free.name} is free until {until:%H:%M} UTC" + (f" (capacity {free.capacity})." if free.capacity else ".")
        firing.suggested_room = free
        firing.outcome = f"suggested {free.name}"
    else:
        body += " No suitable room is free right now."
        firing.outcome = "no free room to suggest"
    firing.chat_message_id = actions.room_chat_post(room=room, body=body, client_id=client_id)


# --- bookings ---

def booking_create(*, user, room: Room, title: str, start: datetime, end: datetime) -> RoomBooking:
    if not user.is_staff and not user_can_enter_room(user, room):
        raise selectors.NotFound("no such room")
    booking = RoomBooking(room=room, title=title.strip(), organizer=user, start=start, end=end)
    booking.full_clean()
    if end <= start:
        raise ValidationError("a booking must end after it starts")
    with transaction.atomic():
        Room.objects.select_for_update().filter(pk=room.pk).first()  # one booking writer per room at a time
        clash = RoomBooking.objects.filter(room=room, start__lt=end, end__gt=start).first()
        if clash is not None:
            raise ValidationError(f"{room.name} is already booked for “{clash.title}” at that time")
        booking.save()
    return booking


def booking_delete(*, user, booking: RoomBooking) -> None:
    if not (user.is_staff or booking.organizer_id == user.id):
        raise selectors.NotFound("no such booking")
    booking.delete()
