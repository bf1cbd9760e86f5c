"""Indexing is queued as soon as a segment or a room message commits (the tick catches any miss);
retention and personal data reach the assistant's records here too."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from office.queueing import enqueue_on_commit
from rooms.models import ChatMessage
from rooms.signals import (
    outcomes_requested,
    person_erasing,
    person_exporting,
    records_expire,
    records_removed,
)
from transcription.models import TranscriptSegment

from . import outcomes, personal_data


@receiver(post_save, sender=TranscriptSegment, dispatch_uid="assistant-index-segment")
def segment_saved(sender, instance, created, **kwargs):
    if created:
        enqueue_on_commit("assistant.index_segments", [instance.pk])


@receiver(post_save, sender=ChatMessage, dispatch_uid="assistant-index-chat")
def chat_message_saved(sender, instance, created, **kwargs):
    if created:
        enqueue_on_commit("assistant.index_chat_messages", [instance.pk])


# Retention and personal data (rooms/personal_data.py, docs/adr/0018).

@receiver(records_expire, dispatch_uid="assistant-expire")
def assistant_records_expire(sender, *, now, **kwargs) -> dict:
    return personal_data.assistant_records_expire(now=now)


@receiver(records_removed, dispatch_uid="assistant-orphans")
def knowledge_orphans_delete(sender, **kwargs) -> dict:
    return personal_data.knowledge_orphans_delete()


@receiver(person_erasing, dispatch_uid="assistant-erase")
def person_assistant_erase(sender, *, user, reassign_to=None, **kwargs) -> dict:
    return personal_data.person_assistant_erase(user=user, reassign_to=reassign_to)


@receiver(person_exporting, dispatch_uid="assistant-export")
def person_assistant_export(sender, *, user, **kwargs) -> dict:
    return personal_data.person_assistant_export(user=user)


@receiver(outcomes_requested, dispatch_uid="assistant-outcomes")
def assistant_outcomes(sender, *, scope, **kwargs) -> list[dict]:
    """The outcome dashboard's review time and model use (rooms/outcomes.py)."""
    return outcomes.assistant_outcome_sections(scope)
