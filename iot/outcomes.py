"""The sensors' part of the outcome dashboard (rooms/outcomes.py): from a sensor event to the
facilities ticket it opened, and on to its resolution. Tickets are automation's; their times come
through `automation.outcomes.ticket_times`.

The event is the episode's start (`RuleFiring.episode_start`, when the condition began to hold), so
event → ticket includes the rule's own waiting time (`for_seconds`). A firing that joined a ticket
already open (the same dedupe key) did not open it and is not counted.
"""

from __future__ import annotations

import datetime as dt

from automation import outcomes as work_outcomes
from rooms.outcomes import OutcomeScope, figure, median_per_day, section, series

from .models import RuleFiring


def sensor_ticket_times(scope: OutcomeScope) -> list[tuple[dt.datetime, dt.datetime, dt.datetime | None]]:
    """(event at, ticket opened at, ticket resolved at) per ticket a sensor event in the scope's rooms
    opened; the earliest event that led to each ticket."""
    firings = (RuleFiring.objects.filter(scope.rooms(), ticket_id__isnull=False, episode_start__lt=scope.end)
               .values_list("ticket_id", "episode_start"))
    first_event: dict[int, dt.datetime] = {}
    for ticket_id, episode_start in firings:
        if ticket_id not in first_event or episode_start < first_event[ticket_id]:
            first_event[ticket_id] = episode_start
    times = work_outcomes.ticket_times(first_event)
    return [(first_event[pk], opened, resolved) for pk, (opened, resolved) in sorted(times.items())
            if opened >= first_event[pk]]


def sensor_outcome_sections(scope: OutcomeScope) -> list[dict]:
    chains = sensor_ticket_times(scope)
    to_ticket = [(scope.day_of(opened), (opened - event).total_seconds()) for event, opened, _resolved in chains
                 if scope.start <= opened < scope.end]
    to_resolved = [(scope.day_of(resolved), (resolved - event).total_seconds()) for event, _opened, resolved in chains
                   if resolved is not None and scope.start <= resolved < scope.end]
    ticket_days, ticket_median = median_per_day(scope, to_ticket)
    resolved_days, resolved_median = median_per_day(scope, to_resolved)
    return [section(
        key="sensor_tickets", order=60, title="Sensor event → ticket → resolved", unit="seconds",
        series_list=[series("event_to_ticket_median", "Median event → ticket", ticket_days),
                     series("event_to_resolved_median", "Median event → resolved", resolved_days)],
        figures=[figure("event_to_ticket_median", "Median event → ticket", ticket_median, "seconds"),
                 figure("event_to_resolved_median", "Median event → resolved", resolved_median, "seconds"),
                 figure("sensor_tickets", "Tickets from sensors", len(to_ticket), "count")],
    )]
