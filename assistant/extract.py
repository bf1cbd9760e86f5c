"""Deterministic reading of meeting text: who is who, due dates, and commitment phrases.

Small local models write fluent JSON but pick owners and deadlines badly, so the parts that must be
right are decided here, in code that can be tested: owners are resolved only against the people we
know (never invented), due dates are parsed from the words relative to when they were spoken, and a
rule-based pass finds explicit commitments ("I'll send...", "Bob, can you...") that the model's
proposals are merged with.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]


@dataclass(frozen=True)
class Person:
    id: int
    display_name: str
    username: str

    @property
    def first_name(self) -> str:
        return self.display_name.split()[0] if self.display_name else self.username


class People:
    """Name → person lookup over a known set (participants first, then org members)."""

    def __init__(self, people: list[Person]):
        self.people = people
        self._index: dict[str, Person | None] = {}
        for person in people:
            for key in {person.display_name.lower(), person.username.lower(), person.first_name.lower()}:
                if not key:
                    continue
                # A first name two people share is ambiguous: it resolves to nobody.
                if key in self._index and self._index[key] is not person:
                    self._index[key] = None
                else:
                    self._index[key] = person

    def resolve(self, name: str | None) -> Person | None:
        if not name:
            return None
        key = re.sub(r"[^\w\s'-]", "", name).strip().lower()
        if key in {"", "unassigned", "none", "nobody", "someone", "everyone", "all", "we", "team"}:
            return None
        if key in self._index:
            return self._index[key]
        first = key.split()[0]
        if len(key.split()) > 1 and first in self._index:
            candidate = self._index[first]
            # "Bob Baker" → bob only when the surname also matches (no invented "Bob Smith").
            if candidate is not None and candidate.display_name.lower() == key:
                return candidate
        return None

    def mentioned_in(self, text: str) -> list[Person]:
        found = []
        lowered = text.lower()
        for key, person in self._index.items():
            if person is not None and person not in found and re.search(rf"\b{re.escape(key)}\b", lowered):
                found.append(person)
        return found

    def names(self) -> list[str]:
        return [p.display_name for p in self.people]


# --- due dates ---

DUE_PATTERN = re.compile(
    r"\b(?:by|before|until|due|on|for|no later than)?\s*"
    r"(?P<due>(?:end of (?:the )?(?:day|week|month|sprint|quarter))|eod|eow|tonight|today|tomorrow|"
    r"next week|next month|this week|"
    r"(?:next |this )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december)\s+\d{1,2}(?:st|nd|rd|th)?|"
    r"\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:january|february|march|april|may|june|july|august|september|october|november|december)|"
    r"\d{4}-\d{2}-\d{2})\b",
    re.IGNORECASE,
)


def parse_due(text: str, spoken: dt.date) -> tuple[dt.date | None, str]:
    """The first deadline phrase in `text` as a date relative to `spoken`, and the words used."""
    for match in DUE_PATTERN.finditer(text):
        words = match.group("due").lower().strip()
        date = due_words_to_date(words, spoken)
        if date is not None:
            return date, match.group("due")
    return None, ""


def due_words_to_date(words: str, spoken: dt.date) -> dt.date | None:
    words = words.lower().strip()
    if not words:
        return None
    if words in ("today", "tonight", "eod", "end of day", "end of the day"):
        return spoken
    if words == "tomorrow":
        return spoken + dt.timedelta(days=1)
    if words in ("eow", "end of week", "end of the week", "this week"):
        return spoken + dt.timedelta(days=(4 - spoken.weekday()) % 7)
    if words == "next week":
        return spoken + dt.timedelta(days=7 - spoken.weekday())  # next Monday
    if words in ("end of month", "end of the month", "next month"):
        first_next = (spoken.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        return first_next - dt.timedelta(days=1) if "end" in words else first_next
    if words in ("end of sprint", "end of the sprint"):
        return spoken + dt.timedelta(days=14)
    if words in ("end of quarter", "end of the quarter"):
        month = ((spoken.month - 1) // 3 + 1) * 3
        nxt = dt.date(spoken.year + (month == 12), month % 12 + 1, 1)
        return nxt - dt.timedelta(days=1)
    m = re.fullmatch(r"(next |this )?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)", words)
    if m:
        target = WEEKDAYS.index(m.group(2))
        ahead = (target - spoken.weekday()) % 7
        if ahead == 0:
            ahead = 7
        return spoken + dt.timedelta(days=ahead)
    m = re.fullmatch(r"(\w+)\s+(\d{1,2})(?:st|nd|rd|th)?", words) or None
    if m and m.group(1) in MONTHS:
        return _month_day(spoken, MONTHS.index(m.group(1)) + 1, int(m.group(2)))
    m = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(\w+)", words)
    if m and m.group(2) in MONTHS:
        return _month_day(spoken, MONTHS.index(m.group(2)) + 1, int(m.group(1)))
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", words)
    if m:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None
    return None


def _month_day(spoken: dt.date, month: int, day: int) -> dt.date | None:
    try:
        date = dt.date(spoken.year, month, day)
    except ValueError:
        return None
    if date < spoken - dt.timedelta(days=30):  # "January 5" said in December means next year
        date = date.replace(year=date.year + 1)
    return date


# --- commitments ---

@dataclass
class Line:
    """One transcript segment as the extractors see it."""

    number: int  # position in the prompt (1-based)
    segment_id: int
    speaker: Person | None
    text: str
    spoken: dt.date


@dataclass
class Candidate:
    text: str
    owner: Person | None
    due: dt.date | None
    due_text: str
    lines: list[int]
    confidence: float
    sources: set[str] = field(default_factory=set)


_SELF = re.compile(
    r"\b(?:i'll|i will|i can|i'm going to|i am going to|let me|i'll go ahead and|i need to|i have to|i must|"
    r"i'll make sure to|i will make sure to|i'll take care of|i'll handle|i'll own|i can take)\s+(?P<task>[^.?!]+)",
    re.IGNORECASE,
)
_ASK = re.compile(
    r"\b(?P<name>[A-Z][a-z]+)\s*,\s*(?:can you|could you|would you|will you|please|you should|you need to|"
    r"i need you to|make sure you)\s+(?:please\s+)?(?P<task>[^.?!]+)",
)
_THIRD = re.compile(
    r"\b(?P<name>[A-Z][a-z]+)\s+(?:will|is going to|should|needs to|has to|can you)\s+(?P<task>[^.?!]+)",
)
_ASSIGN = re.compile(
    r"\b(?i:assign|give)\s+(?P<task>[^.?!]+?)\s+(?i:to)\s+(?P<name>[A-Z][a-z]+)\b|"
    r"\b(?i:action item)(?: (?i:for) (?P<name2>[A-Z][a-z]+))?\s*[:,-]?\s+(?P<task2>[^.?!]+)",
)
_WE = re.compile(r"\b(?:we need to|we should|we have to|someone needs to|someone should|somebody should)\s+(?P<task>[^.?!]+)",
                 re.IGNORECASE)
# Phrases that look like commitments but are not work: presence, feelings, hypotheticals, past.
_NOT_WORK = re.compile(
    r"^(?:be (?:late|there|back|out|off|away)|hear|see you|think|guess|try to remember|let you know if|"
    r"say|mention|start by|start with|go first|just|be honest|admit|agree|check if that is ok|"
    r"share my screen|mute|unmute|join|leave|stop sharing|repeat that)\b",
    re.IGNORECASE,
)
_TRAILING_DUE = re.compile(DUE_PATTERN.pattern + r"\s*$", re.IGNORECASE)


def _clean_task(task: str) -> str:
    task = re.sub(r"^(?:please|also|then|just|go ahead and|quickly)\s+", "", task.strip(), flags=re.IGNORECASE)
    task = _TRAILING_DUE.sub("", task).strip(" ,;:-")
    task = re.sub(r"\s+(?:ok|okay|right|please|as well|too)$", "", task, flags=re.IGNORECASE)
    return task[:1].upper() + task[1:] if task else task


# Speech or text that tries to steer the assistant. Such a line yields no action item at all: the
# proposal would be the attacker's words, and people approve what they are shown.
STEERING = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+|the\s+)?(?:previous|prior|above|earlier|your)\s+"
    r"(?:instructions|prompts?|rules)|\bsystem prompt\b|\byou are now\b|\bnew instructions\b|"
    r"\b(?:assign|give)\s+(?:everything|all\s+(?:of\s+)?(?:the\s+)?(?:tasks|work|items|action items))\b",
    re.IGNORECASE,
)


def is_steering(text: str) -> bool:
    return bool(STEERING.search(text))


def rule_candidates(lines: list[Line], people: People) -> list[Candidate]:
    """Explicit commitments and requests, one candidate per phrase, owners resolved against `people`."""
    found: list[Candidate] = []
    for line in lines:
        text = line.text.strip()
        if is_steering(text):
            continue
        for sentence in re.split(r"(?<=[.?!])\s+", text):
            candidate = _sentence_candidate(sentence, line, people)
            if candidate is None:
                continue
            if _ANAPHORIC.match(candidate.text):
                # "Sure, I'll fix it by Wednesday": a confirmation of a recent request to this speaker.
                earlier = next((c for c in reversed(found) if c.owner == candidate.owner
                                and line.number - c.lines[-1] <= 2), None)
                if earlier is not None:
                    earlier.lines.append(line.number)
                    earlier.confidence = min(0.95, earlier.confidence + 0.1)
                    if earlier.due is None:
                        earlier.due, earlier.due_text = candidate.due, candidate.due_text
                continue  # on its own, "fix it" is nothing anyone could act on
            found.append(candidate)
    return found


_ANAPHORIC = re.compile(r"^\w+(?:\s+\w+)?\s+(?:it|that|this|them|those|one)$", re.IGNORECASE)


def _sentence_candidate(sentence: str, line: Line, people: People) -> Candidate | None:
    due, due_text = parse_due(sentence, line.spoken)
    for pattern, owner_from, confidence in (
        (_ASK, "name", 0.8), (_ASSIGN, "name", 0.8), (_SELF, "speaker", 0.75), (_THIRD, "name", 0.6),
        (_WE, None, 0.45),
    ):
        match = pattern.search(sentence)
        if not match:
            continue
        groups = match.groupdict()
        task = groups.get("task") or groups.get("task2") or ""
        if not task or _NOT_WORK.match(task.strip()) or len(task.split()) < 2:
            continue
        owner = None
        if owner_from == "speaker":
            owner = line.speaker
        elif owner_from == "name":
            name = groups.get("name") or groups.get("name2")
            owner = people.resolve(name)
            if name and owner is None and pattern in (_THIRD,):
                continue  # "Monday will be busy": a capitalised word that is nobody we know
        cleaned = _clean_task(task)
        if len(cleaned) < 4:
            continue
        if due is not None:
            confidence += 0.1
        return Candidate(text=cleaned, owner=owner, due=due, due_text=due_text, lines=[line.number],
                         confidence=min(confidence, 0.95), sources={"rules"})
    return None


def _content_words(text: str) -> set[str]:
    return set(dedupe_key(text).split())


def same_task(a: str, b: str) -> bool:
    """The same task in other words: most content words shared ("Draft the customer report" and
    "draft the customer report today"). A small model often cites a neighbouring line for it."""
    wa, wb = _content_words(a), _content_words(b)
    if not wa or not wb:
        return False
    return len(wa & wb) / len(wa | wb) >= 0.6 or (min(len(wa), len(wb)) >= 3 and (wa <= wb or wb <= wa))


def same_item(a: Candidate, b: Candidate) -> bool:
    """Two proposals of one item: overlapping source lines or the same task, and compatible owners."""
    if not (set(a.lines) & set(b.lines) or same_task(a.text, b.text)):
        return False
    return a.owner is None or b.owner is None or a.owner == b.owner


def merge_candidates(rules: list[Candidate], model: list[Candidate], *, model_only_min: float = 0.0) -> list[Candidate]:
    """Rules decide owners and dates where they found them; the model adds items the rules missed and
    raises confidence where both agree. Model-only items keep the model's (capped) confidence and are
    dropped below `model_only_min`."""
    merged = [Candidate(**{**c.__dict__, "sources": set(c.sources), "lines": list(c.lines)}) for c in rules]
    for item in model:
        twin = next((m for m in merged if same_item(m, item)), None)
        if twin is None:
            merged.append(item)
            continue
        twin.sources |= item.sources
        twin.confidence = min(0.97, max(twin.confidence, item.confidence) + 0.1)
        twin.owner = twin.owner or item.owner
        if twin.due is None and item.due is not None:
            twin.due, twin.due_text = item.due, item.due_text
        twin.lines = sorted(set(twin.lines) | set(item.lines))
    return [c for c in merged if c.sources != {"model"} or c.confidence >= model_only_min]


def dedupe_key(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    stop = {"the", "a", "an", "to", "and", "of", "for", "on", "by", "it", "this", "that", "please"}
    return " ".join(w for w in words if w not in stop)[:200]
