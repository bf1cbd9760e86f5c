"""Indexing is queued as soon as a segment, a room message or a ticket change commits (the tick
catches any miss)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from automation.models import Ticket
from rooms.models import ChatMessage
from transcription.models import TranscriptSegment

logger = logging.getLogger(__name__)


def _enqueue(task, ids: list[int]) -> None:
    def send():
        try:
            task.delay(ids)
        except Exception:  # broker down: the periodic sweep indexes it later
            logger.warning("could not queue %s for %s; the sweep will pick it up", task.name, ids)

    transaction.on_commit(send)


@receiver(post_save, sender=TranscriptSegment, dispatch_uid="assistant-index-segment")
def segment_saved(sender, instance, created, **kwargs):
    if created:
        from .tasks import index_segments

        _enqueue(index_segments, [instance.pk])


@receiver(post_save, sender=ChatMessage, dispatch_uid="assistant-index-chat")
def chat_message_saved(sender, instance, created, **kwargs):
    if created:
        from .tasks import index_chat_messages

        _enqueue(index_chat_messages, [instance.pk])


@receiver(post_save, sender=Ticket, dispatch_uid="assistant-index-ticket")
def ticket_saved(sender, instance, **kwargs):
    from .tasks import index_tickets

    _enqueue(index_tickets, [instance.pk])
