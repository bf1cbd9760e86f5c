"""Train the turn rankers (action items, decisions) on the real meetings, cross-validated by series.

    .venv/bin/python bench/train_ranker.py                 # both kinds, 5 series folds, saves v<N>
    .venv/bin/python bench/train_ranker.py --kind action_items --version v2 --extra-labels labels.json

For each of 5 folds of whole meeting series it trains on the other series, tunes the selection
(threshold and cap) by an inner series split of the training part only, and scores the held-out
series: turn-level average precision, and precision / recall of the selected turns against the turns
annotators linked (+-1 turn), recall counted over gold items. The fold rankers are saved under .data/cache/rankers/fold-<k>/ (the
meetings bench uses the one that did not see a meeting's series); the final ranker is trained on all
series (plus `--extra-labels`: turns people approved or rejected) and saved to assistant/rankers/
with a card holding the training data's hash and the cross-validated figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from assistant import candidate_ranker as cr  # noqa: E402
from assistant.transcript_text import clean_turn  # noqa: E402
from bench.ami import CACHE_DIR, cached_embeddings, load_meetings, series_folds, series_of  # noqa: E402

FIELD = {"action_items": "gold_actions", "decisions": "gold_decisions"}
FOLD_DIR = CACHE_DIR.parent / "rankers"
GRID_THRESHOLDS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
GRID_PER_100 = [0.5, 1.0, 2.0, 4.0]


def meeting_names(meeting: dict) -> list[str]:
    return [a for p in meeting["participants"] for a in [p["name"], *p.get("aliases", [])]]


def meeting_rows(meeting: dict, kind: str) -> tuple[np.ndarray, np.ndarray, list[set[int]]]:
    turns = [cr.Turn(speaker=s["speaker"], text=s["text"]) for s in meeting["segments"]]
    vectors = cached_embeddings([clean_turn(s["text"]) for s in meeting["segments"]], meeting["id"])
    x = cr.features(turns, meeting_names(meeting), vectors)
    y = np.zeros(len(turns), dtype=np.int8)
    items = []
    for item in meeting[FIELD[kind]]:
        evidence = {i for i in item["evidence_segment_idx"] if 0 <= i < len(y)}
        if evidence:
            items.append(evidence)
        for i in evidence:
            y[i] = 1
    return x, y, items


def make_pipeline(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()),
                     ("model", LogisticRegression(C=c, class_weight="balanced", max_iter=3000))])


def fit(ids, data, c):
    x = np.vstack([data[m][0] for m in ids])
    y = np.concatenate([data[m][1] for m in ids])
    return make_pipeline(c).fit(x, y)


def selection_counts(scores: np.ndarray, items: list[set[int]], selection: dict) -> tuple[int, int, int]:
    """(selected turns near a gold item's evidence, selected, gold items with a selected turn near their
    evidence): recall counts items, not turns, as the item scorer does (a decision argued over five turns
    is one decision)."""
    ranker = cr.Ranker(kind="", version="", pipeline=None, card={"selection": selection})
    chosen = set(ranker.select(scores))
    near = set().union(*({j - 1, j, j + 1} for item in items for j in item)) if items else set()
    hit = sum(1 for i in chosen if i in near)
    found = sum(1 for item in items if any({j - 1, j, j + 1} & chosen for j in item))
    return hit, len(chosen), found


def f1_of(counts, n_gold):
    hit, n_sel, found = counts
    p = hit / n_sel if n_sel else 0.0
    r = found / n_gold if n_gold else 0.0
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def tune_selection(ids, data, c) -> dict:
    """Threshold and cap chosen by an inner series split of `ids` only."""
    inner = series_folds(ids, k=3)
    scored = {}
    for held in inner:
        train = [m for m in ids if series_of(m) not in held]
        model = fit(train, data, c)
        for m in ids:
            if series_of(m) in held:
                scored[m] = model.predict_proba(data[m][0])[:, 1]
    best = None
    for threshold in GRID_THRESHOLDS:
        for per_100 in GRID_PER_100:
            selection = {"threshold": threshold, "max_per_100_turns": per_100, "min_cap": 1}
            totals = np.zeros(3)
            n_gold = 0
            for m, scores in scored.items():
                totals += selection_counts(scores, data[m][2], selection)
                n_gold += len(data[m][2])
            f1, _p, _r = f1_of(totals, n_gold)
            if best is None or f1 > best[0]:
                best = (f1, selection)
    return best[1]


def average_precision(scores, gold) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(gold, scores)) if gold.any() else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=[*cr.KINDS, "all"], default="all")
    parser.add_argument("--version", default="v1")
    parser.add_argument("--c", type=float, default=0.05)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--extra-labels", help="JSON of labelled turns from people's decisions (see assistant.learning)")
    parser.add_argument("--folds-only", action="store_true",
                        help="only the cross-validation fold rankers (what bench/meetings.py needs); no new version")
    parser.add_argument("--out", default=str(BENCH_DIR / "results" / "ranker.json"))
    args = parser.parse_args()

    meetings = load_meetings()
    report = {}
    for kind in (cr.KINDS if args.kind == "all" else [args.kind]):
        started = time.monotonic()
        data = {m: meeting_rows(meeting, kind) for m, meeting in meetings.items()}
        ids = sorted(data)
        folds = series_folds(ids, k=args.folds)
        fold_rows, totals, n_gold, aps = [], np.zeros(3), 0, []
        for k, held in enumerate(folds):
            train = [m for m in ids if series_of(m) not in held]
            test = [m for m in ids if series_of(m) in held]
            selection = tune_selection(train, data, args.c)
            model = fit(train, data, args.c)
            counts = np.zeros(3)
            gold = 0
            for m in test:
                scores = model.predict_proba(data[m][0])[:, 1]
                counts += selection_counts(scores, data[m][2], selection)
                gold += len(data[m][2])
                aps.append(average_precision(scores, data[m][1]))
            f1, p, r = f1_of(counts, gold)
            fold_rows.append({"fold": k, "held_out_series": held, "selection": selection,
                              "turn_precision": round(p, 3), "turn_recall": round(r, 3), "turn_f1": round(f1, 3)})
            totals += counts
            n_gold += gold
            card = {"selection": selection, "held_out_series": held, "trained_on_series": sorted({series_of(m) for m in train}),
                    "features": [*cr.HAND_FEATURES, "embedding[384]", "context_embedding[384]"],
                    "features_version": cr.FEATURES_VERSION, "c": args.c}
            cr.save(cr.Ranker(kind=kind, version=f"fold{k}", pipeline=model, card=card), FOLD_DIR)
        f1, p, r = f1_of(totals, n_gold)
        cv = {"turn_precision": round(p, 3), "turn_recall": round(r, 3), "turn_f1": round(f1, 3),
              "mean_average_precision": round(float(np.nanmean(aps)), 3), "folds": fold_rows,
              "gold_items": n_gold}
        print(f"{kind}: held-out series turn P {p:.3f} R {r:.3f} F1 {f1:.3f}, mean AP {cv['mean_average_precision']:.3f}",
              flush=True)

        report[kind] = cv
        if args.folds_only:
            continue
        x = [data[m][0] for m in ids]
        y = [data[m][1] for m in ids]
        extra = 0
        if args.extra_labels:
            labelled = json.loads(Path(args.extra_labels).read_text()).get(kind, [])
            for row in labelled:
                x.append(np.asarray([row["features"]], dtype=np.float32))
                y.append(np.asarray([int(row["label"])], dtype=np.int8))
            extra = len(labelled)
        x_all, y_all = np.vstack(x), np.concatenate(y)
        digest = hashlib.sha256(x_all.tobytes() + y_all.tobytes()).hexdigest()
        final = make_pipeline(args.c).fit(x_all, y_all)
        import sklearn

        card = {"selection": tune_selection(ids, data, args.c), "trained_on_series": sorted({series_of(m) for m in ids}),
                "training_rows": int(len(y_all)), "positive_rows": int(y_all.sum()), "extra_labels": extra,
                "training_data_sha256": digest, "features": [*cr.HAND_FEATURES, "embedding[384]", "context_embedding[384]"],
                "features_version": cr.FEATURES_VERSION, "c": args.c,
                "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                             "numpy": np.__version__},
                "cross_validation": cv, "data": "meetings-eval (AMI, QMSum) gold evidence turns"}
        cr.save(cr.Ranker(kind=kind, version=args.version, pipeline=final, card=card))
        report[kind] = {**cv, "final_selection": card["selection"], "seconds": round(time.monotonic() - started, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
