"""Masking personal data before text leaves for a model endpoint marked external.

E-mail addresses, phone numbers, payment card numbers (Luhn-checked) and names of people who are not
members of the organisation become numbered placeholders (`[EMAIL_1]`, `[PERSON_2]`...). The same
value always gets the same placeholder within one call, so the model can still reason about "who
said what"; `restore` puts the originals back into the model's answer for the reader. Org members'
names stay: they are needed to assign owners, and the org's own endpoint policy covers them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){2,4}(?!\w)")
# Two or three capitalised words in a row ("Grace Hopper", "Mary Ann Smith"), or one after a title.
FULL_NAME = re.compile(r"\b[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?(?:\s+[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?){1,2}\b")
TITLED = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?\b")
# Capitalised words that are not names even when two of them meet.
NOT_NAMES = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
    "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
    "the", "a", "an", "and", "or", "but", "we", "i", "you", "he", "she", "they", "it", "our", "my", "your",
    "this", "that", "these", "those", "let", "lets", "please", "can", "could", "will", "would", "should",
    "ok", "okay", "yes", "no", "so", "then", "also", "next", "last", "q1", "q2", "q3", "q4", "hi", "hello",
    "thanks", "thank", "team", "sales", "marketing", "office", "room", "meeting", "ticket", "project",
}


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass
class Redactor:
    """One redaction session: stable placeholders across all texts of one model call."""

    known_names: Iterable[str] = ()
    mapping: dict[str, str] = field(default_factory=dict)  # placeholder -> original
    _reverse: dict[str, str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        words = set()
        for name in self.known_names:
            for part in re.split(r"\s+", (name or "").strip().lower()):
                if part:
                    words.add(part)
        self._known_words = words

    def _placeholder(self, kind: str, value: str) -> str:
        if value in self._reverse:
            return self._reverse[value]
        self._counts[kind] = self._counts.get(kind, 0) + 1
        token = f"[{kind}_{self._counts[kind]}]"
        self.mapping[token] = value
        self._reverse[value] = token
        return token

    def _is_foreign_name(self, candidate: str) -> bool:
        words = [w.lower().strip(".") for w in candidate.split()]
        if any(w in NOT_NAMES for w in words):
            return False
        return not all(w in self._known_words for w in words)

    def redact(self, text: str) -> str:
        text = EMAIL.sub(lambda m: self._placeholder("EMAIL", m.group()), text)

        def card(m: re.Match) -> str:
            digits = re.sub(r"\D", "", m.group())
            return self._placeholder("CARD", m.group()) if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group()

        text = CARD.sub(card, text)

        def phone(m: re.Match) -> str:
            digits = re.sub(r"\D", "", m.group())
            if digits == m.group() and len(digits) != 10:
                return m.group()  # a bare run of digits is an id or an amount, unless it is 10 long
            return self._placeholder("PHONE", m.group()) if 7 <= len(digits) <= 15 else m.group()

        text = PHONE.sub(phone, text)
        text = TITLED.sub(lambda m: self._placeholder("PERSON", m.group()), text)

        def name(m: re.Match) -> str:
            candidate = m.group()
            words = candidate.split()
            # Trim leading/trailing non-name words ("Thanks Grace Hopper" -> "Grace Hopper").
            while words and words[0].lower() in NOT_NAMES:
                words.pop(0)
            while words and words[-1].lower() in NOT_NAMES:
                words.pop()
            if len(words) < 2:
                return candidate
            core = " ".join(words)
            if not self._is_foreign_name(core):
                return candidate
            return candidate.replace(core, self._placeholder("PERSON", core))

        return FULL_NAME.sub(name, text)

    def restore(self, value):
        """Put the originals back into a model output (strings inside dicts and lists too)."""
        if isinstance(value, str):
            for token, original in self.mapping.items():
                value = value.replace(token, original)
            return value
        if isinstance(value, list):
            return [self.restore(v) for v in value]
        if isinstance(value, dict):
            return {k: self.restore(v) for k, v in value.items()}
        return value


def redact(text: str, known_names: Iterable[str] = ()) -> tuple[str, dict[str, str]]:
    """Convenience for one text: (redacted text, placeholder -> original)."""
    redactor = Redactor(known_names=known_names)
    return redactor.redact(text), redactor.mapping
