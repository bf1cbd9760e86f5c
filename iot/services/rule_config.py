"""Rule definitions: validation, create, update, delete, and the built-in rules every office starts with."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import Rule, RuleState, Sensor
from ..schemas import PRIMARY_FIELD, READING_SCHEMAS
from .common import _locked_update

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
