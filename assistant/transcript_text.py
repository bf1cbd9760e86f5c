"""What the assistant reads of a transcript: spoken turns cleaned of the noise of live speech.

Real meetings are full of fillers ("um", "uh"), restarts ("our our project"), markup a recogniser
or a transcriber leaves ("{vocalsound}", "{disfmarker}") and backchannels ("yeah", "mm-hmm") that
carry no content. Small models copy such noise into what they write ("Get to that later, yeah"),
and an embedder's vector of "Mm-hmm." is close to everything, so both read the cleaned text.
"""

from __future__ import annotations

import re

_MARKUP = re.compile(r"\{[^}]*\}|<[^>]{1,40}>|\[(?:noise|laughter|inaudible|music|silence)\]", re.IGNORECASE)
_FILLER = re.compile(r"\b(?:u+m+|u+h+m*|e+r+m*|e+r+|h+m+|m+h*m+|mm-hmm|uh-huh|um-hmm|ah|eh|oh)\b[,.]?\s*",
                     re.IGNORECASE)
_REPEAT = re.compile(r"\b(\w+(?:'\w+)?)(?:\s*,?\s+\1\b)+", re.IGNORECASE)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.?!;:])")
_PUNCT_RUN = re.compile(r"([,.?!;:])(?:\s*[,.;:])+")
_LEADING_PUNCT = re.compile(r"^[\s,.;:-]+")

BACKCHANNEL_WORDS = frozenset(
    "yeah yes yep yup no nope okay ok right sure mm mhm hmm uh huh um uh oh ah alright cool good great "
    "fine true exactly absolutely definitely indeed so well and but i see thanks thank you sorry really "
    "wow nice it's that's is was".split()
)


def clean_turn(text: str) -> str:
    """One turn without markup, fillers and stutters, with normal spacing before punctuation."""
    text = _MARKUP.sub(" ", text or "")
    text = _FILLER.sub(" ", text)
    text = re.sub(r"\s+", " ", text)
    text = _REPEAT.sub(r"\1", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _PUNCT_RUN.sub(r"\1", text)
    text = _LEADING_PUNCT.sub("", text).strip()
    return text[:1].upper() + text[1:] if text else ""


def is_backchannel(cleaned: str) -> bool:
    """A turn that only acknowledges ("Yeah.", "Okay, right."): no content of its own."""
    words = re.findall(r"[a-z']+", cleaned.lower())
    return not words or (len(words) <= 4 and all(w in BACKCHANNEL_WORDS for w in words))


def word_count(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9']+", text))
