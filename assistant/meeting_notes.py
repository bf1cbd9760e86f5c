"""Live meeting notes: rolling summaries and action-item proposals from a meeting's transcript.

Both run in the background (Celery, `assistant.tasks`), read recorded segments, and store their
result before announcing it to the room. When no model answers, a deterministic fallback keeps the
notes going (marked `source="fallback"`) instead of leaving the sidebar empty.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from office.events import send_event_on_commit
from rooms.selectors import display_name
from rooms.services import SYSTEM_USERNAME
from transcription.models import Meeting, TranscriptSegment
from transcription.services import room_group

from . import candidate_ranker, extract, item_writer, llm, signals
from .models import ActionItem, AssistantVersion, MeetingSummary
from .prompts import prompt
from .selectors import action_item_payloads, summary_payload

logger = logging.getLogger(__name__)
User = get_user_model()

def _summary_schema(*, summary_chars: int, item_chars: int, items: int, topics: int) -> dict:
    def strings(max_chars, max_items):
        return {"type": "array", "items": {"type": "string", "maxLength": max_chars}, "maxItems": max_items}

    return {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "maxLength": summary_chars},
            "decisions": strings(item_chars, items),
            "open_questions": strings(item_chars, items),
            "topics": strings(60, topics),
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["summary", "decisions", "open_questions", "topics", "confidence"],
        "additionalProperties": False,
    }


SUMMARY_SCHEMA = _summary_schema(summary_chars=1200, item_chars=300, items=10, topics=8)
# The live notes are short by design: a tight schema bounds what a small model may generate on CPU
# (every character it may write costs time), so the refresh stays well inside its window.
ROLLING_SUMMARY_SCHEMA = _summary_schema(summary_chars=480, item_chars=140, items=4, topics=5)

def people_for(meeting: Meeting) -> extract.People:
    """Participants first (they win ambiguous first names), then the rest of the organisation."""
    participants = [p.user for p in meeting.participants.select_related("user__profile").order_by("joined_at")]
    others = User.objects.filter(is_active=True).exclude(username=SYSTEM_USERNAME).exclude(
        pk__in=[u.pk for u in participants]).select_related("profile")
    ordered = participants + list(others)
    return extract.People([extract.Person(id=u.pk, display_name=display_name(u), username=u.get_username())
                           for u in ordered])


def _lines(segments: list[TranscriptSegment], people: extract.People) -> list[extract.Line]:
    by_id = {p.id: p for p in people.people}
    return [
        extract.Line(number=i, segment_id=s.pk, speaker=by_id.get(s.speaker_id), text=s.text,
                     spoken=s.spoken_at.date())
        for i, s in enumerate(segments, start=1)
    ]


def _transcript_text(lines: list[extract.Line]) -> str:
    return "\n".join(f"[{line.number}] {line.speaker.display_name if line.speaker else 'Someone'}: {line.text}"
                     for line in lines)


# --- the background passes ---

def meeting_refresh(meeting: Meeting, *, client: llm.LLMClient | None = None) -> None:
    """While a meeting runs: a new rolling summary, and proposals from what was said since the last one."""
    last = meeting.summaries.filter(kind=MeetingSummary.Kind.ROLLING).order_by("-created_at").first()
    since_seq = last.through_seq if last else 0
    has_new = TranscriptSegment.objects.filter(meeting=meeting, seq__gt=since_seq).exists()
    summary_refresh(meeting, client=client)
    if has_new:
        action_items_propose(meeting, client=client, since_seq=since_seq)


def meeting_finalize(meeting: Meeting, *, client: llm.LLMClient | None = None) -> None:
    """After a meeting: the final summary, and proposals over the whole transcript (known ones are not repeated)."""
    summary_finalize(meeting, client=client)
    action_items_propose(meeting, client=client)
    try:
        shadow_propose(meeting)
    except Exception:  # a shadow ranker's run must never cost the meeting its notes
        logger.exception("shadow proposals for meeting %s failed", meeting.pk)


# --- summaries ---

def summary_refresh(meeting: Meeting, *, client: llm.LLMClient | None = None) -> MeetingSummary | None:
    """A rolling summary over the latest window, if anything was said since the last one."""
    last = meeting.summaries.filter(kind=MeetingSummary.Kind.ROLLING).order_by("-created_at").first()
    newest = TranscriptSegment.objects.filter(meeting=meeting).order_by("-seq").first()
    if newest is None or (last is not None and last.through_seq >= newest.seq):
        return None
    window_start = newest.spoken_at - dt.timedelta(seconds=settings.OFFICE_SUMMARY_WINDOW_SECONDS)
    segments = list(TranscriptSegment.objects.filter(meeting=meeting, spoken_at__gte=window_start)
                    .select_related("speaker__profile").order_by("seq"))
    people = people_for(meeting)
    lines = _lines(segments, people)
    previous = last.summary if last else "(none)"
    fields = _summarise(
        client, "summary", {"previous": previous, "transcript": _transcript_text(lines)},
        meeting=meeting, segment_ids=[s.pk for s in segments], people=people,
        fallback=lambda: _fallback_summary([s.text for s in segments]),
    )
    return _store_summary(meeting, MeetingSummary.Kind.ROLLING, fields, newest.seq, [s.pk for s in segments])


def summary_finalize(meeting: Meeting, *, client: llm.LLMClient | None = None) -> MeetingSummary | None:
    """Fold the rolling notes (and the tail after the last one) into the meeting's final summary."""
    if meeting.summaries.filter(kind=MeetingSummary.Kind.FINAL).exists():
        return meeting.summaries.get(kind=MeetingSummary.Kind.FINAL)
    summary_refresh(meeting, client=client)  # the tail since the last rolling summary
    rolling = list(meeting.summaries.filter(kind=MeetingSummary.Kind.ROLLING).order_by("created_at"))
    if not rolling:
        return None
    notes = "\n".join(
        f"- {r.summary} Decisions: {'; '.join(r.decisions) or 'none'}. Open: {'; '.join(r.open_questions) or 'none'}."
        for r in rolling
    )
    segment_ids = sorted({sid for r in rolling for sid in r.segment_ids})
    fields = _summarise(
        client, "final_summary", {"notes": notes[-6000:]}, meeting=meeting, segment_ids=segment_ids,
        people=people_for(meeting),
        fallback=lambda: {
            "summary": " ".join(r.summary for r in rolling[-3:])[:1200],
            "decisions": _unique(d for r in rolling for d in r.decisions),
            "open_questions": _unique(q for r in rolling for q in r.open_questions),
            "topics": _unique(t for r in rolling for t in r.topics)[:8],
        },
    )
    # Decisions and questions from every window stay, even if the fold dropped some.
    # What the decision ranker finds in the whole transcript comes first: the rolling notes saw one
    # minute at a time and a small model's fold of them loses what was settled early.
    fields["decisions"] = _unique([*decisions_from_transcript(meeting), *fields["decisions"],
                                   *(d for r in rolling for d in r.decisions)])[:15]
    fields["open_questions"] = _unique([*fields["open_questions"], *(q for r in rolling for q in r.open_questions)])[:15]
    return _store_summary(meeting, MeetingSummary.Kind.FINAL, fields, rolling[-1].through_seq, segment_ids)


MAX_RANKED_DECISIONS = 6  # notes are read by people: the strongest few, not every turn that sounds settled


def decisions_from_transcript(meeting: Meeting, *, ranker: candidate_ranker.Ranker | None = None) -> list[str]:
    """What the group decided, from the turns the decision ranker picks, the strongest first (no model:
    it runs at meeting end beside the final summary and costs about as much as embedding the turns)."""
    segments = list(TranscriptSegment.objects.filter(meeting=meeting).select_related("speaker__profile").order_by("seq"))
    if not segments:
        return []
    people = people_for(meeting)
    lines = _lines(segments, people)
    ranker = ranker or candidate_ranker.current("decisions")
    turns = [candidate_ranker.Turn(speaker=ln.speaker.display_name if ln.speaker else "", text=ln.text) for ln in lines]
    scores = ranker.score(turns, _ranker_names(people))
    chosen = sorted(ranker.select(scores), key=lambda i: -scores[i])[:MAX_RANKED_DECISIONS]
    written = item_writer.write_deterministic([(ln.speaker, ln.text) for ln in lines], chosen, [], kind="decisions")
    return _unique(w.text for w in written)


def _summarise(client, prompt_name, variables, *, meeting, segment_ids, people, fallback) -> dict:
    client = client or llm.get_client()
    summary_prompt = prompt(prompt_name)
    try:
        result = client.chat_json(
            prompt=summary_prompt, variables=variables,
            schema=ROLLING_SUMMARY_SCHEMA if prompt_name == "summary" else SUMMARY_SCHEMA,
            purpose=f"meeting.{prompt_name}", tier="small", room=meeting.room,
            input_ids={"meeting": meeting.pk, "segments": segment_ids},
            known_names=people.names(), max_tokens=260 if prompt_name == "summary" else 450,
        )
    except (llm.LLMUnavailable, llm.LLMOutputInvalid) as exc:
        logger.warning("summary for meeting %s from the fallback: %s", meeting.pk, exc)
        return {**fallback(), "source": "fallback", "model_call": None}
    data = result.data
    # Small models copy the prompt's own example or instructions: such words are not notes of this meeting.
    static = summary_prompt.system + "\n" + summary_prompt.user
    if item_writer.echoes_prompt(data["summary"], static):
        logger.warning("summary for meeting %s echoed its prompt: the fallback instead", meeting.pk)
        return {**fallback(), "source": "fallback", "model_call": result.call}

    def kept(values):
        return _unique(v for v in values if not item_writer.echoes_prompt(str(v), static))

    return {
        "summary": data["summary"].strip(), "decisions": kept(data["decisions"]),
        "open_questions": kept(data["open_questions"]), "topics": kept(data["topics"]),
        "source": "model", "model_call": result.call,
    }


def _store_summary(meeting, kind, fields, through_seq, segment_ids) -> MeetingSummary:
    try:
        with transaction.atomic():
            summary = MeetingSummary.objects.create(meeting=meeting, kind=kind, through_seq=through_seq,
                                                    segment_ids=segment_ids, **fields)
            send_event_on_commit(room_group(meeting.room_id), {"type": "assistant.summary",
                                                               "summary": summary_payload(summary)})
    except IntegrityError:  # a concurrent finaliser won
        return MeetingSummary.objects.get(meeting=meeting, kind=kind)
    return summary


def _unique(values) -> list[str]:
    seen, out = set(), []
    for value in values:
        value = str(value).strip()
        key = value.lower()
        if value and key not in seen:
            seen.add(key)
            out.append(value)
    return out


_DECISION = re.compile(r"\b(?:we (?:decided|agreed|will go with|are going with)|decision is|let's go with|agreed)\b", re.I)


def _fallback_summary(texts: list[str]) -> dict:
    """Extractive notes: first sentences, decision phrases, questions, frequent words as topics."""
    sentences = [s.strip() for t in texts for s in re.split(r"(?<=[.?!])\s+", t) if s.strip()]
    words = re.findall(r"[a-z]{5,}", " ".join(texts).lower())
    common = {"about", "there", "their", "would", "could", "should", "which", "think", "going", "really", "right"}
    counts: dict[str, int] = {}
    for w in words:
        if w not in common:
            counts[w] = counts.get(w, 0) + 1
    return {
        "summary": " ".join(sentences[:3])[:1200] or "Nothing was said yet.",
        "decisions": _unique(s for s in sentences if _DECISION.search(s))[:5],
        "open_questions": _unique(s for s in sentences if s.endswith("?"))[:5],
        "topics": [w for w, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:4]],
    }


# --- action items ---

def action_items_propose(
    meeting: Meeting, *, client: llm.LLMClient | None = None, use_model: bool = True, since_seq: int = 0,
    ranker: candidate_ranker.Ranker | None = None, writer: str | None = None,
) -> list[ActionItem]:
    """Propose action items from a meeting's transcript; returns the new proposals.

    The whole transcript is ranked; with `since_seq` only turns said after it are proposed (the live
    pass). Owners are only people we know (participants, then org members); a task already proposed
    in this meeting is not proposed again; nothing is done with a proposal until a participant
    approves it.
    """
    segments = list(TranscriptSegment.objects.filter(meeting=meeting).select_related("speaker__profile").order_by("seq"))
    if not segments:
        return []
    people = people_for(meeting)
    lines = _lines(segments, people)
    only_lines = {ln.number for ln, s in zip(lines, segments, strict=True) if s.seq > since_seq} if since_seq else None
    candidates, calls, ranker_label = extract_candidates(lines, people, meeting=meeting, client=client,
                                                         use_model=use_model, ranker=ranker, only_lines=only_lines,
                                                         writer=writer)
    participants = {p.user_id for p in meeting.participants.all()}
    known = list(ActionItem.objects.filter(meeting=meeting, shadow=False).values_list("text", "owner_id"))
    created = []
    with transaction.atomic():
        for candidate in candidates:
            owner_id = candidate.owner.id if candidate.owner else None
            if any(extract.same_task(text, candidate.text) and owner in (owner_id, None) for text, owner in known):
                continue
            item = _store_item(meeting, candidate, lines, calls, participants, people, ranker_label)
            if item is not None:
                created.append(item)
        for payload in action_item_payloads(created):
            send_event_on_commit(room_group(meeting.room_id), {"type": "assistant.action_item", "item": payload})
    return created


def _ranker_names(people: extract.People) -> list[str]:
    return [n for p in people.people for n in {p.display_name, p.first_name, p.username} if n]


def extract_candidates(lines, people, *, meeting=None, client=None, use_model=True, ranker=None,
                       only_lines: set[int] | None = None, writer: str | None = None):
    """The turns worth writing up (the ranker's choice, plus explicit dated or named requests), written
    as items; returns (candidates, model calls made, the ranker version that chose them).

    `only_lines` limits the proposals to those line numbers: the live pass, what was said since the last
    one. The ranker reads where a turn sits in the meeting (wrap-ups come last), which is unknown while
    it runs, so live proposals are only the explicit ones; the end-of-meeting pass ranks everything."""
    # "Bob, can you fix it by Wednesday?", "we need to book a venue by next week": an explicit request
    # to a named person, or a commitment with a date.
    explicit = [c for c in extract.rule_candidates(lines, people)
                if c.due is not None or (c.owner is not None and c.confidence >= 0.8)]
    if only_lines is not None:
        live = [extract.Candidate(**{**c.__dict__, "sources": {"rules"}}) for c in explicit if set(c.lines) & only_lines]
        return consolidate(live), [], ""
    ranker = ranker or candidate_ranker.current("action_items")
    turns = [candidate_ranker.Turn(speaker=ln.speaker.display_name if ln.speaker else "", text=ln.text) for ln in lines]
    scores = ranker.score(turns, _ranker_names(people))
    chosen = set(ranker.select(scores)) | {c.lines[0] - 1 for c in explicit}
    chosen = sorted(chosen)
    if not chosen:
        return [], [], ranker.label
    turn_pairs = [(ln.speaker, ln.text) for ln in lines]
    participants = [p for p in people.people if meeting is None or p.id in _participant_ids(meeting)] or people.people
    writer = writer or settings.OFFICE_ACTION_ITEM_WRITER
    written, calls = None, []
    if use_model and writer == "model":
        written, call = _write_with_model(client, turn_pairs, chosen, participants, lines=lines, meeting=meeting)
        calls = [call] if call is not None else []
    if written is None:
        written = item_writer.write_deterministic(turn_pairs, chosen, participants)
    covered = {n for c in explicit for n in c.lines}
    candidates = [extract.Candidate(**{**c.__dict__, "confidence": max(c.confidence, float(scores[c.lines[0] - 1])),
                                       "sources": {"rules"}}) for c in explicit]
    for w in written:
        line = lines[w.line]
        if line.number in covered:
            continue  # the explicit request says it better (its owner and date were resolved from the words)
        due, due_text = extract.parse_due(line.text, line.spoken)
        candidates.append(extract.Candidate(
            text=w.text[:200], owner=w.owner, due=due, due_text=due_text, lines=[line.number],
            confidence=round(float(scores[w.line]), 3), sources={"model" if calls else "ranker"}))
    return consolidate(candidates), calls, ranker.label


def consolidate(candidates: list[extract.Candidate]) -> list[extract.Candidate]:
    """One proposal per task: the same task for the same owner (or for nobody) said twice is merged."""
    kept: list[extract.Candidate] = []
    for candidate in sorted(candidates, key=lambda c: -c.confidence):
        twin = next((k for k in kept if extract.same_task(k.text, candidate.text)
                     and (k.owner == candidate.owner or candidate.owner is None)), None)
        if twin is None:
            kept.append(candidate)
        else:
            twin.lines = sorted(set(twin.lines) | set(candidate.lines))
    return sorted(kept, key=lambda c: c.lines[0])


def _participant_ids(meeting) -> set[int]:
    return set(meeting.participants.values_list("user_id", flat=True))


def _write_with_model(client, turns, chosen, owners, *, lines, meeting):
    """The model writes the items for the chosen turns only; None when it gave nothing usable."""
    client = client or llm.get_client()
    action_prompt = prompt("action_items")
    try:
        result = client.chat_json(
            prompt=action_prompt,
            variables={"people": ", ".join(p.display_name for p in owners),
                       "turns": item_writer.turns_text(turns, chosen)},
            schema=item_writer.items_schema(list(range(1, len(chosen) + 1)), [p.display_name for p in owners]),
            purpose="meeting.action_items", tier="large", room=meeting.room if meeting else None,
            input_ids={"meeting": meeting.pk if meeting else None, "segments": [lines[i].segment_id for i in chosen]},
            known_names=[p.display_name for p in owners], max_tokens=60 + 60 * len(chosen),
        )
    except (llm.LLMUnavailable, llm.LLMOutputInvalid) as exc:
        logger.warning("action items written without the model: %s", exc)
        return None, None
    return item_writer.from_model(result.data, turns, chosen, owners, prompt_text=action_prompt.system), result.call


def _store_item(meeting, candidate, lines, calls, participants, people, ranker_label) -> ActionItem | None:
    by_number = {line.number: line for line in lines}
    evidence = [by_number[n] for n in candidate.lines if n in by_number]
    owner_id = candidate.owner.id if candidate.owner else None
    reason = ""
    if owner_id is None:
        pass  # later stages may suggest one (signals.action_item_proposed)
    elif candidate.owner.id in participants:
        reason = f"{candidate.owner.display_name} took it on in the meeting"
    else:
        reason = f"{candidate.owner.display_name} was named in the meeting"
    call = calls[-1] if ("model" in candidate.sources and calls) else None
    key = extract.dedupe_key(candidate.text)
    if ActionItem.objects.filter(room_id=meeting.room_id, meeting=meeting, dedupe_key=key, shadow=False).exists():
        return None
    try:
        with transaction.atomic():
            item = ActionItem.objects.create(
                room_id=meeting.room_id, meeting=meeting, text=candidate.text, owner_id=owner_id,
                owner_reason=reason, due_date=candidate.due,
                due_text=candidate.due_text[:80], confidence=round(candidate.confidence, 3),
                source_segment_ids=[ln.segment_id for ln in evidence],
                speaker_id=evidence[0].speaker.id if evidence and evidence[0].speaker else None,
                model_id=call.model_id if call else "rules",
                prompt_version=f"{call.prompt_name}.{call.prompt_version}" if call else "rules.v2",
                model_call=call, dedupe_key=key, ranker_version=ranker_label,
            )
            if owner_id is None:
                _announce_ownerless_proposal(item, participants)
            return item
    except IntegrityError:
        return None


def _announce_ownerless_proposal(item: ActionItem, participant_ids: set[int]) -> None:
    """Let later stages suggest an owner (automation asks the calendars who is free before the due
    date). A failing receiver must not lose the proposal: it is logged and the item kept."""
    for receiver_fn, result in signals.action_item_proposed.send_robust(
            sender=ActionItem, item=item, participant_ids=set(participant_ids)):
        if isinstance(result, Exception):
            logger.error("owner suggestion by %s failed: %r", getattr(receiver_fn, "__qualname__", receiver_fn), result)


# --- shadow rankers (assistant/registry.py puts a version in shadow) ---

# Kinds whose shadow runs store proposals (decisions are only listed in notes, never stored as items).
SHADOW_KINDS = ("action_items",)


def shadow_propose(meeting: Meeting) -> int:
    """Run each shadow ranker over a finished meeting and store its proposals as shadow items (rules
    writer, no model call; never announced, never listed). Returns how many were stored."""
    stored = 0
    for kind in SHADOW_KINDS:
        row = AssistantVersion.objects.filter(kind=kind, stage=AssistantVersion.Stage.SHADOW).first()
        if row is None:
            continue
        ranker = candidate_ranker.load(kind, row.version)
        segments = list(TranscriptSegment.objects.filter(meeting=meeting).select_related("speaker__profile")
                        .order_by("seq"))
        if not segments:
            continue
        people = people_for(meeting)
        lines = _lines(segments, people)
        candidates, _calls, label = extract_candidates(lines, people, meeting=meeting,
                                                                     use_model=False, ranker=ranker)
        by_number = {line.number: line for line in lines}
        items = []
        for c in candidates:
            evidence = [by_number[n] for n in c.lines if n in by_number]
            items.append(ActionItem(
                room_id=meeting.room_id, meeting=meeting, text=c.text, owner_id=c.owner.id if c.owner else None,
                due_date=c.due, due_text=c.due_text[:80], confidence=round(c.confidence, 3),
                source_segment_ids=[ln.segment_id for ln in evidence],
                speaker_id=evidence[0].speaker.id if evidence and evidence[0].speaker else None,
                model_id="rules", prompt_version="rules.v2", dedupe_key=extract.dedupe_key(c.text),
                ranker_version=label, shadow=True,
            ))
        # A second finalisation stores nothing twice: the (room, meeting, dedupe_key, shadow) constraint.
        stored += len(ActionItem.objects.bulk_create(items, ignore_conflicts=True))
    return stored
