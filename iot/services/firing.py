"""Rule evaluation: readings move rule timers; a due episode fires once (ticket, chat, room suggestion)."""

# Rules fire in `rule_states_fire`, which the beat task runs every few seconds and a device message
# (MQTT or webhook) runs at once for timers it made due; a firing, its ticket and its chat message
# share one transaction and are keyed by the episode, so an episode acts exactly once.

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from office.events import send_event_on_commit
from rooms.models import Room

from .. import actions, selectors
from ..metrics import RULE_ERRORS, RULE_FIRINGS, RULES_SKIPPED
from ..models import Rule, RuleFiring, RuleState, Sensor
from ..rules import RuleSpec, Timer, timer_after_reading
from ..schemas import reading_field
from ..serializers import RuleFiredOut
from .common import SENSORS_GROUP

logger = logging.getLogger(__name__)

RETRY_BROKEN_RULE_SECONDS = 30


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
