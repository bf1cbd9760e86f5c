"""Reads for "who knows about X?": people ranked by what they said in meetings, wrote in room chat,
uploaded, and (fed in by automation) the tasks they completed on the topic, each reason cited.

Only evidence from rooms the asker may read is ever retrieved (`knowledge_scope` in the SQL of the
search, the same scope handed to later stages), so a person found only through a private room is no
expert to someone outside it: neither their reasons nor their name come back. The scoring itself is
`expert_ranking` (pure, shared with bench/experts.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q

from rooms.models import ChatMessage, display_name
from transcription.models import TranscriptSegment

from . import embeddings, signals
from .expert_ranking import (
    DEFAULT_WEIGHTS,
    SAID,
    UPLOADED,
    WROTE,
    Evidence,
    Expert,
    ScoringWeights,
    experts_rank,
    relevance_of,
    window_evidence,
)
from .models import Document, KnowledgeChunk
from .selectors import citation_target, knowledge_scope, knowledge_search_hybrid
from .transcript_text import clean_turn

logger = logging.getLogger(__name__)

EVIDENCE_DEPTH = 80  # chunks read per question: deep enough that a quiet expert's few turns are found
MAX_QUERY_CHARS = 300
SNIPPET_CHARS = 200
DEFAULT_LIMIT = 5


@dataclass
class ExpertFound:
    person: object  # the User
    score: float
    evidence_count: int
    reasons: list[dict]  # {"kind", "text", "label", "url", "room"}


def _snippet(text: str) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS - 1].rstrip() + "…"


def _cited(chunk: KnowledgeChunk) -> dict:
    return {**citation_target(chunk), "room": chunk.room_id}


def _segment_citation(segment: dict, room_id: int) -> dict:
    chunk = KnowledgeChunk(room_id=room_id, source_kind="transcript", locator={
        "meeting": segment["meeting_id"], "seq": segment["seq"], "speaker": segment["speaker_name"]})
    return _cited(chunk)


def _source_number(chunk: KnowledgeChunk, prefix: str) -> int | None:
    rest = chunk.source_id.removeprefix(prefix)
    return int(rest) if rest != chunk.source_id and rest.isdigit() else None


def _segments(where: Q) -> list[dict]:
    rows = TranscriptSegment.objects.filter(where).select_related("speaker__profile").defer("words")
    return [{"pk": s.pk, "meeting_id": s.meeting_id, "seq": s.seq, "text": clean_turn(s.text), "speaker_id": s.speaker_id,
             "speaker_name": display_name(s.speaker)} for s in rows]


def knowledge_evidence(hits: list[tuple[KnowledgeChunk, float]], *,
                       weights: ScoringWeights = DEFAULT_WEIGHTS) -> list[Evidence]:
    """Each retrieved chunk attributed to its person: a transcript turn to its speaker, a window to
    the speakers in it (by their words), a chat message to its author, a document page to whoever
    uploaded the document. Tickets name no one who knows: they are left out."""
    turns: dict[int, tuple[KnowledgeChunk, float]] = {}
    windows: list[tuple[KnowledgeChunk, float]] = []
    messages: dict[int, tuple[KnowledgeChunk, float]] = {}
    documents: dict[int, list[tuple[KnowledgeChunk, float]]] = {}
    for chunk, distance in hits:
        relevance = relevance_of(1.0 - distance, weights)
        if relevance <= 0:
            continue
        if chunk.source_kind == "transcript" and (pk := _source_number(chunk, "segment:")) is not None:
            turns[pk] = (chunk, relevance)
        elif chunk.source_kind == "transcript" and (chunk.locator or {}).get("seqs"):
            windows.append((chunk, relevance))
        elif chunk.source_kind == "chat" and (pk := _source_number(chunk, "message:")) is not None:
            messages[pk] = (chunk, relevance)
        elif chunk.source_kind == "document" and isinstance((chunk.locator or {}).get("document"), int):
            documents.setdefault(chunk.locator["document"], []).append((chunk, relevance))
    evidence: list[Evidence] = []
    if turns:
        for segment in _segments(Q(pk__in=list(turns))):
            chunk, relevance = turns[segment["pk"]]
            evidence.append(Evidence(person=segment["speaker_id"], kind=SAID, text=segment["text"] or chunk.text,
                                     relevance=relevance, key=f"segment:{segment['pk']}", citation=_cited(chunk)))
    if windows:
        where = Q(pk__in=[])
        for chunk, _ in windows:
            where |= Q(meeting_id=chunk.locator.get("meeting"), seq__in=chunk.locator["seqs"], room_id=chunk.room_id)
        by_meeting: dict[int, list[dict]] = {}
        for segment in _segments(where):
            by_meeting.setdefault(segment["meeting_id"], []).append(segment)
        for chunk, relevance in windows:
            seqs = set(chunk.locator["seqs"])
            in_window = [s for s in by_meeting.get(chunk.locator.get("meeting"), []) if s["seq"] in seqs]
            evidence += window_evidence(relevance, [
                (s["speaker_id"], s["text"], f"segment:{s['pk']}", _segment_citation(s, chunk.room_id))
                for s in sorted(in_window, key=lambda s: s["seq"])], window_key=chunk.source_id, weights=weights)
    if messages:
        for pk, author_id, body in ChatMessage.objects.filter(pk__in=list(messages)).values_list("pk", "author_id", "body"):
            chunk, relevance = messages[pk]
            evidence.append(Evidence(person=author_id, kind=WROTE, text=body, relevance=relevance,
                                     key=f"message:{pk}", citation=_cited(chunk)))
    if documents:
        uploaders = dict(Document.objects.filter(pk__in=list(documents)).values_list("pk", "uploaded_by_id"))
        for document_id, found in documents.items():
            if document_id not in uploaders:
                continue
            for chunk, relevance in found:
                text = chunk.text.split(": ", 1)[-1]  # "Title (page n): ..." -> the page's words
                evidence.append(Evidence(person=uploaders[document_id], kind=UPLOADED, text=text,
                                         relevance=relevance, key=chunk.source_id, citation=_cited(chunk)))
    return evidence


def later_stage_evidence(*, user, query: str, vector, room_ids: list[int],
                         weights: ScoringWeights = DEFAULT_WEIGHTS) -> list[Evidence]:
    """What later stages know about people and the topic (automation: completed tasks), asked with the
    same room scope. A receiver returns [{"person", "kind", "text", "similarity", "key", "citation"}];
    one that fails costs its evidence, not the answer."""
    evidence = []
    for receiver, found in signals.expert_evidence.send_robust(sender=experts_find, user=user, query=query,
                                                               vector=vector, room_ids=room_ids):
        if isinstance(found, Exception):
            logger.warning("expert evidence from %s failed: %s", receiver, found)
            continue
        for row in found or []:
            relevance = relevance_of(float(row["similarity"]), weights)
            if relevance > 0 and row.get("room") in room_ids:
                evidence.append(Evidence(person=row["person"], kind=row["kind"], text=row["text"], relevance=relevance,
                                         key=row["key"], citation={**row["citation"], "room": row["room"]}))
    return evidence


def experts_find(*, user, query: str, room_ids: list[int] | None = None, limit: int = DEFAULT_LIMIT,
                 weights: ScoringWeights = DEFAULT_WEIGHTS) -> list[ExpertFound]:
    """The people who know most about `query` among what `user` may read (`room_ids` narrows it;
    rooms the user may not read are ignored, as if they did not exist), best first."""
    query = (query or "").strip()[:MAX_QUERY_CHARS]
    if not query or user is None or not getattr(user, "is_authenticated", False):
        return []
    scope = knowledge_scope(user, room_ids)
    if not scope:
        return []
    vector = embeddings.embed([query])[0]
    hits = knowledge_search_hybrid(query=query, vector=vector, room_ids=scope, k=EVIDENCE_DEPTH, depth=EVIDENCE_DEPTH)
    evidence = knowledge_evidence(hits, weights=weights)
    evidence += later_stage_evidence(user=user, query=query, vector=vector, room_ids=scope, weights=weights)
    # Only active members can be asked (the office's own system user, deactivated people are left out).
    people = get_user_model().objects.filter(pk__in={e.person for e in evidence}, is_active=True).select_related("profile")
    people = {person.pk: person for person in people}
    ranked: list[Expert] = experts_rank([e for e in evidence if e.person in people], limit=limit, weights=weights)
    return [ExpertFound(person=people[expert.person], score=round(expert.score, 4), evidence_count=expert.evidence_count,
                        reasons=[{"kind": r.kind, "text": _snippet(r.text), "label": r.citation.get("label", ""),
                                  "url": r.citation.get("url", ""), "room": r.citation.get("room")}
                                 for r in expert.reasons])
            for expert in ranked]
