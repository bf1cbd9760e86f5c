"""Retention, erasure and export of what the assistant holds: documents, model-call records,
summaries, proposals and decisions, questions asked; and the knowledge chunks made from sources
that are gone (run by `rooms.personal_data`).

A cached answer that cited a deleted chunk is never served again: the answer cache is keyed by its
scope's chunk count as well as its newest chunk (`qa._retrieve`), and every deletion changes that."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import BigIntegerField, Exists, OuterRef
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from office.queueing import enqueue_on_commit
from rooms.models import ChatMessage
from rooms.selectors import expired_records_filter
from transcription.models import TranscriptSegment

from .models import (
    ActionItem,
    ActionItemDecision,
    AssistantJob,
    Document,
    KnowledgeChunk,
    MeetingSummary,
    ModelCall,
)

logger = logging.getLogger(__name__)

def assistant_records_expire(*, now: datetime) -> dict[str, int]:
    """Documents and model-call records past their room's retention; summaries of transcripts past
    theirs (a summary is the transcript retold). Finished ask / catch-up jobs go after a day anyway
    (`assistant.tick`)."""
    counts = {}
    with transaction.atomic():
        for name, model, kind, room_field in (
            ("documents", Document, "documents", "room"),
            ("model_calls", ModelCall, "model_calls", "room"),
            ("meeting_summaries", MeetingSummary, "transcripts", "meeting__room"),
        ):
            expired = expired_records_filter(kind, now=now, room_field=room_field)
            if expired is not None:
                counts[name], _ = model.objects.filter(expired).delete()
    return counts


def _sourceless(kind: str, locator_key: str, source_model) -> object:
    chunks = KnowledgeChunk.objects.filter(source_kind=kind, **{f"locator__{locator_key}__isnull": False})
    chunks = chunks.annotate(source_pk=Cast(KT(f"locator__{locator_key}"), BigIntegerField()))
    return chunks.filter(~Exists(source_model.objects.filter(pk=OuterRef("source_pk"))))


def knowledge_orphans_delete() -> dict[str, int]:
    """Chunks whose source is gone: a segment, a room message or a document; a transcript window
    missing any of its turns is dropped and rebuilt from the turns that are left (after commit)."""
    counts = {}
    with transaction.atomic():
        deleted = 0
        for kind, key, model in (("transcript", "segment", TranscriptSegment), ("chat", "message", ChatMessage),
                                 ("document", "document", Document)):
            n, _ = KnowledgeChunk.objects.filter(pk__in=_sourceless(kind, key, model).values("pk")).delete()
            deleted += n
        windows = KnowledgeChunk.objects.filter(source_kind="transcript", locator__window=True)
        seqs_by_meeting: dict[int, set[int]] = {}
        broken, rebuild = [], set()
        for chunk_id, locator in windows.values_list("pk", "locator"):
            meeting_id = locator["meeting"]
            if meeting_id not in seqs_by_meeting:
                seqs_by_meeting[meeting_id] = set(
                    TranscriptSegment.objects.filter(meeting_id=meeting_id).values_list("seq", flat=True))
            if not set(locator.get("seqs") or []) <= seqs_by_meeting[meeting_id]:
                broken.append(chunk_id)
                rebuild.add(meeting_id)
        if broken:
            n, _ = KnowledgeChunk.objects.filter(pk__in=broken).delete()
            deleted += n
        remaining = list(TranscriptSegment.objects.filter(meeting_id__in=rebuild).values_list("pk", flat=True))
        if remaining:
            enqueue_on_commit("assistant.index_segments", remaining)
    counts["knowledge_chunks"] = deleted
    return counts


def person_assistant_erase(*, user, reassign_to=None) -> dict[str, int]:
    """Inside the erasure's transaction: their decisions and questions go; proposals they own pass
    to `reassign_to` (else nobody); their name leaves every other field. Documents they uploaded stay
    with the room (they are the room's knowledge), owned by the anonymous account."""
    counts = {}
    counts["action_item_decisions"], _ = ActionItemDecision.objects.filter(actor=user).delete()
    counts["assistant_jobs"], _ = AssistantJob.objects.filter(user=user).delete()
    counts["action_items_reassigned"] = ActionItem.objects.filter(owner=user).update(owner=reassign_to)
    ActionItem.objects.filter(suggested_owner=user).update(suggested_owner=None, owner_reason="")
    ActionItem.objects.filter(speaker=user).update(speaker=None)
    ActionItem.objects.filter(decided_by=user).update(decided_by=None)
    return counts


def person_assistant_export(*, user) -> dict:
    """The proposals they own or decided, their decisions, the questions they asked, their uploads."""
    items = ActionItem.objects.filter(owner=user, shadow=False).select_related("room").order_by("created_at")
    return {
        "action_items_owned": [{"id": i.pk, "room": i.room.name, "text": i.text, "status": i.status,
                                "due_date": i.due_date.isoformat() if i.due_date else None,
                                "created_at": i.created_at.isoformat()} for i in items],
        "action_item_decisions": [{"item": d.item_id, "item_text": d.item.text, "action": d.action, "note": d.note,
                                   "at": d.at.isoformat()}
                                  for d in ActionItemDecision.objects.filter(actor=user).select_related("item")],
        "assistant_requests": [{"kind": j.kind, "input": j.input, "status": j.status,
                                "asked_at": j.created_at.isoformat()}
                               for j in AssistantJob.objects.filter(user=user).order_by("created_at")],
        "documents_uploaded": [{"id": d.pk, "room": d.room.name, "title": d.title, "filename": d.filename,
                                "size_bytes": d.size_bytes, "uploaded_at": d.created_at.isoformat()}
                               for d in Document.objects.filter(uploaded_by=user).select_related("room")],
    }
