"""The Celery app; configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "office.settings")

app = Celery("office")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {
    "purge-expired-sessions": {"task": "office.tasks.purge_expired_sessions", "schedule": 3600.0},
    "assistant-tick": {"task": "assistant.tick", "schedule": 15.0},
    # what is past each room's retention goes, with the knowledge made from it (rooms/personal_data.py)
    "retention-sweep": {"task": "rooms.sweep_retention", "schedule": 24 * 3600.0},
}
