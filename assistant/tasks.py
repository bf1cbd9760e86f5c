"""Background work of the assistant. Tasks are thin and idempotent: they take ids and call the
plain functions in `indexing` and `meeting_notes`; the periodic `assistant_tick` re-does whatever a
lost enqueue or a dead worker left undone (indexing, rolling summaries, end-of-meeting notes).
Model calls run on their own queue (CELERY_TASK_ROUTES)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from office.redis_client import redis_client
from transcription.models import Meeting

from . import indexing, jobs, meeting_notes, selectors, topics


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
    return bool(redis_client().set(f"office:assistant:{key}", "1", nx=True, ex=seconds))


@shared_task(name="assistant.meeting_refresh")
def meeting_refresh(meeting_id: int) -> None:
    meeting = Meeting.objects.filter(pk=meeting_id).select_related("room").first()
    if meeting is not None and _once(f"refresh:{meeting_id}", settings.OFFICE_SUMMARY_REFRESH_SECONDS):
        meeting_notes.meeting_refresh(meeting)


@shared_task(name="assistant.meeting_finalize")
def meeting_finalize(meeting_id: int) -> None:
    meeting = Meeting.objects.filter(pk=meeting_id, ended_at__isnull=False).select_related("room").first()
    if meeting is not None and _once(f"final:{meeting_id}", 600):
        meeting_notes.meeting_finalize(meeting)


@shared_task(name="assistant.run_job")
def run_job(job_id: str) -> str:
    """A question or catch-up asked over HTTP (assistant queue); never retried: the job records a failure."""
    return jobs.assistant_job_run(job_id)


@shared_task(name="assistant.tick")
def assistant_tick() -> dict:
    """Every few seconds (beat): index stragglers, refresh running meetings, finish ended ones, and
    resend or fail assistant jobs that a lost message or a dead worker left behind."""
    counts = indexing.sweep_unindexed()
    counts["jobs"] = jobs.assistant_jobs_sweep()
    for meeting_id in selectors.meetings_due_for_refresh():
        meeting_refresh.delay(meeting_id)
    for meeting_id in selectors.meetings_to_finalize():
        meeting_finalize.delay(meeting_id)
    return counts


@shared_task(name="assistant.topics_refresh")
def topics_refresh() -> dict:
    """Hourly (beat): link new meetings to topics, or cluster a scope again (assistant/topics.py)."""
    if not _once("topics", 1800):
        return {}
    return topics.topics_refresh()
