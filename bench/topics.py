"""Topics across meetings on real meetings: does the product's clustering (assistant/topics.py) give
meetings of one AMI series (the same four people, three or four meetings on one project) more topics
in common than meetings of different series?

The 93 meetings of ../shared/meetings-eval are held as the knowledge index holds them: windows of 6
content turns (stride 3, backchannels left out, assistant/indexing.py). A window's vector is the
normalised mean of its turns' vectors (the product embeds the window text; embedding 16k windows on
this machine's 2 shared cores took too long, as in bench/experts.py; the turn vectors are cached by
bench/ami.py). Windows become discussion units, units are clustered, topics named and meetings given
topic profiles by the product's own functions (`discussion_units`, `cluster_units`, `topic_terms`,
`meeting_profiles`), over all 93 meetings together, as one office would hold them.

Figures, over pairs of meetings inside one half of the series:
* profile cosine (the product's `profile_similarity`, what "related meetings" ranks by) and Jaccard of
  topic sets, for pairs in the same series vs pairs from different series;
* P@3: for each meeting, how many of its 3 most topic-similar meetings are of its own series (series
  have 3-4 meetings, so 1.0 is reachable; ties count by expectation), with the random floor;
* baseline: each meeting's raw mean embedding (no clustering), cosine, the same figures;
* diagnostic: the same for pairs of the same stage (the a/b/c/d meeting of different series follow
  one agenda: kick-off, functional, conceptual, detailed design), since AMI series all design a remote.

Tuning: series sorted by id, even positions tune, odd report. The grid (cut distance, windows per
unit, smallest topic) is searched on the tune half by P@3; every reported figure is on the report half.

    .venv/bin/python bench/topics.py        # about a minute with the turn vectors cached
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from assistant import topic_clustering as topics  # noqa: E402
from assistant.embeddings import l2_normalise  # noqa: E402
from assistant.transcript_text import clean_turn, is_backchannel  # noqa: E402
from bench.ami import cached_embeddings, load_meetings, series_of  # noqa: E402

WINDOW_TURNS = 6  # assistant.indexing.WINDOW_TURNS (not imported: it needs Django)
WINDOW_MAX_CHARS = 1500  # assistant.indexing.WINDOW_MAX_CHARS
GRID = {"distance": [0.2, 0.25, 0.3, 0.35, 0.4, 0.5], "unit_windows": [4, 6, 10], "min_units": [2, 3]}
K = 3


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def windows_of(meeting: dict) -> tuple[np.ndarray, list[str]]:
    """The meeting's windows as assistant/indexing.py cuts them: vectors (mean of turns) and texts."""
    turns = [clean_turn(s["text"]) for s in meeting["segments"]]
    vectors = cached_embeddings(turns, meeting["id"])
    content = [i for i, t in enumerate(turns) if not is_backchannel(t)]
    stride = WINDOW_TURNS // 2
    windows = [w for w in (content[s:s + WINDOW_TURNS] for s in range(0, max(len(content) - stride, 1), stride)) if w]
    texts = ["\n".join(turns[i] for i in w)[:WINDOW_MAX_CHARS] for w in windows]
    return l2_normalise(np.array([vectors[w].mean(axis=0) for w in windows], dtype=np.float32)), texts


def precision_at_k(scores: dict[str, float], relevant: set[str], k: int = K) -> float:
    """P@k with ties at the cut counted by expectation (a random order among equals)."""
    ranked = sorted(scores.values(), reverse=True)
    if not ranked:
        return 0.0
    cut = ranked[min(k, len(ranked)) - 1]
    above = [m for m, s in scores.items() if s > cut]
    tied = [m for m, s in scores.items() if s == cut]
    hits = sum(m in relevant for m in above) + sum(m in relevant for m in tied) * (k - len(above)) / len(tied)
    return hits / k


def pair_figures(ids: list[str], similarity, groups) -> dict:
    """Mean similarity within / across groups, and P@K of each meeting's most similar (same group)."""
    within, across, p_at_k, floor = [], [], [], []
    for a, b in itertools.combinations(ids, 2):
        (within if groups(a) == groups(b) else across).append(similarity(a, b))
    for a in ids:
        others = [b for b in ids if b != a]
        relevant = {b for b in others if groups(b) == groups(a)}
        p_at_k.append(precision_at_k({b: similarity(a, b) for b in others}, relevant))
        floor.append(len(relevant) / len(others))
    w, x = float(np.mean(within)), float(np.mean(across))
    return {"within": round(w, 4), "across": round(x, 4), "gap": round(w - x, 4),
            f"p@{K}": round(float(np.mean(p_at_k)), 4), "random_p@k": round(float(np.mean(floor)), 4),
            "pairs_within": len(within), "pairs_across": len(across)}


def jaccard(a: dict, b: dict) -> float:
    union = set(a) | set(b)
    return len(set(a) & set(b)) / len(union) if union else 0.0


def run(windows: dict, *, distance: float, unit_windows: int, min_units: int, name: bool = False) -> dict:
    units = []
    for mid, (vectors, texts) in windows.items():
        units += topics.discussion_units(mid, vectors, texts, unit_windows=unit_windows)
    vectors = np.array([u.vector for u in units], dtype=np.float32)
    labels = topics.cluster_units(vectors, distance=distance, min_units=min_units)
    profiles = topics.meeting_profiles([u.meeting for u in units], labels)
    out = {"units": len(units), "topics": int(labels.max() + 1) if len(labels) else 0,
           "units_in_no_topic": round(float((labels < 0).mean()), 4), "profiles": profiles, "labels": labels,
           "units_list": units}
    if name:
        out["terms"] = topics.topic_terms([u.text for u in units], labels)
    return out


def figures_of(result: dict, ids: list[str]) -> dict:
    profiles = result["profiles"]
    profile = lambda m: profiles.get(m, {})  # noqa: E731
    return {
        "profile_cosine": pair_figures(ids, lambda a, b: topics.profile_similarity(profile(a), profile(b)), series_of),
        "jaccard": pair_figures(ids, lambda a, b: jaccard(profile(a), profile(b)), series_of),
        "same_stage_profile_cosine": pair_figures(ids, lambda a, b: topics.profile_similarity(profile(a), profile(b)),
                                                  lambda m: m[-1]),
        "meetings_with_no_topic": sum(1 for m in ids if not profiles.get(m)),
    }


def baseline_figures(windows: dict, ids: list[str]) -> dict:
    means = {m: l2_normalise(windows[m][0].mean(axis=0, keepdims=True))[0] for m in ids}
    cosine = lambda a, b: float(means[a] @ means[b])  # noqa: E731
    return {"embedding_cosine": pair_figures(ids, cosine, series_of),
            "same_stage_embedding_cosine": pair_figures(ids, cosine, lambda m: m[-1])}


def words_figures(windows: dict, ids: list[str]) -> dict:
    """A second reference, not a product path: TF-IDF of each meeting's words (same stop words), cosine."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    all_ids = sorted(windows)
    vectorizer = TfidfVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS | topics.SPOKEN_STOP_WORDS), sublinear_tf=True,
                                 token_pattern=topics._WORD, min_df=2)
    matrix = vectorizer.fit_transform(["\n".join(windows[m][1]) for m in all_ids])
    row = {m: i for i, m in enumerate(all_ids)}
    similarity = (matrix @ matrix.T).toarray()
    return {"words_cosine": pair_figures(ids, lambda a, b: float(similarity[row[a], row[b]]), series_of)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(BENCH_DIR / "results" / "topics.json"))
    args = parser.parse_args()
    meetings = load_meetings()
    log(f"{len(meetings)} meetings; windows from cached turn vectors")
    windows = {mid: windows_of(m) for mid, m in meetings.items()}
    series = sorted({series_of(m) for m in meetings})
    tune_series, report_series = series[0::2], series[1::2]
    tune = [m for m in meetings if series_of(m) in tune_series]
    report = [m for m in meetings if series_of(m) in report_series]
    log(f"tune: {len(tune_series)} series, {len(tune)} meetings; report: {len(report_series)} series, {len(report)}")

    grid = []
    for distance, unit_windows, min_units in itertools.product(*GRID.values()):
        result = run(windows, distance=distance, unit_windows=unit_windows, min_units=min_units)
        figures = figures_of(result, tune)
        grid.append({"distance": distance, "unit_windows": unit_windows, "min_units": min_units,
                     "topics": result["topics"], "units_in_no_topic": result["units_in_no_topic"],
                     "tune_p@k": figures["profile_cosine"][f"p@{K}"], "tune_gap": figures["profile_cosine"]["gap"]})
        log(f"d={distance} unit={unit_windows} min={min_units}: {result['topics']} topics, "
            f"tune P@{K} {grid[-1]['tune_p@k']:.3f}, gap {grid[-1]['tune_gap']:.3f}")
    best = max(grid, key=lambda g: (g["tune_p@k"], g["tune_gap"]))
    product = {"distance": topics.CLUSTER_DISTANCE, "unit_windows": topics.UNIT_WINDOWS, "min_units": topics.MIN_TOPIC_UNITS}
    chosen = {k: best[k] for k in ("distance", "unit_windows", "min_units")}
    log(f"chosen on the tune half: {chosen}; product constants: {product}")

    result = run(windows, **chosen, name=True)
    reported = figures_of(result, report)
    baseline = baseline_figures(windows, report)
    words = words_figures(windows, report)
    product_result = run(windows, **product) if product != chosen else result
    product_figures = figures_of(product_result, report)
    sizes = Counter(result["labels"].tolist())
    examples = [{"topic": c, "units": sizes[c], "label": topics.topic_label(result["terms"].get(c, [])),
                 "terms": result["terms"].get(c, []),
                 "series": dict(Counter(series_of(u.meeting) for u, label in
                                        zip(result["units_list"], result["labels"], strict=True) if label == c).most_common(3))}
                for c, _ in sizes.most_common() if c >= 0][:12]

    rows = [
        ("topic profiles, cosine (chosen)", reported["profile_cosine"]),
        ("topic sets, Jaccard (chosen)", reported["jaccard"]),
        ("topic profiles, cosine (product constants)", product_figures["profile_cosine"]),
        ("baseline: mean embedding, cosine", baseline["embedding_cosine"]),
        ("reference: TF-IDF of the meeting's words", words["words_cosine"]),
        ("diagnostic: same stage, topic profiles", reported["same_stage_profile_cosine"]),
        ("diagnostic: same stage, mean embedding", baseline["same_stage_embedding_cosine"]),
    ]
    print(f"\nReport half ({len(report_series)} series, {len(report)} meetings), tuned on the other half: {chosen}")
    print(f"{'':45} {'within':>8} {'across':>8} {'gap':>7} {'P@3':>7} {'random':>7}")
    for name, f in rows:
        print(f"{name:45} {f['within']:8.3f} {f['across']:8.3f} {f['gap']:7.3f} {f['p@3']:7.3f} {f['random_p@k']:7.3f}")
    print(f"\n{result['topics']} topics over {result['units']} units ({result['units_in_no_topic']:.0%} in none); "
          f"report meetings with no topic: {reported['meetings_with_no_topic']}")
    for e in examples[:8]:
        print(f"  {e['units']:4d} units  {e['label']:40}  {e['series']}")

    out = {"data": "AMI via ../shared/meetings-eval (93 meetings, 24 series)", "k": K,
           "split": {"tune_series": tune_series, "report_series": report_series,
                     "rule": "series sorted by id; even positions tune, odd report"},
           "window_vectors": "normalised mean of the window's turn vectors (product: the window text embedded)",
           "chosen": chosen, "product_constants": product, "grid_on_tune_half": grid,
           "report": {"chosen": {k: v for k, v in reported.items()}, "product_constants": product_figures,
                      "baseline_mean_embedding": baseline, "reference_words_tfidf": words},
           "topics": result["topics"], "units": result["units"], "units_in_no_topic": result["units_in_no_topic"],
           "largest_topics": examples}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
