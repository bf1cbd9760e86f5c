"""The real-meeting development set (`../shared/meetings-eval`): loading, series folds, cached vectors.

Every figure reported from it is on meeting series the component did not see: the a-d meetings of one
series share people and topic, so folds are by series (ES2002, IS1003, ...), never by meeting or turn.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("OFFICE_MEETINGS_EVAL_DIR", ROOT.parent / "shared" / "meetings-eval"))
CACHE_DIR = ROOT / ".data" / "cache" / "meetings-eval"


def load_meetings(limit_series: list[str] | None = None) -> dict[str, dict]:
    out = {}
    for path in sorted((EVAL_DIR / "data").glob("*.json")):
        if path.name == "manifest.json":
            continue
        meeting = json.loads(path.read_text())
        if limit_series and series_of(meeting["id"]) not in limit_series:
            continue
        out[meeting["id"]] = meeting
    return out


def series_of(meeting_id: str) -> str:
    return meeting_id[:6]


def series_folds(meeting_ids, k: int = 5) -> list[list[str]]:
    """k folds of whole series, assigned round-robin over the sorted series names (deterministic)."""
    series = sorted({series_of(m) for m in meeting_ids})
    return [[s for i, s in enumerate(series) if i % k == f] for f in range(k)]


def cached_embeddings(texts: list[str], key: str) -> np.ndarray:
    """Vectors of `texts` from the product's embedder, cached on disk by content hash."""
    digest = hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]
    path = CACHE_DIR / f"{key}-{digest}.npy"
    if path.exists():
        return np.load(path)
    from assistant import embeddings

    vectors = embeddings.embed([t or "." for t in texts])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


if __name__ == "__main__":  # warm the cache: python bench/ami.py
    sys.path.insert(0, str(ROOT))
    from assistant.transcript_text import clean_turn

    for mid, m in load_meetings().items():
        cached_embeddings([clean_turn(s["text"]) for s in m["segments"]], mid)
        print(mid, flush=True)
