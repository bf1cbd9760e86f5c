"""Who knows about a topic, from evidence already found: the scoring half of "who knows about X?".

Pure (no database, no Django): `assistant.experts` feeds it evidence retrieved from the knowledge
index, and `bench/experts.py` feeds it the turns of real meetings, so the figures reported are those
of the product's own scoring. A piece of evidence is (person, kind, text, relevance); a person's
score is the relevance-weighted sum of their evidence, optionally with diminishing returns (the i-th
best piece counts `decay**i`; on real meetings plain sums ranked best, see ScoringWeights).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

SAID, WROTE, UPLOADED, COMPLETED = "said", "wrote", "uploaded", "completed"
KINDS = (SAID, WROTE, UPLOADED, COMPLETED)
REASONS_PER_PERSON = 3


@dataclass(frozen=True)
class ScoringWeights:
    """The knobs (bench/experts.py tunes `floor`, `decay` and `window_credit` on one half of the
    meeting series and reports on the other; the kind weights are not tuned: the AMI set has only
    speech)."""

    # Chosen by bench/experts.py on the tune half of the AMI series (grid: floor 0.1-0.3, decay 0.5-1,
    # window credit 0-1). Meetings preferred no diminishing returns (decay 1: every relevant turn counts
    # fully); `decay` stays a knob for sources where volume misleads.
    floor: float = 0.2  # cosine similarity at or below which a passage is no evidence at all
    decay: float = 1.0  # weight of a person's i-th best piece: decay**i (1: none; <1: diminishing returns)
    window_credit: float = 1.0  # a transcript window counts this much, shared by its speakers' words
    kinds: dict[str, float] = field(default_factory=lambda: {SAID: 1.0, WROTE: 1.0, UPLOADED: 0.8, COMPLETED: 1.0})


DEFAULT_WEIGHTS = ScoringWeights()


@dataclass(frozen=True)
class Evidence:
    person: Hashable  # a user id in the product, a speaker label in the bench
    kind: str  # one of KINDS
    text: str
    relevance: float  # 0..1, from `relevance_of`
    key: str  # the source (`segment:12`): the same source found twice counts once
    citation: dict = field(default_factory=dict)  # {"label", "url"} (selectors.citation_target)


@dataclass
class Expert:
    person: Hashable
    score: float
    evidence_count: int
    reasons: list[Evidence]


def relevance_of(similarity: float, weights: ScoringWeights = DEFAULT_WEIGHTS) -> float:
    """Cosine similarity of passage and query -> 0..1 relevance (0 at or below the floor)."""
    if similarity <= weights.floor:
        return 0.0
    return min(1.0, (similarity - weights.floor) / (1.0 - weights.floor))


def _words(text: str) -> int:
    return len(re.findall(r"\w+", text or ""))


def window_evidence(relevance: float, turns: Iterable[tuple[Hashable, str, str, dict]], *,
                    window_key: str, weights: ScoringWeights = DEFAULT_WEIGHTS) -> list[Evidence]:
    """A transcript window (several people's turns read together) found relevant: each speaker gets
    `window_credit` of its relevance in proportion to the words they said in it, cited at their
    longest turn of the window. `turns` are (person, text, key, citation)."""
    by_person: dict[Hashable, list[tuple[str, str, dict]]] = {}
    for person, text, key, citation in turns:
        by_person.setdefault(person, []).append((text, key, citation))
    total = sum(_words(text) for rows in by_person.values() for text, _, _ in rows)
    if relevance <= 0 or total == 0:
        return []
    out = []
    for person, rows in by_person.items():
        share = sum(_words(text) for text, _, _ in rows) / total
        text, _key, citation = max(rows, key=lambda row: _words(row[0]))
        if share > 0:
            out.append(Evidence(person=person, kind=SAID, text=text, relevance=relevance * weights.window_credit * share,
                                key=f"{window_key}:{person}", citation=citation))
    return out


def experts_rank(evidence: Iterable[Evidence], *, limit: int = 5,
                 weights: ScoringWeights = DEFAULT_WEIGHTS) -> list[Expert]:
    """People ranked by their evidence (best first; ties by the person's key), each with up to three
    reasons (their most relevant pieces). Evidence of no relevance ranks nobody."""
    best: dict[str, Evidence] = {}
    for piece in evidence:
        if piece.relevance > 0 and (piece.key not in best or piece.relevance > best[piece.key].relevance):
            best[piece.key] = piece
    by_person: dict[Hashable, list[Evidence]] = {}
    for piece in best.values():
        by_person.setdefault(piece.person, []).append(piece)
    experts = []
    for person, pieces in by_person.items():
        weighted = sorted(((weights.kinds.get(p.kind, 1.0) * p.relevance, p) for p in pieces),
                          key=lambda wp: (-wp[0], wp[1].key))
        score = sum(w * weights.decay ** i for i, (w, _) in enumerate(weighted))
        experts.append(Expert(person=person, score=score, evidence_count=len(pieces),
                              reasons=[p for _, p in weighted[:REASONS_PER_PERSON]]))
    experts.sort(key=lambda e: (-e.score, str(e.person)))
    return experts[:max(0, limit)]
