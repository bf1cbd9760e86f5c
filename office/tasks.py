"""Housekeeping tasks run by Celery beat, and how work is queued once a transaction commits."""

import logging

from celery import shared_task
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args) -> None:
    """Queue `task(*args)` once the current transaction commits (a worker must see the rows). A broker
    that is down is logged, not raised: the caller's periodic sweep picks the work up later."""

    def send():
        try:
            task.delay(*args)
        except Exception:
            logger.warning("could not queue %s%r; the periodic sweep will pick it up", task.name, args)

    transaction.on_commit(send)


@shared_task
def purge_expired_sessions() -> int:
    """Expired sessions are useless and hold personal data: remove them hourly."""
    deleted, _ = Session.objects.filter(expire_date__lte=timezone.now()).delete()
    return deleted
