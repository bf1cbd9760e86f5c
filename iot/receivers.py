"""Signal receivers: thin adapters that call one module (connected in `IotConfig.ready()`)."""

from __future__ import annotations

from . import outcomes, personal_data


def sensor_outcomes(sender, *, scope, **kwargs) -> list[dict]:
    """The outcome dashboard's sensor event → ticket → resolved times (rooms/outcomes.py)."""
    return outcomes.sensor_outcome_sections(scope)


def calendar_records_expire(sender, *, now, **kwargs) -> dict:
    """The retention sweep: agendas past their room's transcript retention."""
    return personal_data.calendar_records_expire(now=now)


def person_calendar_erase(sender, *, user, reassign_to=None, **kwargs) -> dict:
    """Inside the erasure's transaction: bookings to the successor, agenda edits forgotten."""
    return personal_data.person_calendar_erase(user=user, reassign_to=reassign_to)


def person_calendar_export(sender, *, user, **kwargs) -> dict:
    """Their bookings and the agendas they last edited, for their export."""
    return personal_data.person_calendar_export(user=user)
