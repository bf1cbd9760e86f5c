"""Celery entry points run by beat: thin adapters over the services (no logic here)."""

from __future__ import annotations

from celery import shared_task

from . import knowledge, services


@shared_task(name="automation.reminders_send_due")
def reminders_send_due() -> int:
    return services.reminders_send_due()


@shared_task(name="automation.digests_send_daily")
def digests_send_daily() -> int:
    return services.digests_send_daily()


@shared_task(name="automation.calendars_import")
def calendars_import() -> dict:
    return services.calendar_import_all()


@shared_task(name="automation.index_tickets")
def index_tickets(ticket_ids: list[int]) -> int:
    return knowledge.tickets_index(ticket_ids)
