"""Background work of the assistant. Tasks are thin and idempotent: they take ids and call the
plain functions in `indexing` and `meeting_notes`; the periodic `assistant_tick` re-does whatever a
lost enqueue or a dead worker left undone (indexing, rolling summaries, end-of-meeting notes)."""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from transcription.models import Meeting, TranscriptSegment

from . import indexing, meeting_notes
from .models import MeetingSummary

logger = logging.getLogger(__name__)


@shared_task(name="assistant.index_segments")
def index_segments(segment_ids: list[int]) -> int:
    return indexing.index_segments(segment_ids)


@shared_task(name="assistant.index_chat_messages")
def index_chat_messages(message_ids: list[int]) -> int:
    return indexing.index_chat_messages(message_ids)


@shared_task(name="assistant.index_document")
def index_document(document_id: int) -> int:
    return indexing.index_document(document_id)


def _once(key: str, seconds: int) -> bool:
    """A short Redis lock so two workers do not run the same meeting's notes at once."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    return bool(client.set(f"office:assistant:{key}", "1", nx=True, ex=seconds))


@shared_task(name="assistant.meeting_refresh")
def meeting_refresh(meeting_id: int) -> None:
    meeting = Meeting.objects.filter(pk=meeting_id).select_related("room").first()
    if meeting is None or not _once(f"refresh:{meeting_id}", settings.OFFICE_SUMMARY_REFRESH_SECONDS):
        return
    last = meeting.summaries.filter(kind=MeetingSummary.Kind.ROLLING).order_by("-created_at").first()
    after = last.through_seq if last else 0
    new_segments = list(TranscriptSegment.objects.filter(meeting=meeting, seq__gt=after)
                        .select_related("speaker__profile").order_by("seq"))
    meeting_notes.summary_refresh(meeting)
    if new_segments:
        meeting_notes.action_items_propose(meeting, segments=new_segments)


@shared_task(name="assistant.meeting_finalize")
def meeting_finalize(meeting_id: int) -> None:
    meeting = Meeting.objects.filter(pk=meeting_id, ended_at__isnull=False).select_related("room").first()
    if meeting is None or not _once(f"final:{meeting_id}", 600):
        return
    meeting_notes.summary_finalize(meeting)
    meeting_notes.action_items_propose(meeting)  # the whole transcript; known items are not repeated


@shared_task(name="assistant.tick")
def assistant_tick() -> dict:
    """Every few seconds (beat): index stragglers, refresh running meetings, finish ended ones."""
    counts = indexing.sweep_unindexed()
    due = timezone.now() - timezone.timedelta(seconds=settings.OFFICE_SUMMARY_REFRESH_SECONDS)
    for meeting in Meeting.objects.filter(ended_at__isnull=True, room__assistant_enabled=True, last_seq__gt=0):
        last = meeting.summaries.filter(kind=MeetingSummary.Kind.ROLLING).order_by("-created_at").first()
        if (last is None or last.created_at < due) and (last is None or last.through_seq < meeting.last_seq):
            meeting_refresh.delay(meeting.pk)
    recent = timezone.now() - timezone.timedelta(days=2)
    for meeting in Meeting.objects.filter(ended_at__gte=recent, last_seq__gt=0).exclude(summaries__kind="final"):
        meeting_finalize.delay(meeting.pk)
    return counts
