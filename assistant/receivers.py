"""Indexing is queued as soon as a segment or a room message commits (the tick catches any miss)."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from office.queueing import enqueue_on_commit
from rooms.models import ChatMessage
from transcription.models import TranscriptSegment


@receiver(post_save, sender=TranscriptSegment, dispatch_uid="assistant-index-segment")
def segment_saved(sender, instance, created, **kwargs):
    if created:
        enqueue_on_commit("assistant.index_segments", [instance.pk])


@receiver(post_save, sender=ChatMessage, dispatch_uid="assistant-index-chat")
def chat_message_saved(sender, instance, created, **kwargs):
    if created:
        enqueue_on_commit("assistant.index_chat_messages", [instance.pk])
