"""The Celery app; configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery
from celery.signals import (
    beat_init,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "office.settings")

app = Celery("office")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {
    "purge-expired-sessions": {"task": "office.tasks.purge_expired_sessions", "schedule": 3600.0},
    "assistant-tick": {"task": "assistant.tick", "schedule": 15.0},
    # what is past each room's retention goes, with the knowledge made from it (rooms/personal_data.py)
    "retention-sweep": {"task": "rooms.sweep_retention", "schedule": 24 * 3600.0},
    # topics across meetings: new meetings joined to topics, scopes re-clustered when due (assistant/topics.py)
    "topics-refresh": {"task": "assistant.topics_refresh", "schedule": 3600.0},
    # agendas of booked meetings starting within OFFICE_AGENDA_LEAD_MINUTES, posted once (iot/services/agendas.py)
    "meeting-agendas": {"task": "iot.agendas_post_due", "schedule": 60.0},
    # knocks on private rooms lapse when unanswered, even if the knocker's page is gone (rooms/services.py)
    "knocks-lapse": {"task": "rooms.knocks_lapse_overdue", "schedule": 15.0},
}


# --- logging and metrics of workers and beat (office/process_metrics.py) ---
# Django's app registry is not ready when this module loads: the hooks import what they need late.

@setup_logging.connect
def logging_through_django(**_kwargs) -> None:
    """Celery's own log lines through settings.LOGGING (JSON lines with request ids, LOG_LEVEL), not
    Celery's formatter: connecting this signal is what stops Celery from installing its own."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@worker_init.connect
def worker_metrics(**_kwargs) -> None:
    from office.process_metrics import clear_multiprocess_dir, serve_process_metrics

    clear_multiprocess_dir()
    serve_process_metrics()


@beat_init.connect
def beat_metrics(**_kwargs) -> None:
    from office.process_metrics import scrape_time_collectors, serve_process_metrics

    serve_process_metrics(collectors=scrape_time_collectors())


@task_prerun.connect
def task_metrics_start(task_id=None, **_kwargs) -> None:
    from office.process_metrics import task_started

    task_started(task_id)


@task_postrun.connect
def task_metrics_finish(task_id=None, task=None, state=None, **_kwargs) -> None:
    from office.process_metrics import task_finished

    task_finished(task_id, getattr(task, "name", "unknown"), state)


@worker_process_shutdown.connect
def pool_child_metrics(pid=None, **_kwargs) -> None:
    from office.process_metrics import pool_child_exited

    pool_child_exited(pid)
