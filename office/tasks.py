"""Housekeeping tasks run by Celery beat (queueing work by name: `office.queueing`)."""

import logging

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task
def purge_expired_sessions() -> int:
    """Expired sessions are useless and hold personal data: remove them hourly."""
    deleted, _ = Session.objects.filter(expire_date__lte=timezone.now()).delete()
    return deleted
