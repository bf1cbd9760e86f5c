"""The work kernel's periodic tasks, kept in django-celery-beat's database scheduler.

Written by `manage.py automation_schedules` (idempotent: re-running updates the same rows), never
at import or in AppConfig.ready(), which must not touch the database.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask


def _every(seconds: int) -> IntervalSchedule:
    schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
    return schedule


def _daily_at(hour: int) -> CrontabSchedule:
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour=str(hour), day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    return schedule


def periodic_tasks_ensure() -> list[str]:
    """Create or update the kernel's beat entries; returns their names."""
    wanted = {
        "automation: send due reminders": ("automation.reminders_send_due",
                                            {"interval": _every(settings.OFFICE_TASK_REMINDER_CHECK_SECONDS)}),
        "automation: daily digests": ("automation.digests_send_daily",
                                      {"crontab": _daily_at(settings.OFFICE_DIGEST_HOUR)}),
        "automation: import calendar feeds": ("automation.calendars_import",
                                              {"interval": _every(settings.OFFICE_CALENDAR_IMPORT_MINUTES * 60)}),
    }
    with transaction.atomic():
        for name, (task, schedule) in wanted.items():
            defaults = {"task": task, "enabled": True, "interval": None, "crontab": None, **schedule}
            PeriodicTask.objects.update_or_create(name=name, defaults=defaults)
    return list(wanted)
