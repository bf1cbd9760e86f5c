"""Rule conditions and the state machine a reading drives: pure functions, no database.

idle --condition--> pending (due = since + for) --due--> fired (the evaluator acts once)
fired --clear--> clearing (due = since + clear_for) --due--> idle;  clearing --not clear--> fired
pending --condition gone--> idle.   A flapping sensor keeps resetting `pending` (no ticket) and,
once fired, keeps returning to `fired` (no second ticket) until the clear condition has held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .schemas import reading_field

_NUMERIC = {"gt", "ge", "lt", "le"}


def condition_holds(op: str, expected, actual, *, capacity: int | None = None) -> bool:
    """Whether `actual op expected`; a missing or mistyped value never holds."""
    if actual is None:
        return False
    if op == "in":
        return isinstance(expected, list) and actual in expected
    if op == "not_in":
        return isinstance(expected, list) and actual not in expected
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op == "over_capacity":
        return capacity is not None and _number(actual) is not None and actual > capacity
    if op in _NUMERIC:
        a, e = _number(actual), _number(expected)
        if a is None or e is None:
            return False
        return {"gt": a > e, "ge": a >= e, "lt": a < e, "le": a <= e}[op]
    return False


def _number(value):
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class RuleSpec:
    kind: str
    field: str
    op: str
    value: object
    for_seconds: int
    clear_op: str
    clear_value: object
    clear_for_seconds: int

    @classmethod
    def of(cls, rule) -> RuleSpec:
        return cls(rule.sensor_kind, rule.field, rule.op, rule.value, rule.for_seconds, rule.clear_op,
                   rule.clear_value, rule.clear_for_seconds)

    def matches(self, value: dict, capacity: int | None) -> tuple[bool, bool]:
        """(condition holds, clear condition holds) for one reading."""
        actual = reading_field(self.kind, value, self.field)
        holds = condition_holds(self.op, self.value, actual, capacity=capacity)
        if self.clear_op:
            clears = condition_holds(self.clear_op, self.clear_value, actual, capacity=capacity)
        else:
            clears = not holds
        return holds, clears


@dataclass
class Timer:
    """The mutable part of a RuleState."""

    phase: str
    condition_since: datetime | None
    fired_at: datetime | None
    cleared_since: datetime | None
    due_at: datetime | None


def timer_after_reading(timer: Timer, *, holds: bool, clears: bool, now: datetime, spec: RuleSpec) -> Timer:
    t = Timer(timer.phase, timer.condition_since, timer.fired_at, timer.cleared_since, timer.due_at)
    if t.phase == "idle":
        if holds:
            t.phase, t.condition_since, t.due_at = "pending", now, now + timedelta(seconds=spec.for_seconds)
    elif t.phase == "pending":
        if not holds:
            t.phase, t.condition_since, t.due_at = "idle", None, None
        elif t.due_at is None:
            t.due_at = now  # parked (e.g. waiting for a booking): look again now
    elif t.phase == "fired":
        if clears:
            t.phase, t.cleared_since = "clearing", now
            t.due_at = now + timedelta(seconds=spec.clear_for_seconds)
    elif t.phase == "clearing":
        if not clears:
            t.phase, t.cleared_since, t.due_at = "fired", None, None
    return t
