"""Writes for the room knowledge index: every chunk is embedded by the local embedder when stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from pathlib import PurePath

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from office.events import send_event_on_commit
from office.queueing import enqueue_on_commit
from rooms.selectors import user_can_enter_room
from transcription.services import room_group

from . import embeddings, meeting_notes
from .models import ActionItem, ActionItemDecision, Document, KnowledgeChunk
from .selectors import action_item_payload, document_payload
from .signals import action_item_approved

logger = logging.getLogger(__name__)

MAX_CHUNK_CHARS = 8000


def _clean(*, room, source_kind: str, source_id, locator, text: str) -> dict:
    if source_kind not in KnowledgeChunk.SourceKind.values:
        raise ValueError(f"unknown source_kind {source_kind!r}; one of {KnowledgeChunk.SourceKind.values}")
    text = (text or "").strip()
    if not text:
        raise ValueError("a knowledge chunk needs text")
    if len(text) > MAX_CHUNK_CHARS:
        raise ValueError(f"a knowledge chunk holds at most {MAX_CHUNK_CHARS} characters: split the source first")
    if locator is None:
        locator = {}
    if not isinstance(locator, dict):
        raise ValueError("locator must be a JSON object")
    return {"room": room, "source_kind": source_kind, "source_id": str(source_id), "locator": locator, "text": text}


def knowledge_source_replace(*, source_kind: str, source_id: str, items: list[dict]) -> list[KnowledgeChunk]:
    """A source that changes (a ticket's status, its room): its chunks are replaced, in one
    transaction, when their text or room differ; unchanged ones are kept as they are."""
    cleaned = [_clean(**item) for item in items]
    with transaction.atomic():
        current = {(c.room_id, c.text) for c in KnowledgeChunk.objects.filter(source_kind=source_kind,
                                                                             source_id=source_id)}
        if current == {(c["room"].pk, c["text"]) for c in cleaned}:
            return list(KnowledgeChunk.objects.filter(source_kind=source_kind, source_id=source_id))
        KnowledgeChunk.objects.filter(source_kind=source_kind, source_id=source_id).delete()
        return knowledge_chunks_add(cleaned)


def knowledge_chunk_add(*, room, source_kind: str, source_id, locator: dict | None, text: str) -> KnowledgeChunk:
    """Embed and store one chunk of a room's knowledge."""
    return knowledge_chunks_add(
        [{"room": room, "source_kind": source_kind, "source_id": source_id, "locator": locator, "text": text}]
    )[0]


def knowledge_chunks_add(items: Iterable[dict]) -> list[KnowledgeChunk]:
    """Embed (in batches) and store many chunks in one transaction.

    Each item has the keyword arguments of `knowledge_chunk_add`: room, source_kind, source_id,
    locator, text. Returns the stored chunks in the same order.
    """
    cleaned = [_clean(**item) for item in items]
    if not cleaned:
        return []
    # Re-indexing the same source (a retried task, the periodic sweep) stores nothing twice.
    keys = [(c["source_kind"], c["source_id"], c["room"].pk) for c in cleaned]
    existing = set(
        KnowledgeChunk.objects.filter(source_id__in={k[1] for k in keys}).values_list("source_kind", "source_id", "room_id")
    )
    todo = [c for c, key in zip(cleaned, keys, strict=True) if key not in existing]
    if todo:
        _store(todo)
    stored = {
        (chunk.source_kind, chunk.source_id, chunk.room_id): chunk
        for chunk in KnowledgeChunk.objects.filter(source_id__in={k[1] for k in keys})
    }
    return [stored[key] for key in keys]


def _store(cleaned: list[dict]) -> None:
    embedder = embeddings.get_embedder()
    vectors = embedder.embed([c["text"] for c in cleaned])
    chunks = [
        KnowledgeChunk(**c, embedding=vector, model_id=embedder.model_id)
        for c, vector in zip(cleaned, vectors, strict=True)
    ]
    with transaction.atomic():
        KnowledgeChunk.objects.bulk_create(chunks, batch_size=500, ignore_conflicts=True)


# --- action item decisions ---

def _item_state(item) -> dict:
    return {"text": item.text, "owner": item.owner_id, "due_date": item.due_date.isoformat() if item.due_date else None,
            "status": item.status}


def action_item_decide(*, item, user, action: str, text: str | None = None, owner_id: int | None = None,
                       due_date=None, note: str = "", clear_owner: bool = False):
    """A participant approves, edits or rejects a proposal; the decision is audited.

    Approval sends `action_item_approved` inside this transaction, so the task it turns into is
    written (or not) together with the approval.
    """
    if action not in ActionItemDecision.Action.values:
        raise ValidationError(f"action must be one of {ActionItemDecision.Action.values}")
    if not may_decide(user, item):
        raise PermissionDenied("only participants of this meeting can decide on its action items")
    with transaction.atomic():
        item = ActionItem.objects.select_for_update().get(pk=item.pk)
        if item.status != ActionItem.Status.PROPOSED:
            raise ValidationError(f"this action item was already {item.status}", code="conflict")
        before = _item_state(item)
        if action in ("edit", "approve"):
            if text is not None:
                text = str(text).strip()
                if not text or len(text) > 500:
                    raise ValidationError("text must be 1 to 500 characters")
                item.text = text
            if clear_owner:
                item.owner = None
            elif owner_id is not None:
                owner = get_user_model().objects.filter(pk=owner_id, is_active=True).first()
                if owner is None:
                    raise ValidationError("owner must be an active member of the organisation")
                item.owner = owner
            if due_date is not None:
                if isinstance(due_date, str):
                    try:
                        due_date = dt.date.fromisoformat(due_date) if due_date else None
                    except ValueError as exc:
                        raise ValidationError("due_date must be YYYY-MM-DD") from exc
                item.due_date = due_date
        if action == "approve":
            item.status = ActionItem.Status.APPROVED
        elif action == "reject":
            item.status = ActionItem.Status.REJECTED
        if action != "edit":
            item.decided_by, item.decided_at = user, timezone.now()
        item.save()
        ActionItemDecision.objects.create(item=item, actor=user, action=action, before=before,
                                          after=_item_state(item), note=str(note)[:1000])
        if action == "approve":
            action_item_approved.send(sender=ActionItem, item=item, actor=user)
        send_event_on_commit(room_group(item.room_id), {"type": "assistant.action_item",
                                                        "item": action_item_payload(item)})
    return item


def may_decide(user, item) -> bool:
    """Participants of the item's meeting (or, without a meeting, anyone who may enter the room), and admins."""
    if user.is_staff:
        return True
    if item.meeting_id is not None:
        return item.meeting.participants.filter(user=user).exists()
    return user_can_enter_room(user, item.room)


# --- documents ---

ALLOWED_DOCUMENTS = {".txt": "text/plain", ".md": "text/markdown", ".pdf": "application/pdf"}


def document_upload(*, user, room, filename: str, content: bytes, title: str = ""):
    """Store an uploaded file in a room's knowledge and queue it for indexing (after commit)."""
    if not user_can_enter_room(user, room):
        raise PermissionDenied("you cannot add documents to this room")
    filename = PurePath(str(filename or "")).name[:200]
    suffix = PurePath(filename).suffix.lower()
    if suffix not in ALLOWED_DOCUMENTS:
        raise ValidationError(f"only {', '.join(ALLOWED_DOCUMENTS)} files can be added")
    if not content:
        raise ValidationError("the file is empty")
    if len(content) > settings.OFFICE_UPLOAD_MAX_BYTES:
        raise ValidationError(f"the file is larger than {settings.OFFICE_UPLOAD_MAX_BYTES} bytes")
    if suffix == ".pdf" and not content.startswith(b"%PDF"):
        raise ValidationError("the file is not a PDF")
    if suffix != ".pdf":
        try:
            content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError("text files must be UTF-8") from exc
    sha = hashlib.sha256(content).hexdigest()
    existing = Document.objects.filter(room=room, sha256=sha).first()
    if existing is not None:
        return existing, False
    with transaction.atomic():
        document = Document.objects.create(
            room=room, title=(title or filename)[:200], filename=filename, content_type=ALLOWED_DOCUMENTS[suffix],
            size_bytes=len(content), sha256=sha, content=content, uploaded_by=user,
        )
        enqueue_on_commit("assistant.index_document", document.pk)
        send_event_on_commit(room_group(room.pk), {"type": "document.progress",
                                                   "document": document_payload(document)})
    return document, True


def may_delete_document(user, document) -> bool:
    """Whoever uploaded it, or an admin."""
    return user.is_staff or document.uploaded_by_id == user.pk


def document_delete(*, user, document) -> None:
    """Delete a document with its pages and the knowledge made from it (after which no answer cites it)."""
    if not may_delete_document(user, document):
        raise PermissionDenied("only whoever added a document, or an admin, can delete it")
    with transaction.atomic():
        KnowledgeChunk.objects.filter(source_kind=KnowledgeChunk.SourceKind.DOCUMENT,
                                      locator__document=document.pk).delete()
        room_id, document_id = document.room_id, document.pk
        document.delete()
        send_event_on_commit(room_group(room_id), {"type": "document.deleted", "document": document_id,
                                                   "room": room_id})


def meeting_action_items_propose(meeting, *, llm=None, use_model: bool = True):
    """Propose action items from a recorded meeting (rules + model; `llm` is an LLMClient, e.g. a scripted one)."""
    return meeting_notes.action_items_propose(meeting, client=llm, use_model=use_model)
