"""Which turns of a meeting hold an action item (or a decision): a supervised ranker over turns.

On real meetings most commitment-looking phrases are not work anyone agreed ("I'll just draw it",
"we should get a coffee"), and rules or a small model reading every window propose ten times what
people agreed. A ranker trained on turns that human annotators linked to the meeting's action items
and decisions picks the few turns worth writing up; the model then writes items for those only.

A ranker is a scikit-learn Pipeline saved with joblib beside a JSON card (training data hash,
feature list, library versions, cross-validated figures), loaded by version, never retrained at
start-up. `bench/train_ranker.py` trains one; the registry (`assistant.models.AssistantVersion`)
says which version is current.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from . import embeddings
from .transcript_text import clean_turn, is_backchannel, word_count

ARTEFACT_DIR = Path(__file__).resolve().parent / "rankers"
KINDS = ("action_items", "decisions")
FEATURES_VERSION = "f1"

_FIRST_FUTURE = re.compile(r"\b(?:i'll|i will|i'm going to|i'm gonna|i am going to|i can|let me|i need to|i have to)\b", re.I)
_WE_FUTURE = re.compile(r"\b(?:we'll|we will|we're going to|we're gonna|we need to|we should|we have to|we must|let's|let us)\b", re.I)
_YOU = re.compile(r"\b(?:you|your|you're|you'll|yourself)\b", re.I)
_FUTURE = re.compile(r"\b(?:will|'ll|gonna|going to|shall)\b", re.I)
_NEXT_TIME = re.compile(r"\b(?:next meeting|next time|the next one|for next|before next|by next|till next|until next|"
                        r"homework|in between|between now and|after (?:this|the) meeting|tomorrow|by friday|deadline)\b", re.I)
_ACTION_VERB = re.compile(r"\b(?:work(?:ing)? on|look(?:ing)? (?:into|at)|research|prepar\w*|send\w*|e-?mail\w*|find out|"
                          r"check\w*|think(?:ing)? about|come up with|design\w*|draw\w*|bring\w*|present\w*|writ\w*|"
                          r"follow up|get back|figure out|investigat\w*|decid\w*|sort out|organi[sz]\w*|set up|update)\b", re.I)
_TASK_WORD = re.compile(r"\b(?:task|tasks|assignment|job|responsib\w*|action|actions|to do|todo|instructions?)\b", re.I)
_DECISION = re.compile(r"\b(?:decid\w*|decision|agree\w*|settle\w*|go(?:ing)? with|final|we'll have|we have|"
                       r"should be|will be|must be|has to be|it's gonna be|we want|we don't want|ok(?:ay)? so|so we)\b", re.I)
_NUMBER = re.compile(r"\b(?:\d+|euros?|dollars?|percent|price|cost|costs|budget)\b", re.I)


@dataclass
class Turn:
    """One spoken turn as the ranker sees it."""

    speaker: str
    text: str  # as transcribed

    @property
    def clean(self) -> str:
        return clean_turn(self.text)


def hand_features(turns: list[Turn], cleaned: list[str], mentions: list[int]) -> np.ndarray:
    """Cues that do not depend on the topic: where the turn sits, who says it, how it is phrased."""
    total = max(len(turns), 1)
    words = [word_count(c) for c in cleaned]
    by_speaker: dict[str, int] = {}
    for turn, n in zip(turns, words, strict=True):
        by_speaker[turn.speaker] = by_speaker.get(turn.speaker, 0) + n
    all_words = max(sum(words), 1)
    top = max(by_speaker, key=by_speaker.get) if by_speaker else None
    rows = []
    for i, (turn, text, n) in enumerate(zip(turns, cleaned, words, strict=True)):
        position = (i + 0.5) / total
        following = cleaned[i + 1:i + 3]
        rows.append([
            position, float(position >= 0.8), float(position >= 0.9), math.log1p(n), float(n <= 3),
            by_speaker.get(turn.speaker, 0) / all_words, float(turn.speaker == top),
            min(mentions[i], 4) / 4, float(mentions[i] > 0),
            float(bool(_FIRST_FUTURE.search(text))), float(bool(_WE_FUTURE.search(text))),
            float(bool(_YOU.search(text))), min(len(_FUTURE.findall(text)), 5) / 5,
            float(bool(_NEXT_TIME.search(text))), min(len(_ACTION_VERB.findall(text)), 5) / 5,
            float(bool(_TASK_WORD.search(text))), float(text.rstrip().endswith("?")),
            min(len(_DECISION.findall(text)), 5) / 5, float(bool(_NUMBER.search(text))),
            float(is_backchannel(text)),
            float(any(is_backchannel(f) for f in following)),
        ])
    return np.asarray(rows, dtype=np.float32)


HAND_FEATURES = [
    "position", "in_last_fifth", "in_last_tenth", "log_words", "very_short", "speaker_word_share",
    "speaker_is_top", "mentions", "mentions_anyone", "first_person_future", "we_future", "second_person",
    "future_modals", "next_time_cue", "action_verbs", "task_words", "is_question", "decision_cues", "numbers",
    "is_backchannel", "acknowledged_next",
]


def count_mentions(cleaned: list[str], names: list[str]) -> list[int]:
    """How many of the people's names or role phrases each turn names."""
    patterns = [re.compile(rf"\b{re.escape(n)}s?\b", re.I if not (n.isupper() and len(n) <= 3) else 0)
                for n in sorted({n for n in names if n}, key=len, reverse=True)]
    return [sum(1 for p in patterns if p.search(text)) for text in cleaned]


def features(turns: list[Turn], names: list[str], vectors: np.ndarray | None = None) -> np.ndarray:
    """Hand cues + the turn's sentence embedding (+ its neighbours' mean, for context)."""
    cleaned = [t.clean for t in turns]
    if vectors is None:
        vectors = _turn_vectors(cleaned)
    context = np.zeros_like(vectors)
    for i in range(len(turns)):
        window = vectors[max(0, i - 2):i + 3]
        context[i] = window.mean(axis=0)
    return np.hstack([hand_features(turns, cleaned, count_mentions(cleaned, names)), vectors, context])


_last_vectors: tuple[str, np.ndarray] | None = None
_vectors_lock = threading.Lock()


def _turn_vectors(cleaned: list[str]) -> np.ndarray:
    """Embeddings of a meeting's turns; the last meeting's are kept, since the end-of-meeting pass
    ranks the same turns for decisions and then for action items."""
    global _last_vectors
    key = f"{id(embeddings.get_embedder())}:" + hashlib.sha256("\x1f".join(cleaned).encode()).hexdigest()
    with _vectors_lock:
        if _last_vectors is not None and _last_vectors[0] == key:
            return _last_vectors[1]
    vectors = embeddings.embed([c or "." for c in cleaned])
    with _vectors_lock:
        _last_vectors = (key, vectors)
    return vectors


@dataclass
class Ranker:
    kind: str
    version: str
    pipeline: object
    card: dict

    @property
    def label(self) -> str:
        return f"{self.kind}-ranker.{self.version}"

    def score(self, turns: list[Turn], names: list[str], vectors: np.ndarray | None = None) -> np.ndarray:
        if not turns:
            return np.zeros(0)
        return self.pipeline.predict_proba(features(turns, names, vectors))[:, 1]

    def select(self, scores: np.ndarray) -> list[int]:
        """Indices of the turns worth writing up: above the tuned threshold, at most the cap per length."""
        threshold = float(self.card["selection"]["threshold"])
        per_turns = float(self.card["selection"]["max_per_100_turns"])
        cap = max(int(self.card["selection"]["min_cap"]), math.ceil(len(scores) * per_turns / 100))
        order = [int(i) for i in np.argsort(-scores) if scores[i] >= threshold]
        return sorted(order[:cap])


def artefact_paths(kind: str, version: str, directory: Path | None = None) -> tuple[Path, Path]:
    base = (directory or ARTEFACT_DIR) / f"{kind}-{version}"
    return base.with_suffix(".joblib"), base.with_suffix(".json")


def save(ranker: Ranker, directory: Path | None = None) -> Path:
    import joblib

    model_path, card_path = artefact_paths(ranker.kind, ranker.version, directory)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(ranker.pipeline, model_path, compress=3)
    card = {**ranker.card, "kind": ranker.kind, "version": ranker.version,
            "artefact_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest()}
    card_path.write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
    return model_path


_loaded: dict[tuple[str, str, str], Ranker] = {}
_lock = threading.Lock()


def load(kind: str, version: str, directory: Path | None = None) -> Ranker:
    """A saved ranker by version; its artefact must match the hash its card recorded."""
    import joblib

    key = (kind, version, str(directory or ARTEFACT_DIR))
    with _lock:
        if key not in _loaded:
            model_path, card_path = artefact_paths(kind, version, directory)
            if not model_path.is_file() or not card_path.is_file():
                raise LookupError(f"no {kind} ranker {version} in {model_path.parent}")
            card = json.loads(card_path.read_text())
            digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
            if digest != card.get("artefact_sha256"):
                raise ValueError(f"{model_path.name} does not match its card (sha256 {digest[:12]})")
            _loaded[key] = Ranker(kind=kind, version=version, pipeline=joblib.load(model_path), card=card)
        return _loaded[key]


def available_versions(kind: str, directory: Path | None = None) -> list[str]:
    return sorted(p.stem.removeprefix(f"{kind}-") for p in (directory or ARTEFACT_DIR).glob(f"{kind}-*.json"))


_override: dict[str, Ranker] = {}


def current(kind: str) -> Ranker:
    """The ranker the product uses now: an installed override (the bench's per-fold rankers), else the
    registry's current version (`OFFICE_RANKER_VERSION` while the registry has none)."""
    if kind in _override:
        return _override[kind]
    return load(kind, current_version(kind))


def current_version(kind: str) -> str:
    """The registry's current version of `kind`; `OFFICE_RANKER_VERSION` while it has none (a fresh database)."""
    # Imported here, not at the top: the benches load rankers before Django is set up (no cycle).
    from .models import AssistantVersion

    version = (AssistantVersion.objects.filter(kind=kind, stage=AssistantVersion.Stage.CURRENT)
               .values_list("version", flat=True).first())
    return version or settings.OFFICE_RANKER_VERSION


def set_current(kind: str, ranker: Ranker | None) -> None:
    if ranker is None:
        _override.pop(kind, None)
    else:
        _override[kind] = ranker
