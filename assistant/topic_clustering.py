"""Topics across meetings, the pure part: discussion units, clustering, naming, matching and topic
profiles, over arrays and strings, so `assistant/topics.py` (the database side) and `bench/topics.py`
(the AMI evaluation) run the same code. No Django here.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from .embeddings import l2_normalise

# Tuned on half of the AMI series, reported on the other half (bench/topics.py, bench/results/topics.json).
UNIT_WINDOWS = 4  # transcript windows (6 turns, overlapping by half) per discussion unit: about 12 turns
CLUSTER_DISTANCE = 0.25  # cosine distance at which average-linkage clustering stops merging
MIN_TOPIC_UNITS = 2  # a cluster of one unit is no topic across anything
ASSIGN_DISTANCE = CLUSTER_DISTANCE  # a new unit joins the nearest topic within this distance of its centroid
MATCH_SIMILARITY = 0.80  # a new cluster keeps an old topic's id when their centroids are this similar
LABEL_TERMS = 3
TOP_TERMS = 8

# Spoken filler and transcript markup that carry no topic ({vocalsound}, um, uh ...), on top of
# scikit-learn's English stop words: a topic named "yeah okay think" names nothing.
SPOKEN_STOP_WORDS = frozenset("""
vocalsound disfmarker gap nonvocalsound laugh laughter um umm uh uhh hmm mm mhm mm-hmm uh-huh ah eh oh er erm
yeah yes yep okay ok right sure alright cool good great fine really actually basically just like know think
thought mean gonna wanna gotta kind sort lot bit thing things stuff going want got get getting let say said
does did don't doesn't didn't we'll we're we've it's that's there's i'm i'll i've you're you'll they're what's
let's can't won't isn't aren't wasn't maybe probably perhaps guess need way ones one two yeah-yeah well
also still quite pretty little big new use used make look looks looking come came go goes went
""".split())
_WORD = r"(?u)\b[a-z][a-z'-]{2,}\b"
_SPEAKER_PREFIX = re.compile(r"^[^:\n]{1,60}:\s*", re.MULTILINE)


@dataclass
class DiscussionUnit:
    meeting: object  # a meeting id (int here, "ES2002a" in the bench)
    vector: np.ndarray
    text: str


def discussion_units(meeting, window_vectors: np.ndarray, window_texts: list[str], *,
                     unit_windows: int = UNIT_WINDOWS) -> list[DiscussionUnit]:
    """Consecutive windows of one meeting, `unit_windows` at a time, as units: the mean of their vectors
    (normalised) and their text. A short remainder joins the unit before it."""
    count = len(window_texts)
    if count == 0:
        return []
    starts = list(range(0, count, unit_windows))
    if len(starts) > 1 and count - starts[-1] < unit_windows // 2:
        starts.pop()
    bounds = [(s, starts[i + 1] if i + 1 < len(starts) else count) for i, s in enumerate(starts)]
    units = []
    for start, end in bounds:
        vector = l2_normalise(np.asarray(window_vectors[start:end], dtype=np.float32).mean(axis=0,
                                                                                                        keepdims=True))[0]
        units.append(DiscussionUnit(meeting=meeting, vector=vector, text="\n".join(window_texts[start:end])))
    return units


def cluster_units(vectors: np.ndarray, *, distance: float = CLUSTER_DISTANCE,
                  min_units: int = MIN_TOPIC_UNITS) -> np.ndarray:
    """A cluster label per unit (0..k-1, largest cluster first), -1 for units in no cluster of `min_units`."""
    n = len(vectors)
    if n < min_units or n < 2:
        return np.full(n, -1, dtype=int)
    from sklearn.cluster import AgglomerativeClustering

    raw = AgglomerativeClustering(n_clusters=None, distance_threshold=distance, metric="cosine",
                                  linkage="average").fit_predict(np.asarray(vectors, dtype=np.float64))
    sizes = Counter(raw.tolist())
    kept = [label for label, size in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])) if size >= min_units]
    renumber = {label: i for i, label in enumerate(kept)}
    return np.array([renumber.get(label, -1) for label in raw.tolist()], dtype=int)


def topic_text(text: str) -> str:
    """A unit's words without the "Name: " that starts each line of a window."""
    return _SPEAKER_PREFIX.sub("", text)


def topic_terms(texts: list[str], labels: np.ndarray, *, extra_stop_words=(), top: int = TOP_TERMS) -> dict[int, list[str]]:
    """The most distinctive words of each cluster: c-TF-IDF (BERTopic's class-based TF-IDF), each
    cluster's text as one document against the others (units in no cluster form one more document,
    so words common everywhere rank low). Two-word phrases are kept when they rank; a term that shares
    a word with one chosen before it is left out, so the terms say different things."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    classes = sorted({int(label) for label in labels})
    if not any(c >= 0 for c in classes):
        return {}
    documents = [" ".join(topic_text(texts[i]) for i in np.flatnonzero(labels == c)) for c in classes]
    stop = sorted(ENGLISH_STOP_WORDS | SPOKEN_STOP_WORDS | {w.lower() for w in extra_stop_words})
    vectorizer = CountVectorizer(token_pattern=_WORD, lowercase=True, stop_words=stop, ngram_range=(1, 2))
    try:
        counts = vectorizer.fit_transform(documents).toarray().astype(np.float64)
    except ValueError:  # nothing but stop words
        return {c: [] for c in classes if c >= 0}
    vocabulary = vectorizer.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    average_words = counts.sum() / len(documents)
    idf = np.log(1.0 + average_words / np.maximum(counts.sum(axis=0), 1.0))
    scores = tf * idf
    out: dict[int, list[str]] = {}
    for row, c in enumerate(classes):
        if c < 0:
            continue
        chosen: list[str] = []
        for index in np.argsort(-scores[row]):
            if scores[row, index] <= 0 or len(chosen) >= top:
                break
            term = str(vocabulary[index])
            if " " in term and len(set(term.split())) == 1:  # "menu menu": a stutter across two turns
                continue
            words = set(term.split())
            if any(words & set(t.split()) for t in chosen):  # "budget" chosen: not "budget forecast" too
                continue
            chosen.append(term)
        out[c] = chosen
    return out


def topic_label(terms: list[str]) -> str:
    return ", ".join(terms[:LABEL_TERMS]) or "unnamed topic"


def centroids_of(vectors: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): l2_normalise(vectors[labels == c].mean(axis=0, keepdims=True))[0]
            for c in sorted(set(labels.tolist())) if c >= 0}


def meeting_profiles(meetings: list, labels: np.ndarray) -> dict[object, dict[int, float]]:
    """Each meeting's weight in each topic: the share of its units in it (units in no topic count in
    the total, so a meeting mostly about nothing shared has small weights)."""
    totals = Counter(meetings)
    shares: dict[object, dict[int, float]] = defaultdict(dict)
    for meeting, label in zip(meetings, labels.tolist(), strict=True):
        if label >= 0:
            shares[meeting][label] = shares[meeting].get(label, 0.0) + 1.0 / totals[meeting]
    return dict(shares)


def nearest_topics(vectors: np.ndarray, centroids: np.ndarray, *, distance: float = ASSIGN_DISTANCE) -> np.ndarray:
    """For each vector the index of the nearest centroid within `distance` (cosine), else -1."""
    if len(centroids) == 0 or len(vectors) == 0:
        return np.full(len(vectors), -1, dtype=int)
    similarity = np.asarray(vectors) @ np.asarray(centroids).T
    best = similarity.argmax(axis=1)
    return np.where(1.0 - similarity[np.arange(len(best)), best] <= distance, best, -1)


def match_topics(new: np.ndarray, old: np.ndarray, *, min_similarity: float = MATCH_SIMILARITY) -> dict[int, int]:
    """new cluster index → old topic index, one to one (the pairing with the most total similarity),
    for pairs at least `min_similarity` alike: a re-clustered topic keeps its id."""
    if len(new) == 0 or len(old) == 0:
        return {}
    from scipy.optimize import linear_sum_assignment

    similarity = np.asarray(new) @ np.asarray(old).T
    rows, cols = linear_sum_assignment(-similarity)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if similarity[r, c] >= min_similarity}


def profile_similarity(a: dict, b: dict) -> float:
    """Cosine of two topic profiles (topic → weight)."""
    dot = sum(w * b.get(t, 0.0) for t, w in a.items())
    norm = (sum(w * w for w in a.values()) ** 0.5) * (sum(w * w for w in b.values()) ** 0.5)
    return dot / norm if norm else 0.0
