"""Queueing work by task name, so a service never imports the task module that calls it back.

Services decide that work must happen; tasks (Celery adapters) call services. Naming the task
instead of importing it keeps that one-way (`make test` checks "services do not import tasks").
"""

from __future__ import annotations

import logging
import threading

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)
_discovering = threading.Lock()


def task_by_name(name: str):
    """The registered task called `name`; the apps' task modules are imported on first need."""
    tasks = current_app.tasks
    if name not in tasks:
        # One thread at a time: under Daphne concurrent first lookups saw half-discovered modules and
        # lost their enqueues ("no task named ...").
        with _discovering:
            if name not in tasks:
                current_app.loader.import_default_modules()  # autodiscovery: every app's tasks module
    try:
        return tasks[name]
    except KeyError:
        raise LookupError(f"no task named {name!r} is registered") from None


def task_send(name: str, *args) -> None:
    """Queue `name(*args)` now (raises if the broker is down: the caller decides what that means)."""
    task_by_name(name).apply_async(args=list(args))


def enqueue_on_commit(name: str, *args) -> None:
    """Queue `name(*args)` once the current transaction commits (a worker must see the rows). A broker
    that is down is logged, not raised: the caller's periodic sweep picks the work up later."""

    def send():
        try:
            task_send(name, *args)
        except Exception:
            logger.warning("could not queue %s%r; the periodic sweep will pick it up", name, args)

    transaction.on_commit(send)
