"""Turning what a room says and stores into knowledge chunks (run by Celery, `assistant.tasks`).

Each source maps to stable chunk ids (`segment:<id>`, `message:<id>`, `document:<id>:p<n>:c<k>`), so
indexing the same thing twice (a retried task, the sweep after a lost enqueue) stores it once.
Only room chat is indexed: direct messages are private to their two people.
"""

from __future__ import annotations

import io
import logging
import re

from django.conf import settings
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat

from office.events import send_event_on_commit
from rooms.models import ChatMessage, ChatThread
from rooms.selectors import display_name
from transcription.models import TranscriptSegment
from transcription.services import room_group

from . import ocr, signals
from .models import Document, DocumentPage, KnowledgeChunk
from .selectors import document_payload
from .services import knowledge_chunks_add, knowledge_source_replace
from .transcript_text import clean_turn, is_backchannel

logger = logging.getLogger(__name__)

DOC_CHUNK_CHARS = 1200


def index_segments(segment_ids: list[int]) -> int:
    """Each segment on its own (an exact citation target), and the windows of turns around it (what a
    question about a discussion needs: several people's turns, read together)."""
    segments = list(TranscriptSegment.objects.filter(pk__in=segment_ids).select_related("speaker__profile", "room"))
    items = [{
        "room": s.room, "source_kind": "transcript", "source_id": f"segment:{s.pk}",
        "locator": {"meeting": s.meeting_id, "seq": s.seq, "segment": s.pk, "speaker": display_name(s.speaker)},
        "text": f"{display_name(s.speaker)}: {s.text}",
    } for s in segments]
    stored = len(knowledge_chunks_add(items))
    by_meeting: dict[int, list[int]] = {}
    for s in segments:
        by_meeting.setdefault(s.meeting_id, []).append(s.seq)
    for meeting_id, seqs in by_meeting.items():
        stored += index_transcript_windows(meeting_id, min(seqs), max(seqs))
    return stored


WINDOW_TURNS = 6  # content turns per window (backchannels left out), overlapping by half
WINDOW_MAX_CHARS = 1500


def index_transcript_windows(meeting_id: int, first_seq: int, last_seq: int) -> int:
    """(Re)build the windows of a meeting that hold any of the segments first_seq..last_seq. A window is
    named by its first segment, so a retried or repeated pass replaces it instead of adding one; the
    meeting's last window grows as people speak."""
    rows = list(TranscriptSegment.objects.filter(meeting_id=meeting_id).select_related("speaker__profile", "room")
                .order_by("seq"))
    content = [s for s in rows if not is_backchannel(clean_turn(s.text))]
    stride = WINDOW_TURNS // 2
    stored = 0
    for start in range(0, max(len(content) - stride, 1), stride):
        window = content[start:start + WINDOW_TURNS]
        if not window or window[-1].seq < first_seq or window[0].seq > last_seq:
            continue
        text = "\n".join(f"{display_name(s.speaker)}: {clean_turn(s.text)}" for s in window)[:WINDOW_MAX_CHARS]
        first = window[0]
        stored += len(knowledge_source_replace(source_kind="transcript", source_id=f"window:{meeting_id}:{first.seq}", items=[{
            "room": first.room, "source_kind": "transcript", "source_id": f"window:{meeting_id}:{first.seq}",
            "locator": {"meeting": meeting_id, "seq": first.seq, "seq_end": window[-1].seq,
                        "seqs": [s.seq for s in window], "window": True,
                        "speaker": ", ".join(dict.fromkeys(display_name(s.speaker) for s in window))},
            "text": text,
        }]))
    return stored


def index_chat_messages(message_ids: list[int]) -> int:
    messages = ChatMessage.objects.filter(pk__in=message_ids, thread__kind=ChatThread.Kind.ROOM).select_related(
        "thread__room", "author__profile")
    items = [{
        "room": m.thread.room, "source_kind": "chat", "source_id": f"message:{m.pk}",
        "locator": {"thread": m.thread_id, "seq": m.seq, "message": m.pk, "author": display_name(m.author)},
        "text": f"{display_name(m.author)}: {m.body}"[:8000],
    } for m in messages]
    return len(knowledge_chunks_add(items))


def extract_pages(document: Document, on_page=None) -> list[tuple[str, bool]]:
    """[(text, from_ocr)] per page. Text files are one page per form feed (or one page).
    `on_page(done, total, ocr)` is told before each page is read (for the progress line)."""
    content = bytes(document.content)
    if document.content_type != "application/pdf":
        text = content.decode("utf-8")
        return [(page, False) for page in text.split("\f")] or [("", False)]
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(content))
    pages = []
    ocr_budget = settings.OFFICE_OCR_MAX_PAGES
    total = len(reader.pages)
    for number, page in enumerate(reader.pages):
        text = (page.extract_text() or "").strip()
        if text or ocr_budget <= 0:
            pages.append((text, False))
            continue
        ocr_budget -= 1  # a scanned page: read its images
        if on_page is not None:
            on_page(number, total, True)
        text = ocr.page_text(page).strip()
        pages.append((text, bool(text)))
    return pages


def document_progress(document_id: int, **fields) -> None:
    """Record where indexing is, then tell the people in the room (stored before it is announced)."""
    Document.objects.filter(pk=document_id).update(**fields)
    document = Document.objects.filter(pk=document_id).select_related("uploaded_by__profile").defer("content").first()
    if document is not None:
        send_event_on_commit(room_group(document.room_id), {"type": "document.progress",
                                                            "document": document_payload(document)})


def _split(text: str, limit: int = DOC_CHUNK_CHARS) -> list[str]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    chunks, current = [], ""
    for para in paragraphs:
        while len(para) > limit:  # a very long paragraph: cut at a sentence end near the limit
            cut = para.rfind(". ", 0, limit)
            cut = cut + 1 if cut > limit // 2 else limit
            chunks.append(para[:cut].strip())
            para = para[cut:].strip()
        if current and len(current) + len(para) + 2 > limit:
            chunks.append(current)
            current = para
        else:
            current = f"{current}\n\n{para}" if current else para
    if current:
        chunks.append(current)
    return chunks


def index_document(document_id: int) -> int:
    document = Document.objects.filter(pk=document_id).select_related("room").first()
    if document is None:
        return 0
    document_progress(document_id, stage=Document.Stage.EXTRACTING, pages_done=0)

    def page_read(done: int, total: int, from_ocr: bool) -> None:
        document_progress(document_id, stage=Document.Stage.OCR if from_ocr else Document.Stage.EXTRACTING,
                          pages_done=done, pages_total=total)

    try:
        pages = extract_pages(document, on_page=page_read)
    except Exception as exc:  # a broken PDF is the uploader's problem to fix, not a crash
        logger.warning("document %s could not be read: %s", document_id, exc)
        document_progress(document_id, status=Document.Status.FAILED, stage=Document.Stage.FAILED,
                          error=f"could not read the file: {exc}"[:500])
        return 0
    document_progress(document_id, stage=Document.Stage.INDEXING, pages_done=len(pages), pages_total=len(pages))
    items = []
    for number, (text, from_ocr) in enumerate(pages, start=1):
        DocumentPage.objects.update_or_create(document=document, number=number, defaults={"text": text, "ocr": from_ocr})
        for k, chunk in enumerate(_split(text)):
            items.append({
                "room": document.room, "source_kind": "document", "source_id": f"document:{document.pk}:p{number}:c{k}",
                "locator": {"document": document.pk, "page": number, "title": document.title},
                "text": f"{document.title} (page {number}): {chunk}",
            })
    stored = knowledge_chunks_add(items)
    empty = sum(1 for text, _ in pages if not text)
    error = f"{empty} page(s) have no readable text (no text layer, nothing legible by OCR)" if empty else ""
    document_progress(document_id, status=Document.Status.INDEXED, stage=Document.Stage.READY, page_count=len(pages),
                      error=error)
    return len(stored)


def _not_indexed(queryset, kind: str, prefix: str):
    key = Concat(Value(prefix), Cast(OuterRef("pk"), CharField()))
    return queryset.filter(~Exists(KnowledgeChunk.objects.filter(source_kind=kind, source_id=key)))


def sweep_unindexed(limit: int = 500) -> dict:
    """Index whatever a lost enqueue left behind: segments, room messages, pending documents, and
    whatever later stages feed in (`signals.knowledge_sweep`)."""
    segment_ids = list(_not_indexed(TranscriptSegment.objects.all(), "transcript", "segment:")
                       .order_by("-pk").values_list("pk", flat=True)[:limit])
    message_ids = list(_not_indexed(ChatMessage.objects.filter(thread__kind=ChatThread.Kind.ROOM), "chat", "message:")
                       .order_by("-pk").values_list("pk", flat=True)[:limit])
    documents = list(Document.objects.filter(status=Document.Status.PENDING).values_list("pk", flat=True)[:20])
    counts = {"segments": index_segments(segment_ids) if segment_ids else 0,
              "messages": index_chat_messages(message_ids) if message_ids else 0,
              "documents": sum(index_document(pk) for pk in documents)}
    # Later stages that feed the index (automation's tickets) sweep their own sources.
    for _receiver, more in signals.knowledge_sweep.send(sender=sweep_unindexed, limit=limit):
        counts.update(more or {})
    return counts
