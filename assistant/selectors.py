"""Reads of the room knowledge index. The access rule is part of the query itself: only chunks of
rooms in `rooms_visible_to(user)` can ever be candidates, so a private room's text cannot leak
through ranking, a large k or a post-filter mistake.

Filtered HNSW (pgvector 0.8): with the default `hnsw.iterative_scan = off`, an approximate scan
followed by the WHERE silently returns fewer than k rows when the scope is a small share of the
table (../shared/ASSETS.md, "Measured pitfalls"). Every search therefore runs in a transaction with
`SET LOCAL hnsw.iterative_scan = relaxed_order` and a wider `hnsw.ef_search`, and small scopes skip
the approximate index altogether for an exact scan over the scope's rows (via the room index).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from pgvector.django import CosineDistance

from rooms.selectors import rooms_visible_to
from transcription.models import Meeting

from . import embeddings
from .models import ActionItem, AssistantJob, Document, KnowledgeChunk, MeetingSummary
from .query_words import content_words
from .serializers import ActionItemOut, AssistantJobOut, DocumentOut, SummaryOut

EXACT_SCAN_MAX_CHUNKS = 2000  # scopes up to this many chunks are searched exactly
EF_SEARCH = 100
MAX_K = 200
HNSW_MAX_SCAN_TUPLES = 40000  # iterative scan budget (pgvector default 20000)


def knowledge_scope(user, room_ids: list[int] | None) -> list[int]:
    """Ids of the rooms a search over `room_ids` (None: all) may read: only rooms the user may read."""
    rooms = rooms_visible_to(user)
    if room_ids is not None:
        rooms = rooms.filter(id__in=[int(r) for r in room_ids])
    return sorted(set(rooms.values_list("id", flat=True)))


def room_knowledge_search(
    *, user, query: str, k: int = 10, room_ids: list[int] | None = None
) -> list[tuple[KnowledgeChunk, float]]:
    """The k chunks nearest to `query` (cosine distance, ascending) among rooms the user may read.

    `room_ids` narrows the search to those rooms (ids the user may not read are silently ignored,
    as if they did not exist). Returns [(chunk, distance), ...].
    """
    k = max(0, min(int(k), MAX_K))
    query = (query or "").strip()
    if k == 0 or not query or user is None or not getattr(user, "is_authenticated", False):
        return []
    scope = knowledge_scope(user, room_ids)
    if not scope:
        return []
    vector = embeddings.embed([query])[0]
    return knowledge_search_by_vector(vector=vector, room_ids=scope, k=k)


def knowledge_search_by_vector(*, vector: np.ndarray, room_ids: list[int], k: int = 10) -> list[tuple[KnowledgeChunk, float]]:
    """The search itself, over rooms already checked by the caller (`room_knowledge_search`)."""
    if not room_ids or k <= 0:
        return []
    in_scope = KnowledgeChunk.objects.filter(room_id__in=room_ids)
    # A bounded count: never counts past the threshold, so it stays cheap on large scopes.
    exact = in_scope.order_by()[: EXACT_SCAN_MAX_CHUNKS + 1].count() <= EXACT_SCAN_MAX_CHUNKS
    # the stored vectors are not read back: parsing 384 floats per row cost more than the search itself
    ranked = in_scope.defer("embedding").annotate(distance=CosineDistance("embedding", vector)).order_by("distance")[:k]
    if exact:
        # No (HNSW) index scan: the planner reads the scope's rows through the room index
        # (bitmap scan) and sorts them by exact distance.
        session = {"enable_indexscan": "off"}
    else:
        session = {
            "hnsw.iterative_scan": "relaxed_order",
            "hnsw.ef_search": str(int(max(EF_SEARCH, min(k * 2, 1000)))),
            "hnsw.max_scan_tuples": str(int(HNSW_MAX_SCAN_TUPLES)),
        }
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        previous = {}
        if nested:  # SET LOCAL would outlive this search in the caller's transaction: restore after
            for name in session:
                cursor.execute("SELECT current_setting(%s, true)", [name])
                previous[name] = cursor.fetchone()[0]
        for name, value in session.items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        rows = list(ranked)
        for name, value in previous.items():
            if value is None:  # not defined before (pgvector not loaded yet in this session)
                cursor.execute("SELECT reset_val FROM pg_settings WHERE name = %s", [name])
                found = cursor.fetchone()
                value = found[0] if found else None
            if value is not None:
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
    # relaxed_order may return neighbours slightly out of order: the exact distances settle it.
    rows.sort(key=lambda chunk: (chunk.distance, chunk.pk))
    return [(chunk, float(chunk.distance)) for chunk in rows]


RRF_K = 60  # reciprocal-rank fusion constant (the usual 60: ranks matter, raw scores do not)
def any_word_query(text: str):
    """An OR of the question's content words: any of them may find a passage (ranked by how many do)."""
    from django.contrib.postgres.search import SearchQuery

    words = content_words(text)
    if not words:
        return None
    return SearchQuery(" | ".join(words), search_type="raw", config="english")


def knowledge_search_hybrid(*, query: str, vector: np.ndarray, room_ids: list[int], k: int = 10,
                            depth: int = 30) -> list[tuple[KnowledgeChunk, float]]:
    """Meaning and words together: the nearest chunks by embedding and the best by full-text rank, fused
    by reciprocal rank. Both halves read only `room_ids` (already checked by the caller) in their SQL.
    Returns [(chunk, cosine distance)] in fused order."""
    from django.contrib.postgres.search import SearchRank

    if not room_ids or k <= 0:
        return []
    by_vector = knowledge_search_by_vector(vector=vector, room_ids=room_ids, k=depth)
    fused: dict[int, float] = {}
    chunks: dict[int, tuple[KnowledgeChunk, float]] = {}
    for rank, (chunk, distance) in enumerate(by_vector):
        fused[chunk.pk] = fused.get(chunk.pk, 0.0) + 1.0 / (RRF_K + rank)
        chunks[chunk.pk] = (chunk, distance)
    text_query = any_word_query(query)
    if text_query is not None:
        by_words = (KnowledgeChunk.objects.filter(room_id__in=room_ids, search=text_query).defer("embedding")
                    .annotate(rank=SearchRank("search", text_query, cover_density=True),
                              distance=CosineDistance("embedding", vector))
                    .order_by("-rank", "pk")[:depth])
        for rank, chunk in enumerate(by_words):
            fused[chunk.pk] = fused.get(chunk.pk, 0.0) + 1.0 / (RRF_K + rank)
            chunks.setdefault(chunk.pk, (chunk, float(chunk.distance)))
    order = sorted(fused, key=lambda pk: (-fused[pk], pk))[:k]
    return [chunks[pk] for pk in order]


def closest_turn_in_window(chunk: KnowledgeChunk, vector: np.ndarray) -> KnowledgeChunk | None:
    """The turn of a transcript window nearest the question: a window is read as context, but cited at
    the exact turn (its own chunk, same room)."""
    seqs = (chunk.locator or {}).get("seqs") or []
    if not seqs:
        return None
    return (KnowledgeChunk.objects.filter(room_id=chunk.room_id, source_kind="transcript",
                                          source_id__startswith="segment:", locator__meeting=chunk.locator["meeting"],
                                          locator__seq__in=seqs)
            .annotate(distance=CosineDistance("embedding", vector)).order_by("distance", "pk").first())


# --- meeting notes, action items, documents ---

def summary_payload(summary) -> dict:
    return dict(SummaryOut(summary).data)


def action_item_payloads(items) -> list[dict]:
    """Payloads for many items with one segment lookup (not one per item)."""
    return list(ActionItemOut(items, many=True).data)


def action_item_payload(item, *, seq_of: dict[int, int] | None = None) -> dict:
    """`seq_of` (segment id -> seq) saves the segment lookup when the caller has it."""
    return dict(ActionItemOut(item, context={"seq_of": seq_of}).data)


def _with_people(items):
    """The people an item payload names, loaded with the items (display names need the profiles)."""
    return items.select_related("owner__profile", "suggested_owner__profile", "speaker__profile",
                                "decided_by__profile")


def action_items_visible_to(user):
    return _with_people(ActionItem.objects.filter(room__in=rooms_visible_to(user), shadow=False))


def action_items_in_room(room):
    """A room's items, for a caller that already checked the user may enter it."""
    return _with_people(ActionItem.objects.filter(room=room, shadow=False))


def action_item_for_user(user, item_id: int):
    return action_items_visible_to(user).filter(pk=item_id).first()


def meetings_due_for_refresh() -> list[int]:
    """Running meetings with something said since their last rolling summary, which is older than
    the refresh period (or missing)."""
    due = timezone.now() - dt.timedelta(seconds=settings.OFFICE_SUMMARY_REFRESH_SECONDS)
    rolling = Q(summaries__kind="rolling")
    meetings = (Meeting.objects.filter(ended_at__isnull=True, room__assistant_enabled=True, last_seq__gt=0)
                .annotate(summarised_at=Max("summaries__created_at", filter=rolling),
                          summarised_seq=Max("summaries__through_seq", filter=rolling)))
    return list(meetings.filter(Q(summarised_at__isnull=True)
                                | (Q(summarised_at__lt=due) & Q(summarised_seq__lt=F("last_seq"))))
                .values_list("pk", flat=True))


def meetings_to_finalize(days: int = 2) -> list[int]:
    """Meetings that ended recently with words said and no final summary yet."""
    recent = timezone.now() - dt.timedelta(days=days)
    return list(Meeting.objects.filter(ended_at__gte=recent, last_seq__gt=0).exclude(summaries__kind="final")
                .values_list("pk", flat=True))


def meeting_summaries(meeting) -> dict:
    """The latest rolling summary and the final one (if the meeting ended)."""
    rolling = meeting.summaries.filter(kind=MeetingSummary.Kind.ROLLING).order_by("-created_at").first()
    final = meeting.summaries.filter(kind=MeetingSummary.Kind.FINAL).first()
    return {"rolling": summary_payload(rolling) if rolling else None, "final": summary_payload(final) if final else None}


def documents_visible_to(user):
    return (Document.objects.filter(room__in=rooms_visible_to(user)).defer("content")
            .select_related("uploaded_by__profile"))


def document_payload(document) -> dict:
    return dict(DocumentOut(document).data)


# --- what a booked meeting's agenda is drafted from (iot asks through automation, docs/adr/0021) ---

AGENDA_DOCUMENTS_LOOKBACK = dt.timedelta(days=14)  # documents "since the last meeting" when there was none


@dataclass(frozen=True)
class AgendaMaterial:
    """A room's open threads before a meeting, as far as the assistant knows them. `action_items`
    is a queryset (proposed or approved, oldest first): whether an approved one's task is done is
    automation's to say, and it filters this before taking a few."""

    action_items: object
    last_meeting: Meeting | None
    open_questions: list[str]
    documents: list[Document]


def agenda_material(*, room_id: int, before: dt.datetime, limit: int = 10) -> AgendaMaterial:
    """For a meeting in `room_id` starting at `before`: its open action items, the open questions of
    the last meeting in the room where something was said (from its final notes), and the documents
    added since that meeting ended (the last two weeks when there was none; failed ones left out).
    The caller checked nothing: it is drafting for a booking, not answering a member."""
    items = (ActionItem.objects.filter(room_id=room_id, shadow=False, created_at__lt=before,
                                       status__in=[ActionItem.Status.PROPOSED, ActionItem.Status.APPROVED])
             .select_related("owner__profile").order_by("created_at", "pk"))
    last = (Meeting.objects.filter(room_id=room_id, ended_at__isnull=False, ended_at__lte=before, last_seq__gt=0)
            .order_by("-ended_at", "-pk").first())
    questions: list[str] = []
    if last is not None:
        final = MeetingSummary.objects.filter(meeting=last, kind=MeetingSummary.Kind.FINAL).first()
        if final is not None:
            questions = [str(q).strip() for q in final.open_questions if str(q).strip()][:limit]
    since = last.ended_at if last is not None else before - AGENDA_DOCUMENTS_LOOKBACK
    documents = list(Document.objects.filter(room_id=room_id, created_at__gt=since, created_at__lt=before)
                     .exclude(status=Document.Status.FAILED).defer("content").order_by("created_at", "pk")[:limit])
    return AgendaMaterial(action_items=items, last_meeting=last, open_questions=questions, documents=documents)


def citation_target(chunk) -> dict:
    """Where a chunk came from, as a label and a link to the exact segment, message or page."""
    loc = chunk.locator or {}
    kind = chunk.source_kind
    if kind == "transcript" and "meeting" in loc:
        return {"label": f"{loc.get('speaker', 'Transcript')}, meeting {loc['meeting']} #{loc.get('seq')}",
                "url": f"/meetings/{loc['meeting']}/#seg-{loc.get('seq')}"}
    if kind == "chat" and "thread" in loc:
        return {"label": f"{loc.get('author', 'Chat')} in room chat #{loc.get('seq')}",
                "url": f"/?room={chunk.room_id}#chat-{loc['thread']}-{loc.get('seq')}"}
    if kind == "document" and "document" in loc:
        return {"label": f"{loc.get('title', 'Document')}, page {loc.get('page')}",
                "url": f"/documents/{loc['document']}/?page={loc.get('page')}#page-{loc.get('page')}"}
    if loc.get("url"):  # sources fed in by later stages (tickets) carry their own label and link
        return {"label": loc.get("label") or kind, "url": loc["url"]}
    return {"label": kind, "url": ""}


def assistant_job_for_user(user, job_id) -> AssistantJob | None:
    """The caller's own job, or None: a job id is not a capability, anyone else's job is "not found"."""
    return AssistantJob.objects.filter(pk=job_id, user=user).first()


def assistant_job_payload(job: AssistantJob) -> dict:
    return dict(AssistantJobOut(job).data)
