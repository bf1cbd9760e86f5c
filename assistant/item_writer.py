"""Writing action items and decisions from the few turns the ranker chose.

Two writers behind one shape (`Written`): the model's (one call for all chosen turns, owners
constrained by a JSON-schema enum of the people present, a real example instead of placeholder prose)
and a deterministic one used when no model answers. Both only ever name an owner from `people`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import extract
from .transcript_text import clean_turn

UNASSIGNED = "unassigned"

_LEAD = re.compile(r"^(?:(?:so|and|but|well|right|okay|ok|now|then|also|just|yeah|yes|alright|like|um|uh|"
                   r"i think|i guess|you know|basically|actually|in between now and then|between now and then|"
                   r"for the next meeting|for next time|for the next one)[\s,]+)+", re.I)
_SUBJECT = re.compile(r"^(?:(?:as|for|and|our|the|uh|um|you|your|mister|miss)\s+)*", re.I)
_MODAL = re.compile(r"^(?:(?:you're|you are|you'll|you will|you|i'll|i will|i'm|i am|we'll|we will|we're|we are|"
                    r"he'll|she'll|they'll|will|is|are|be|gonna|going to|have to|has to|need to|needs to|"
                    r"should|could|can|must|just|also|probably|hopefully|then|please|to)\s+)+", re.I)
_TAIL = re.compile(r"\s*(?:,?\s*(?:okay|ok|right|yeah|alright|so|and|um|uh|you know|i think|i guess)[?.!]*)+$", re.I)


@dataclass
class Written:
    text: str
    owner: extract.Person | None
    line: int  # index into the turns given to the writer
    due_text: str = ""


def _tidy(task: str) -> str:
    task = _TAIL.sub("", task.strip(" ,;:-")).strip(" ,;:-.")
    task = re.sub(r"\s+", " ", task)
    words = task.split()
    if len(words) > 18:
        task = " ".join(words[:18])
    return task[:1].upper() + task[1:] if task else ""


def _mentions(text: str, people: list[extract.Person]) -> list[tuple[int, int, extract.Person]]:
    """(start, end, person) for every name or display name said in `text`, in order."""
    found = []
    for person in people:
        keys = {person.display_name, person.first_name, person.username}
        for key in sorted((k for k in keys if k and len(k) > 1), key=len, reverse=True):
            for m in re.finditer(rf"\b{re.escape(key)}s?\b", text, re.I):
                if not any(s <= m.start() < e for s, e, _ in found):
                    found.append((m.start(), m.end(), person))
    return sorted(found, key=lambda f: f[0])


def _task_from(fragment: str) -> str:
    fragment = _LEAD.sub("", fragment.strip(" ,;:-"))
    fragment = _SUBJECT.sub("", fragment)
    fragment = re.sub(r"^(?:designer|expert|executive|manager)\b[\s,]*", "", fragment, flags=re.I)
    fragment = _LEAD.sub("", fragment.strip(" ,;:-"))
    fragment = _MODAL.sub("", fragment)
    return _tidy(fragment)


def write_deterministic(turns: list[tuple[extract.Person | None, str]], chosen: list[int],
                        people: list[extract.Person], *, kind: str = "action_items") -> list[Written]:
    """Items from the chosen turns without a model: one per person named (the clause after the name),
    else the turn's most commitment-like sentence, owned by the speaker when they speak of themselves."""
    out: list[Written] = []
    for index in chosen:
        speaker, raw = turns[index]
        text = clean_turn(raw)
        if extract.is_steering(text) or not text:
            continue
        if kind == "decisions":
            sentence = max(re.split(r"(?<=[.?!])\s+", text), key=_decision_weight)
            task = _tidy(_LEAD.sub("", sentence))
            if len(task.split()) >= 3:
                out.append(Written(text=task, owner=None, line=index))
            continue
        mentions = [m for m in _mentions(text, people) if m[2] is not speaker] if people else []
        if mentions:
            for n, (_start, end, person) in enumerate(mentions):
                stop = mentions[n + 1][0] if n + 1 < len(mentions) else len(text)
                task = _task_from(re.split(r"(?<=[.?!])\s+", text[end:stop])[0])
                if len(task.split()) >= 2 and not any(w.owner == person and w.line == index for w in out):
                    out.append(Written(text=task, owner=person, line=index))
            continue
        sentence = max(re.split(r"(?<=[.?!])\s+", text), key=_commitment_weight)
        first_person = bool(re.search(r"\b(?:i'll|i will|i'm going to|i'm gonna|let me|i can)\b", sentence, re.I))
        task = _task_from(sentence)
        if len(task.split()) >= 2:
            out.append(Written(text=task, owner=speaker if first_person else None, line=index))
    return out


def _commitment_weight(sentence: str) -> float:
    s = sentence.lower()
    cues = ("will", "'ll", "gonna", "going to", "need to", "have to", "should", "next", "work on", "look",
            "send", "prepare", "bring", "research", "think about", "come up with")
    return sum(c in s for c in cues) + min(len(s.split()), 25) / 50


def _decision_weight(sentence: str) -> float:
    s = sentence.lower()
    cues = ("decid", "agree", "go with", "will be", "should be", "we'll have", "we have", "final", "euro", "so we")
    return sum(c in s for c in cues) + min(len(s.split()), 25) / 50


# --- the model's writer ---

def items_schema(turn_numbers: list[int], owners: list[str]) -> dict:
    """Owners and turns are closed sets: the model cannot name anyone else or cite a turn it was not shown."""
    return {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "maxItems": 2 * len(turn_numbers) + 2,
                "items": {
                    "type": "object",
                    "properties": {
                        "turn": {"type": "integer", "enum": turn_numbers},
                        "owner": {"type": "string", "enum": [*owners, UNASSIGNED]},
                        "task": {"type": "string", "minLength": 8, "maxLength": 160},
                    },
                    "required": ["turn", "owner", "task"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["items"],
        "additionalProperties": False,
    }


MAX_TURN_WORDS = 90


def turns_text(turns: list[tuple[extract.Person | None, str]], chosen: list[int]) -> str:
    lines = []
    for n, index in enumerate(chosen, start=1):
        speaker, raw = turns[index]
        words = clean_turn(raw).split()
        text = " ".join(words[-MAX_TURN_WORDS:]) if len(words) > MAX_TURN_WORDS else " ".join(words)
        lines.append(f"[{n}] {speaker.display_name if speaker else 'Someone'}: {text}")
    return "\n".join(lines)


def _owner_phrase(task: str, owner: extract.Person | None) -> str:
    """The model writes "Bob will ..."; the item is stored as the task, the owner as its own field."""
    if owner is not None:
        for key in sorted({owner.display_name, owner.first_name, owner.username}, key=len, reverse=True):
            task = re.sub(rf"^(?:the\s+)?{re.escape(key)}\s+(?:will|is going to|should|needs to|has to)\s+", "", task,
                          flags=re.I)
    task = re.sub(r"^(?:the (?:team|group)|everyone|we|they|someone)\s+(?:will|should|need to|needs to)\s+", "", task,
                  flags=re.I)
    return _tidy(task)


def from_model(data: dict, turns, chosen: list[int], owners: list[extract.Person], *,
               prompt_text: str) -> list[Written]:
    """The model's items, checked: a turn it was shown, an owner from the list, no words of the prompt."""
    by_name = {p.display_name: p for p in owners}
    out: list[Written] = []
    for item in data.get("items", []):
        n = item.get("turn")
        if not isinstance(n, int) or not 1 <= n <= len(chosen):
            continue
        index = chosen[n - 1]
        if extract.is_steering(turns[index][1]) or echoes_prompt(item.get("task", ""), prompt_text):
            continue
        owner = by_name.get(item.get("owner"))
        task = _owner_phrase(str(item.get("task", "")), owner)
        if len(task.split()) < 2 or any(w.line == index and w.owner == owner and w.text == task for w in out):
            continue
        out.append(Written(text=task, owner=owner, line=index))
    return out


def echoes_prompt(text: str, prompt_text: str, n: int = 5) -> bool:
    """True when `text` repeats five or more words in a row of the prompt's own wording (its instructions
    or its example): small models copy what a prompt shows them instead of reading the transcript."""
    words = re.findall(r"[a-z0-9']+", text.lower())
    prompt_words = re.findall(r"[a-z0-9']+", prompt_text.lower())
    grams = {tuple(prompt_words[i:i + n]) for i in range(len(prompt_words) - n + 1)}
    return any(tuple(words[i:i + n]) in grams for i in range(len(words) - n + 1))
