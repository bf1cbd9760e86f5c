"""The outcome dashboard's frame (docs/adr/0020): whose figures over which days, and the one output
shape the page and `GET /api/outcomes/` share.

Rooms knows who may read which room, so it builds the `OutcomeScope` and sends
`signals.outcomes_requested`; every stage answers with sections of figures on its own tables
(`<app>/outcomes.py`). Rooms never learns what the stages store, and no stage reads another's
tables except through that stage's selectors.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Aggregate, FloatField, Q
from django.utils import timezone
from rest_framework import serializers

from . import selectors, signals
from .models import Room

RANGE_DAYS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass(frozen=True)
class OutcomeScope:
    """Days `since`..`until` (both included, in the site's time zone) over `room_ids`; None means
    every room, rows with no room included (the admins' whole-office view)."""

    room_ids: tuple[int, ...] | None
    since: dt.date
    until: dt.date

    @property
    def days(self) -> list[dt.date]:
        return [self.since + dt.timedelta(days=n) for n in range((self.until - self.since).days + 1)]

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.since, dt.time.min, tzinfo=timezone.get_current_timezone())

    @property
    def end(self) -> dt.datetime:
        return dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time.min,
                                   tzinfo=timezone.get_current_timezone())

    def rooms(self, field: str = "room") -> Q:
        """Rows in the scope's rooms, by the model's room field (`meeting__room` and the like)."""
        return Q() if self.room_ids is None else Q(**{f"{field}__in": self.room_ids})

    def during(self, field: str) -> Q:
        """Rows whose `field` (a timestamp) falls on one of the scope's days."""
        return Q(**{f"{field}__gte": self.start, f"{field}__lt": self.end})

    def day_of(self, moment: dt.datetime) -> dt.date:
        return timezone.localtime(moment).date()


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont: the interpolated `fraction` percentile (0.5: the median)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def per_day(scope: OutcomeScope, values: dict[dt.date, float | int | None], *, empty=0) -> list:
    """One value per day of the scope, `empty` where a day has none."""
    return [values.get(day, empty) for day in scope.days]


def median_per_day(scope: OutcomeScope, pairs: Iterable[tuple[dt.date, float]]) -> tuple[list, float | None]:
    """(the median of each day's values, None on days without any; the median over the whole range)."""
    by_day: dict[dt.date, list[float]] = {}
    for day, value in pairs:
        by_day.setdefault(day, []).append(value)
    everything = [value for values in by_day.values() for value in values]
    return ([statistics.median(by_day[day]) if day in by_day else None for day in scope.days],
            statistics.median(everything) if everything else None)


def series(key: str, label: str, values: list) -> dict:
    return {"key": key, "label": label, "values": values}


def figure(key: str, label: str, value, unit: str = "") -> dict:
    return {"key": key, "label": label, "value": value, "unit": unit}


def section(*, key: str, order: int, title: str, unit: str, series_list: list[dict], figures: list[dict],
            note: str = "", table: dict | None = None) -> dict:
    """One chart (a line per series over the scope's days) with its range-wide figures; `unit` says how
    to read the values: count, hours, seconds, tokens, ms, cost, cost per task."""
    return {"key": key, "order": order, "title": title, "unit": unit, "series": series_list, "figures": figures,
            "note": note, "table": table}


# --- who may see which figures ---

def outcome_rooms_for(user):
    """The rooms whose figures `user` may open: every room for admins, the readable ones otherwise."""
    rooms = Room.objects.all() if user.is_staff else selectors.rooms_visible_to(user)
    return rooms.order_by("name", "id")


def outcome_scope_for(*, user, room_id: int | None, since: dt.date | None = None, until: dt.date | None = None,
                      days: int | None = None) -> tuple[OutcomeScope, Room | None]:
    """The scope `user` asked for. A member names a room they may read (selectors.NotFound otherwise,
    the same answer as for a room that does not exist); an admin may leave it out for every room."""
    if room_id is None:
        if not user.is_staff:
            raise selectors.NotFound("no such room")
        room = None
    else:
        room = selectors.room_get_administrable(user=user, room_id=room_id)
    until = until or timezone.localdate()
    if since is None:
        since = until - dt.timedelta(days=(days or DEFAULT_DAYS) - 1)
    if since > until:
        raise ValidationError("since must not be after until")
    if (until - since).days + 1 > MAX_DAYS:
        raise ValidationError(f"the range is at most {MAX_DAYS} days")
    return OutcomeScope(room_ids=None if room is None else (room.pk,), since=since, until=until), room


def outcomes_collect(scope: OutcomeScope) -> list[dict]:
    """Every stage's sections for `scope`, in pipeline order."""
    sections: list[dict] = []
    for _receiver, answer in signals.outcomes_requested.send(sender=None, scope=scope):
        sections.extend(answer or [])
    return sorted(sections, key=lambda s: (s["order"], s["key"]))


def outcomes_for(*, user, room_id: int | None, since: dt.date | None = None, until: dt.date | None = None,
                 days: int | None = None) -> dict:
    """The dashboard for `user`: the scope, the rooms they may pick, and every stage's sections."""
    scope, room = outcome_scope_for(user=user, room_id=room_id, since=since, until=until, days=days)
    return {
        "room": None if room is None else {"id": room.pk, "name": room.name},
        "rooms": [{"id": r.pk, "name": r.name} for r in outcome_rooms_for(user)],
        "since": scope.since,
        "until": scope.until,
        "days": scope.days,
        "sections": outcomes_collect(scope),
    }


# --- the one output shape ---

class OutcomeRoomOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class OutcomeSeriesOut(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    values = serializers.ListField(child=serializers.FloatField(allow_null=True),
                                   help_text="one per day of `days`; null: nothing to measure that day, or unknown")


class OutcomeFigureOut(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    value = serializers.FloatField(allow_null=True, help_text="over the whole range; null: none, or unknown")
    unit = serializers.CharField(allow_blank=True)


class OutcomeTableOut(serializers.Serializer):
    columns = serializers.ListField(child=serializers.DictField(child=serializers.CharField()),
                                    help_text='[{"key", "label", "unit"}]')
    rows = serializers.ListField(child=serializers.DictField(allow_null=True), help_text="{column key: value}")


class OutcomeSectionOut(serializers.Serializer):
    key = serializers.CharField()
    order = serializers.IntegerField()
    title = serializers.CharField()
    unit = serializers.CharField(help_text="count, hours, seconds, tokens, ms, cost")
    series = OutcomeSeriesOut(many=True)
    figures = OutcomeFigureOut(many=True)
    note = serializers.CharField(allow_blank=True)
    table = OutcomeTableOut(allow_null=True)


class OutcomesOut(serializers.Serializer):
    room = OutcomeRoomOut(allow_null=True, help_text="null: every room (admins)")
    rooms = OutcomeRoomOut(many=True, help_text="the rooms this person may open figures for")
    since = serializers.DateField()
    until = serializers.DateField()
    days = serializers.ListField(child=serializers.DateField())
    sections = OutcomeSectionOut(many=True)
