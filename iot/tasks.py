"""Celery entry for rule timers: beat runs it every OFFICE_IOT_RULE_TICK_SECONDS."""

from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def rules_fire_due() -> int:
    """Fire every rule whose timer ran out (idempotent: an episode acts once however often this runs)."""
    return services.rules_fire_due()
