"""Rooms' background work (Celery beat; tasks call one function)."""

from __future__ import annotations

from celery import shared_task

from . import personal_data, services


@shared_task(name="rooms.sweep_retention")
def sweep_retention() -> dict:
    """Daily: delete what is past its room's retention, in every stage (rooms/personal_data.py)."""
    return personal_data.retention_sweep()


@shared_task(name="rooms.knocks_lapse_overdue")
def knocks_lapse_overdue() -> int:
    """Every 15 s: knocks past their answer time lapse even when the knocker's page is gone."""
    return services.room_knocks_lapse_overdue()
