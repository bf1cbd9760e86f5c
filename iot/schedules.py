"""The rule timer tick in django-celery-beat's database scheduler.

Written by `manage.py iot_schedules` and at the start of `manage.py iot_ingester` (idempotent:
the same row is updated), never at import time.
"""

from __future__ import annotations

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

TICK_TASK_NAME = "iot: fire due rules"


def periodic_tasks_ensure() -> list[str]:
    every, _ = IntervalSchedule.objects.get_or_create(every=settings.OFFICE_IOT_RULE_TICK_SECONDS,
                                                      period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name=TICK_TASK_NAME,
        defaults={"task": "iot.tasks.rules_fire_due", "interval": every, "crontab": None, "enabled": True,
                  # A tick that waited longer than a tick is stale: the next one does the same work.
                  "expire_seconds": settings.OFFICE_IOT_RULE_TICK_SECONDS * 2},
    )
    return [TICK_TASK_NAME]
