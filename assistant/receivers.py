"""Indexing is queued as soon as a segment, a room message or a ticket change commits (the tick
catches any miss)."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from automation.models import Ticket
from office.tasks import enqueue_on_commit
from rooms.models import ChatMessage
from transcription.models import TranscriptSegment


@receiver(post_save, sender=TranscriptSegment, dispatch_uid="assistant-index-segment")
def segment_saved(sender, instance, created, **kwargs):
    if created:
        from .tasks import index_segments

        enqueue_on_commit(index_segments, [instance.pk])


@receiver(post_save, sender=ChatMessage, dispatch_uid="assistant-index-chat")
def chat_message_saved(sender, instance, created, **kwargs):
    if created:
        from .tasks import index_chat_messages

        enqueue_on_commit(index_chat_messages, [instance.pk])


@receiver(post_save, sender=Ticket, dispatch_uid="assistant-index-ticket")
def ticket_saved(sender, instance, **kwargs):
    from .tasks import index_tickets

    enqueue_on_commit(index_tickets, [instance.pk])
