"""Transcription's part of the outcome dashboard (rooms/outcomes.py): hours spent in meetings."""

from __future__ import annotations

from django.db.models import F
from django.db.models.functions import Coalesce, Now

from rooms.outcomes import OutcomeScope, figure, per_day, section, series

from .models import Meeting


def meeting_hours_by_day(scope: OutcomeScope) -> dict:
    """Hours of meetings by the day they started (one still running counts until now)."""
    hours: dict = {}
    meetings = (Meeting.objects.filter(scope.rooms(), scope.during("started_at"))
                .annotate(length=Coalesce(F("ended_at"), Now()) - F("started_at"))
                .values_list("started_at", "length"))
    for started_at, length in meetings:
        day = scope.day_of(started_at)
        hours[day] = hours.get(day, 0.0) + max(length.total_seconds(), 0.0) / 3600
    return hours


def meeting_outcome_sections(scope: OutcomeScope) -> list[dict]:
    hours = meeting_hours_by_day(scope)
    count = Meeting.objects.filter(scope.rooms(), scope.during("started_at")).count()
    return [section(
        key="meetings", order=10, title="Meeting hours", unit="hours",
        series_list=[series("meeting_hours", "Meeting hours", [round(v, 4) for v in per_day(scope, hours)])],
        figures=[figure("meeting_hours", "Hours in meetings", round(sum(hours.values()), 4), "hours"),
                 figure("meetings", "Meetings", count, "count")],
    )]
