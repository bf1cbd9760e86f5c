"""Questions answered from a room's knowledge with numbered citations, and "catch me up".

Retrieval goes through `room_knowledge_search`, which only ever considers rooms the asker may read,
so the model never sees (and cannot cite) anything the asker could not open. The model's citations
are checked against the sources it was given; an answer without a valid citation is "not found".
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from django.db.models import Count, Max
from django.utils import timezone

from rooms.models import ChatMessage, ChatThread, Room, RoomVisit
from rooms.selectors import display_name, user_can_enter_room
from transcription.models import Meeting

from . import embeddings, llm
from .item_writer import echoes_prompt
from .models import Document, KnowledgeChunk, MeetingSummary
from .prompts import prompt
from .selectors import (
    action_item_payloads,
    action_items_in_room,
    citation_target,
    closest_turn_in_window,
    knowledge_scope,
    knowledge_search_hybrid,
    summary_payload,
)

logger = logging.getLogger(__name__)

NOT_FOUND = "I could not find this in what this room knows."
MAX_DISTANCE = 0.75  # cosine distance above which a chunk is not about the question at all
SOURCES = 5
SOURCE_CHARS = 700  # a window of turns, shortened: prompt tokens are the answer's cost on a CPU
MAX_QUESTION_CHARS = 500

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 800},
        "citations": {"type": "array", "items": {"type": "integer"}, "maxItems": 6},
        "found": {"type": "boolean"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["answer", "citations", "found", "confidence"],
    "additionalProperties": False,
}


class SemanticCache:
    """Answers to questions asked before over the same scope and the same knowledge.

    A hit needs the same rooms, no chunk added or deleted since (the scope's newest chunk id and
    chunk count), and a question whose embedding is within `threshold` cosine similarity of the
    cached one.
    """

    def __init__(self, size: int = 256, threshold: float = 0.95):
        self.size, self.threshold = size, threshold
        self.entries: OrderedDict[tuple, list[tuple[np.ndarray, dict]]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, scope: tuple, vector: np.ndarray) -> dict | None:
        with self.lock:
            for cached_vector, answer in self.entries.get(scope, []):
                if float(np.dot(cached_vector, vector)) >= self.threshold:
                    self.entries.move_to_end(scope)
                    return answer
        return None

    def put(self, scope: tuple, vector: np.ndarray, answer: dict) -> None:
        with self.lock:
            bucket = self.entries.setdefault(scope, [])
            bucket.append((vector, answer))
            del bucket[:-20]
            self.entries.move_to_end(scope)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


answer_cache = SemanticCache()

# Retrieval (embedding the question, the hybrid search; a catch-up's gathering) is CPU work under the
# GIL: twenty people asking at once in one Daphne process slowed every other request with it (probe p95
# 450 ms, bench/ask_load.py). Streams take turns here, one at a time (the work is CPU-bound, taking turns
# costs them nothing overall); the model's reply, mostly waiting, streams to everyone at once.
_retrieval_turns = threading.BoundedSemaphore(1)


def answer_question(*, user, question: str, room_id: int | None = None, client: llm.LLMClient | None = None) -> dict:
    """Answer from the knowledge of `room_id` (or every room the user may read) with citations."""
    asking = _retrieve(user=user, question=question, room_id=room_id)
    if asking.early is not None:
        return asking.early
    try:
        response = (client or llm.get_client()).chat_json_tiered(**_model_request(asking))
    except (llm.LLMUnavailable, llm.LLMOutputInvalid) as exc:
        return _unavailable_answer(asking, exc)
    return _model_answer(asking, response)


def answer_question_stream(*, user, question: str, room_id: int | None = None,
                           client: llm.LLMClient | None = None) -> Iterator[dict]:
    """`answer_question` as events, so the answer's first words can be shown while the model writes:
    `sources` {count} once retrieval is done, `delta` {text} pieces of the answer as written, then
    `done` with exactly what `answer_question` returns (or `error` {message} for a bad question).

    The small tier only: escalating would mean taking back words already shown. The deltas are the
    model's raw text; `done` is the checked answer (citations validated, not-found and echo rules).
    """
    try:
        with _retrieval_turns:
            asking = _retrieve(user=user, question=question, room_id=room_id)
    except (ValueError, LookupError) as exc:
        yield {"type": "error", "message": str(exc)}
        return
    if asking.early is not None:  # cached, or nothing near enough to ask a model about
        yield {"type": "sources", "count": len(asking.early["citations"])}
        yield {"type": "done", **asking.early}
        return
    yield {"type": "sources", "count": len(asking.sources)}
    answer_text = llm.JsonFieldStream("answer")
    response = None
    try:
        for piece in (client or llm.get_client()).chat_json_stream(tier="small", **_model_request(asking)):
            if isinstance(piece, llm.LLMResult):
                response = piece
            elif text := answer_text.feed(piece):
                yield {"type": "delta", "text": text}
    except (llm.LLMUnavailable, llm.LLMOutputInvalid) as exc:
        yield {"type": "done", **_unavailable_answer(asking, exc)}
        return
    yield {"type": "done", **_model_answer(asking, response)}


def question_checked(*, user, question: str, room_id: int | None = None) -> tuple[str, list[int]]:
    """The question with its spaces tidied, and the ids of the rooms it may search.

    Raises ValueError (empty or too long) or LookupError (a room the user may not read, or none)."""
    question = re.sub(r"\s+", " ", str(question or "")).strip()
    if not question:
        raise ValueError("ask a question")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"questions are at most {MAX_QUESTION_CHARS} characters")
    scope_ids = knowledge_scope(user, [room_id] if room_id is not None else None)
    if not scope_ids:
        raise LookupError("no such room")
    return question, scope_ids


@dataclass
class _Asking:
    """A question after retrieval: its sources, or already its answer (`early`) when no model is needed."""

    question: str
    room_id: int | None
    scope_ids: list[int]
    vector: np.ndarray
    scope_key: tuple
    sources: list[dict] = field(default_factory=list)
    early: dict | None = None


def _retrieve(*, user, question: str, room_id: int | None) -> _Asking:
    question, scope_ids = question_checked(user=user, question=question, room_id=room_id)
    vector = embeddings.embed([question])[0]
    # The scope's knowledge version: a new chunk raises the newest id, a deleted one (retention,
    # erasure) lowers the count, so an answer citing what is gone is never served from the cache.
    version = KnowledgeChunk.objects.filter(room_id__in=scope_ids).aggregate(newest=Max("id"), count=Count("id"))
    asking = _Asking(question=question, room_id=room_id, scope_ids=scope_ids, vector=vector,
                     scope_key=(tuple(scope_ids), version["newest"] or 0, version["count"]))
    cached = answer_cache.get(asking.scope_key, vector)
    if cached is not None:
        asking.early = {**cached, "cached": True}
        return asking
    hits = [(c, d) for c, d in knowledge_search_hybrid(query=question, vector=vector, room_ids=scope_ids, k=SOURCES)
            if d <= MAX_DISTANCE]
    if not hits:
        asking.early = _result(NOT_FOUND, found=False, citations=[], sources=[])
        answer_cache.put(asking.scope_key, vector, asking.early)
        return asking
    asking.sources = [{"n": i, "chunk": c, "distance": d, "cite": _citable(c, vector)}
                      for i, (c, d) in enumerate(hits, start=1)]
    return asking


def _model_request(asking: _Asking) -> dict:
    """The arguments of the model call that answers `asking` (streamed or not)."""
    return {
        "prompt": prompt("answer"),
        "variables": {"question": asking.question,
                      "sources": "\n".join(f"[{s['n']}] {s['chunk'].text[:SOURCE_CHARS]}" for s in asking.sources)},
        "schema": ANSWER_SCHEMA, "purpose": "knowledge.answer",
        "room": Room.objects.filter(pk=asking.room_id).first() if asking.room_id else None,
        "input_ids": {"chunks": [s["chunk"].pk for s in asking.sources], "rooms": asking.scope_ids},
        "known_names": [], "max_tokens": 250,
    }


def _model_answer(asking: _Asking, response: llm.LLMResult) -> dict:
    """The model's reply, checked: only citations of the given sources, else "not found"; then cached."""
    data, sources = response.data, asking.sources
    answer_prompt = prompt("answer")
    valid = [n for n in dict.fromkeys(data["citations"]) if 1 <= n <= len(sources)]
    # Citations written inline ("[2]") count too; anything else is dropped.
    valid += [int(n) for n in re.findall(r"\[(\d+)\]", data["answer"])
              if 1 <= int(n) <= len(sources) and int(n) not in valid]
    # An answer copied from the prompt's own example or instructions says nothing about these sources.
    echoed = echoes_prompt(data["answer"], answer_prompt.system + "\n" + answer_prompt.user)
    if not data["found"] or not valid or echoed:
        result = _result(NOT_FOUND, found=False, citations=[], sources=[], model_call=response.call)
    else:
        answer = re.sub(r"\[(\d+)\]", lambda m: m.group() if int(m.group(1)) in valid else "", data["answer"]).strip()
        result = _result(answer, found=True, citations=valid, sources=sources, model_call=response.call,
                         confidence=data["confidence"])
    answer_cache.put(asking.scope_key, asking.vector, result)
    return result


def _unavailable_answer(asking: _Asking, exc: Exception) -> dict:
    """No usable model reply: the closest passage, said plainly (not cached: the model may be back soon)."""
    logger.warning("answer from the extractive fallback: %s", exc)
    best = asking.sources[0]
    return _result(
        f"The assistant is unavailable right now; the closest passage is [1]: {best['chunk'].text[:300]}",
        found=True, citations=[1], sources=asking.sources, unavailable=True,
    )


def _citable(chunk, vector):
    """What a source is cited as: a transcript window by its turn nearest the question, anything else itself."""
    if (chunk.locator or {}).get("window"):
        return closest_turn_in_window(chunk, vector) or chunk
    return chunk


def _result(answer, *, found, citations, sources, model_call=None, confidence=None, unavailable=False) -> dict:
    by_n = {s["n"]: {**s, "chunk": s.get("cite") or s["chunk"]} for s in sources}
    return {
        "answer": answer,
        "found": found,
        "unavailable": unavailable,
        "confidence": confidence,
        "citations": [
            {"n": n, "kind": by_n[n]["chunk"].source_kind, "room": by_n[n]["chunk"].room_id,
             "text": by_n[n]["chunk"].text[:400], "locator": by_n[n]["chunk"].locator,
             **citation_target(by_n[n]["chunk"])}
            for n in citations if n in by_n
        ],
        "model_call": model_call.pk if model_call else None,
        "cached": False,
    }


# --- catch me up ---

CATCH_UP_SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "maxLength": 1200},
        "highlights": {"type": "array", "items": {"type": "integer"}, "maxItems": 8},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["summary", "highlights", "confidence"],
    "additionalProperties": False,
}


def catch_up(*, user, room: Room, client: llm.LLMClient | None = None, use_model: bool = True) -> dict:
    """What happened in a room since the user last left it: meetings, decisions, items, chat, files."""
    gathered = _catch_up_gathered(user=user, room=room)
    result = _catch_up_without_model(gathered)
    if not gathered.events or not use_model:
        return result
    try:
        response = (client or llm.get_client()).chat_json(**_catch_up_model_request(gathered))
    except (llm.LLMUnavailable, llm.LLMOutputInvalid) as exc:
        return _catch_up_unavailable(result, exc)
    return _catch_up_from_model(gathered, result, response)


def catch_up_stream(*, user, room: Room, client: llm.LLMClient | None = None) -> Iterator[dict]:
    """`catch_up` as events, so the page shows what happened at once and the summary as it is written:
    `events` {what `catch_up` gives without a model: the events and the counted summary}, `delta` {text}
    pieces of the model's summary, then `done` with exactly what `catch_up` returns (or `error`)."""
    try:
        with _retrieval_turns:
            gathered = _catch_up_gathered(user=user, room=room)
    except PermissionError as exc:
        yield {"type": "error", "message": str(exc)}
        return
    result = _catch_up_without_model(gathered)
    yield {"type": "events", **result}
    if not gathered.events:
        yield {"type": "done", **result}
        return
    summary_text = llm.JsonFieldStream("summary")
    response = None
    try:
        for piece in (client or llm.get_client()).chat_json_stream(**_catch_up_model_request(gathered)):
            if isinstance(piece, llm.LLMResult):
                response = piece
            elif text := summary_text.feed(piece):
                yield {"type": "delta", "text": text}
    except (llm.LLMUnavailable, llm.LLMOutputInvalid) as exc:
        yield {"type": "done", **_catch_up_unavailable(result, exc)}
        return
    yield {"type": "done", **_catch_up_from_model(gathered, result, response)}


@dataclass
class _CatchingUp:
    """A room's events since the user's last visit, numbered, before any model call."""

    room: Room
    since: dt.datetime
    events: list[dict]


def _catch_up_gathered(*, user, room: Room) -> _CatchingUp:
    if not user_can_enter_room(user, room):
        raise PermissionError("you cannot enter this room")
    last_visit = RoomVisit.objects.filter(user=user, room=room, left_at__isnull=False).order_by("-left_at").first()
    since = last_visit.left_at if last_visit else timezone.now() - dt.timedelta(days=7)
    events: list[dict] = []
    meetings = Meeting.objects.filter(room=room, started_at__gte=since).order_by("started_at")
    for meeting in meetings:
        summary = (meeting.summaries.filter(kind=MeetingSummary.Kind.FINAL).first()
                   or meeting.summaries.filter(kind=MeetingSummary.Kind.ROLLING).order_by("-created_at").first())
        events.append({"kind": "meeting", "at": meeting.started_at.isoformat(), "meeting": meeting.pk,
                       "text": f"Meeting: {summary.summary}" if summary else "A meeting took place (no notes yet).",
                       "summary": summary_payload(summary) if summary else None, "url": f"/meetings/{meeting.pk}/"})
    items = list(action_items_in_room(room).filter(created_at__gte=since))
    for item, payload in zip(items, action_item_payloads(items), strict=True):
        owner = display_name(item.owner) if item.owner else "unassigned"
        events.append({"kind": "action_item", "at": item.created_at.isoformat(), "item": payload,
                       "text": f"Action item ({item.status}): {item.text} — {owner}"})
    thread = ChatThread.objects.filter(kind=ChatThread.Kind.ROOM, room=room).first()
    if thread is not None:
        messages = list(ChatMessage.objects.filter(thread=thread, created_at__gte=since)
                        .select_related("author__profile").order_by("-seq")[:30])[::-1]
        for m in messages:
            events.append({"kind": "chat", "at": m.created_at.isoformat(),
                           "text": f"{display_name(m.author)} wrote: {m.body[:300]}",
                           "url": f"/?room={room.pk}#chat-{thread.pk}-{m.seq}"})
    for document in Document.objects.filter(room=room, created_at__gte=since).defer("content"):
        events.append({"kind": "document", "at": document.created_at.isoformat(),
                       "text": f"New document: {document.title}", "url": f"/documents/{document.pk}/"})
    events.sort(key=lambda e: e["at"])
    for n, event in enumerate(events, start=1):
        event["n"] = n
    return _CatchingUp(room=room, since=since, events=events)


def _catch_up_without_model(gathered: _CatchingUp) -> dict:
    """The catch-up counted from the events alone (or "nothing happened"): what the page shows first,
    and the answer whenever no model is used or none answers."""
    events = gathered.events
    result = {"room": gathered.room.pk, "since": gathered.since.isoformat(), "events": events, "summary": "",
              "highlights": [], "source": "none", "unavailable": False}
    if not events:
        return {**result, "summary": "Nothing happened here since you were last in this room."}
    counts = {kind: sum(1 for e in events if e["kind"] == kind) for kind in ("meeting", "action_item", "chat", "document")}
    parts = [f"{counts['meeting']} meeting(s)", f"{counts['action_item']} action item(s)",
             f"{counts['chat']} chat message(s)", f"{counts['document']} new document(s)"]
    return {**result, "summary": "Since you left: " + ", ".join(parts) + ".", "source": "fallback",
            "highlights": [e["n"] for e in events if e["kind"] in ("meeting", "action_item")][:8]}


def _catch_up_model_request(gathered: _CatchingUp) -> dict:
    """The arguments of the model call that summarises the events (streamed or not)."""
    events, room = gathered.events, gathered.room
    return {
        "prompt": prompt("catch_up"),
        "variables": {"room": room.name, "since": gathered.since.strftime("%Y-%m-%d %H:%M UTC"),
                      "events": "\n".join(f"[{e['n']}] {e['text']}" for e in events)[-6000:]},
        "schema": CATCH_UP_SCHEMA, "purpose": "room.catch_up", "tier": "small", "room": room,
        "input_ids": {"events": [[e["kind"], e.get("meeting") or e.get("item", {}).get("id")] for e in events]},
        "max_tokens": 300,
    }


def _catch_up_from_model(gathered: _CatchingUp, counted: dict, response: llm.LLMResult) -> dict:
    return {**counted, "summary": response.data["summary"], "source": "model",
            "highlights": [n for n in response.data["highlights"] if 1 <= n <= len(gathered.events)]}


def _catch_up_unavailable(counted: dict, exc: Exception) -> dict:
    logger.warning("catch-up from the fallback: %s", exc)
    return {**counted, "unavailable": True}
