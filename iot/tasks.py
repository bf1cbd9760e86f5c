"""Celery entries: rule timers (beat runs them every OFFICE_IOT_RULE_TICK_SECONDS) and the agendas of
meetings starting soon (every minute, office/celery.py)."""

from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def rules_fire_due() -> int:
    """Fire every rule whose timer ran out (idempotent: an episode acts once however often this runs)."""
    return services.rules_fire_due()


@shared_task(name="iot.agendas_post_due", ignore_result=True)
def agendas_post_due() -> int:
    """Draft and post the agendas of meetings starting soon (idempotent: once per booking)."""
    return services.agendas_post_due()
