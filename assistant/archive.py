"""Reads for the meetings archive: the meetings a person may read with their notes headline and
item counts, and one search over transcripts, notes and room chat.

Every query is limited to the rooms the person may read inside its SQL (`rooms_visible_to`), so a
private room's words never leave the database for someone outside it. Transcript search fuses the
words (PostgreSQL full text, ranked, over `TranscriptSegment.search`) with meaning (the knowledge
index's embeddings of the same segments) by reciprocal rank.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db.models import BigIntegerField, Count, F, OuterRef, Q, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from rooms.models import ChatMessage, display_name
from rooms.selectors import rooms_visible_to
from transcription.models import Meeting, MeetingParticipant, TranscriptSegment

from . import embeddings
from .models import KnowledgeChunk, MeetingSummary
from .selectors import RRF_K, any_word_query, citation_target, content_words, knowledge_search_by_vector

# Private-use characters mark the highlighted words inside PostgreSQL's headline, so the text can be
# HTML-escaped afterwards and only our own <mark> tags survive.
_MARK_START, _MARK_END = "\ue000", "\ue001"
SEMANTIC_MAX_DISTANCE = 0.6  # cosine distance: further than this is not "about" the query


@dataclass(frozen=True)
class ArchiveFilters:
    room_id: int | None = None
    person_id: int | None = None
    since: dt.date | None = None
    until: dt.date | None = None


def archive_filters(data: dict) -> ArchiveFilters:
    """The filters of a validated `ArchiveQueryIn`."""
    return ArchiveFilters(room_id=data.get("room"), person_id=data.get("person"), since=data.get("since"),
                          until=data.get("until"))


def _highlighted(headline: str) -> str:
    return html.escape(headline).replace(_MARK_START, "<mark>").replace(_MARK_END, "</mark>")


def _day_bounds(filters: ArchiveFilters) -> tuple[dt.datetime | None, dt.datetime | None]:
    start = dt.datetime.combine(filters.since, dt.time.min, tzinfo=dt.UTC) if filters.since else None
    end = dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC) if filters.until else None
    return start, end


def meetings_archive(*, user, filters: ArchiveFilters):
    """The meetings `user` may read, newest first, with what the archive list shows of each."""
    meetings = _filtered(Meeting.objects.filter(room__in=rooms_visible_to(user)).select_related("room"), filters,
                         room="room_id", person="participants__user_id", time="started_at")
    newest_summary = MeetingSummary.objects.filter(meeting=OuterRef("pk")).order_by("kind", "-created_at")  # final first
    shown_items = Q(action_items__shadow=False)
    return (meetings.annotate(
        headline=Subquery(newest_summary.values("summary")[:1]),
        items_proposed=Count("action_items", filter=shown_items & Q(action_items__status="proposed"), distinct=True),
        items_approved=Count("action_items", filter=shown_items & Q(action_items__status="approved"), distinct=True),
    ).order_by("-started_at", "-pk"))


def meeting_people(meeting_ids: list[int]) -> dict[int, list[str]]:
    """Display names of each meeting's participants, in joining order, in one query."""
    people: dict[int, list[str]] = {}
    rows = (MeetingParticipant.objects.filter(meeting_id__in=meeting_ids).select_related("user__profile")
            .order_by("joined_at", "pk"))
    for row in rows:
        people.setdefault(row.meeting_id, []).append(display_name(row.user))
    return people


def _filtered(rows, filters: ArchiveFilters, *, room: str, person: str | None, time: str):
    """`rows` narrowed by the archive's filters, given where room, person and time are on this model
    (`person` None: the caller narrows by person itself)."""
    narrowed = Q()
    if filters.room_id:
        narrowed &= Q(**{room: filters.room_id})
    if filters.person_id and person:
        narrowed &= Q(**{person: filters.person_id})
    start, end = _day_bounds(filters)
    if start:
        narrowed &= Q(**{f"{time}__gte": start})
    if end:
        narrowed &= Q(**{f"{time}__lt": end})
    return rows.filter(narrowed)


def _two_word_query(text: str) -> SearchQuery | None:
    words = content_words(text)[:8]
    if len(words) < 3:  # with two words, "both" is the full query already
        return None
    pairs = [f"({a} & {b})" for i, a in enumerate(words) for b in words[i + 1:]]
    return SearchQuery(" | ".join(pairs), search_type="raw", config="english")


def _ranked_by_words(segments, query: SearchQuery, limit: int) -> list[int]:
    # ts_rank, not cover density: five times cheaper over thousands of matching turns (bench/meeting_search.py)
    return list(segments.filter(search=query).annotate(rank=SearchRank(F("search"), query))
                .order_by("-rank", "-spoken_at").values_list("pk", flat=True)[:limit])


def _transcript_hits(*, text: str, query: SearchQuery, vector, room_ids, filters: ArchiveFilters,
                     limit: int) -> list[dict]:
    segments = _filtered(TranscriptSegment.objects.filter(room_id__in=room_ids), filters,
                         room="room_id", person="speaker_id", time="spoken_at")
    by_words = _ranked_by_words(segments, query, limit * 2)
    # Every word together found little (a question, not keywords): turns with two of its words, then
    # with any. Pairs first, because ranking every turn that holds one common word is what is slow.
    for looser in (_two_word_query(text), any_word_query(text)):
        if len(by_words) >= limit or looser is None:
            break
        by_words += [pk for pk in _ranked_by_words(segments, looser, limit * 2) if pk not in by_words]
    by_meaning = []
    if vector is not None:
        # the index's own search (HNSW with iterative scans on large scopes); its turns are what count here
        nearest = knowledge_search_by_vector(vector=vector, room_ids=room_ids, k=limit * 4)
        candidates = [int(chunk.locator["segment"]) for chunk, distance in nearest
                      if chunk.source_kind == "transcript" and "segment" in chunk.locator
                      and distance <= SEMANTIC_MAX_DISTANCE]
        # the filters and the access rule again, on the segments themselves
        allowed = set(segments.filter(pk__in=candidates).values_list("pk", flat=True))
        by_meaning = [pk for pk in candidates if pk in allowed]
    fused: dict[int, float] = {}
    for ranking in (by_words, by_meaning):
        for rank, pk in enumerate(ranking):
            fused[pk] = fused.get(pk, 0.0) + 1.0 / (RRF_K + rank)
    order = sorted(fused, key=lambda pk: -fused[pk])[:limit]
    rows = {s.pk: s for s in TranscriptSegment.objects.filter(pk__in=order).select_related("speaker__profile", "room")
            .annotate(headline=SearchHeadline("text", query, config="english", start_sel=_MARK_START,
                                              stop_sel=_MARK_END, max_words=30, min_words=12))}
    return [{
        "kind": "transcript", "meeting": rows[pk].meeting_id, "room": rows[pk].room_id, "room_name": rows[pk].room.name,
        "seq": rows[pk].seq, "speaker": display_name(rows[pk].speaker), "at": rows[pk].spoken_at,
        "snippet": _highlighted(rows[pk].headline), "url": f"/meetings/{rows[pk].meeting_id}/#seg-{rows[pk].seq}",
        "matched": [name for name, ranking in (("words", by_words), ("meaning", by_meaning)) if pk in ranking],
    } for pk in order if pk in rows]


def _notes_hits(*, query: SearchQuery, room_ids, filters: ArchiveFilters, limit: int) -> list[dict]:
    summaries = _filtered(MeetingSummary.objects.filter(meeting__room_id__in=room_ids, kind=MeetingSummary.Kind.FINAL),
                          filters, room="meeting__room_id", person="meeting__participants__user_id",
                          time="meeting__started_at")
    document = SearchVector("summary", config="english") + SearchVector("decisions", config="english")
    rows = (summaries.annotate(document=document).filter(document=query)
            .annotate(rank=SearchRank(F("document"), query),
                      headline=SearchHeadline("summary", query, config="english", start_sel=_MARK_START,
                                              stop_sel=_MARK_END, max_words=35, min_words=15))
            .select_related("meeting__room").order_by("-rank", "-created_at")[:limit])
    return [{"kind": "notes", "meeting": s.meeting_id, "room": s.meeting.room_id, "room_name": s.meeting.room.name,
             "at": s.meeting.started_at, "snippet": _highlighted(s.headline), "url": f"/meetings/{s.meeting_id}/#meeting-notes"}
            for s in rows]


def _chat_hits(*, query: SearchQuery, room_ids, filters: ArchiveFilters, limit: int) -> list[dict]:
    chunks = _filtered(KnowledgeChunk.objects.filter(room_id__in=room_ids, source_kind="chat", search=query), filters,
                       room="room_id", person=None, time="created_at")
    if filters.person_id:  # the author is in the chunk's locator
        mine = ChatMessage.objects.filter(author_id=filters.person_id).values("pk")
        chunks = (chunks.annotate(message_id=Cast(KT("locator__message"), BigIntegerField()))
                  .filter(message_id__in=Subquery(mine)))
    rows = (chunks.annotate(rank=SearchRank(F("search"), query),
                            headline=SearchHeadline("text", query, config="english", start_sel=_MARK_START,
                                                    stop_sel=_MARK_END, max_words=30, min_words=12))
            .select_related("room").order_by("-rank", "-created_at")[:limit])
    return [{"kind": "chat", "room": c.room_id, "room_name": c.room.name, "at": c.created_at,
             "speaker": c.locator.get("author", ""), "snippet": _highlighted(c.headline),
             "url": citation_target(c)["url"]} for c in rows]


def meetings_search(*, user, text: str, filters: ArchiveFilters, limit: int = 20) -> dict:
    """What was said, noted and written about `text`, in the rooms `user` may read."""
    text = text.strip()
    room_ids = list(rooms_visible_to(user).values_list("pk", flat=True))
    if not text or not room_ids:
        return {"query": text, "transcript": [], "notes": [], "chat": []}
    query = SearchQuery(text, search_type="websearch", config="english")
    vector = embeddings.embed([text])[0]
    return {
        "query": text,
        "transcript": _transcript_hits(text=text, query=query, vector=vector, room_ids=room_ids, filters=filters,
                                       limit=limit),
        "notes": _notes_hits(query=query, room_ids=room_ids, filters=filters, limit=max(3, limit // 4)),
        "chat": _chat_hits(query=query, room_ids=room_ids, filters=filters, limit=max(5, limit // 2)),
    }

