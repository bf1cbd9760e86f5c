"""Rooms' background work (Celery beat; tasks call one function)."""

from __future__ import annotations

from celery import shared_task

from . import personal_data


@shared_task(name="rooms.sweep_retention")
def sweep_retention() -> dict:
    """Daily: delete what is past its room's retention, in every stage (rooms/personal_data.py)."""
    return personal_data.retention_sweep()
