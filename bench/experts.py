""""Who knows about X?" on real meetings: the product's expert scoring (assistant/expert_ranking.py)
over the 93 AMI meetings of ../shared/meetings-eval, one QMSum question at a time.

For each question with evidence turns, the meeting's turns are that meeting's knowledge, as the index
holds it: one chunk per turn and windows of 6 content turns (stride 3), embedded with the product's
embedder (cached under .data/cache/meetings-eval). By default a window's vector is the normalised
mean of its turns' vectors (`--window-vectors embed` embeds the window text as the product does,
which took too long on this machine's 2 shared cores to report here). Window texts carry no speaker labels here (the
product's do, but AMI's labels are roles that questions name: "what did the Marketing expert say").
Retrieval runs in memory: the nearest 80 chunks by cosine and the best 80 by shared question words
(content words, crude suffix stemming: an approximation of PostgreSQL's english full text), fused by
reciprocal rank (RRF k=60) as `knowledge_search_hybrid` does; attribution and scoring are the
product's own functions (`relevance_of`, `window_evidence`, `experts_rank`).

Expected expert: the participant who said the most words (cleaned turns) in the question's evidence
turns (ties: the question is skipped). Ranks: the scored people, then anyone with no evidence in
order of how much they spoke in the meeting. Baselines: the most talkative person of the meeting
(words), and a random order (exact expectation: top-1 1/n, MRR H(n)/n).

Tuning: the series are split in two by sorted series id (even positions: tune, odd: report). The
grid of (floor, decay, window credit) is searched on the tune half by MRR; every figure in the table
is on the report half. The defaults in ScoringWeights are the ones chosen here.

    .venv/bin/python bench/experts.py        # about a minute (turn vectors cached by bench/ami.py)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from assistant.expert_ranking import (  # noqa: E402
    SAID,
    Evidence,
    ScoringWeights,
    experts_rank,
    relevance_of,
    window_evidence,
)
from assistant.query_words import content_words  # noqa: E402
from assistant.transcript_text import clean_turn, is_backchannel  # noqa: E402
from bench.ami import cached_embeddings, load_meetings, series_of  # noqa: E402

DEPTH = 80  # assistant.experts.EVIDENCE_DEPTH
RRF_K = 60  # assistant.selectors.RRF_K
WINDOW_TURNS = 6  # assistant.indexing.WINDOW_TURNS
WINDOW_MAX_CHARS = 1500
GRID = {"floor": [0.1, 0.2, 0.3], "decay": [0.5, 0.7, 0.85, 1.0], "window_credit": [0.0, 0.25, 0.5, 1.0]}
RESULTS = BENCH_DIR / "results" / "experts.json"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[:-len(suffix)]
    return word


def word_count(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9']+", text))


class MeetingIndex:
    """One meeting's chunks: its turns and its windows, with vectors and stemmed words."""

    def __init__(self, meeting: dict, window_vectors: str = "mean"):
        self.meeting = meeting
        self.turns = [clean_turn(s["text"]) for s in meeting["segments"]]
        self.speakers = [s["speaker"] for s in meeting["segments"]]
        content = [i for i, t in enumerate(self.turns) if not is_backchannel(t)]
        stride = WINDOW_TURNS // 2
        self.windows = [content[start:start + WINDOW_TURNS] for start in range(0, max(len(content) - stride, 1), stride)]
        self.windows = [w for w in self.windows if w]
        window_texts = ["\n".join(self.turns[i] for i in w)[:WINDOW_MAX_CHARS] for w in self.windows]
        self.turn_vectors = cached_embeddings(self.turns, meeting["id"])
        if window_vectors == "embed":  # the product's way: the window's own text embedded (slow on 2 cores)
            self.window_vectors = cached_embeddings(window_texts, f"{meeting['id']}-experts-w6")
        else:  # the normalised mean of its turns' vectors: an approximation, from the cached turn vectors
            mean = np.vstack([self.turn_vectors[w].mean(axis=0) for w in self.windows])
            self.window_vectors = (mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        self.chunk_words = [set(map(stem, re.findall(r"[a-z0-9]+", t.lower()))) for t in [*self.turns, *window_texts]]
        self.talk = {}
        for speaker, text in zip(self.speakers, self.turns, strict=True):
            self.talk[speaker] = self.talk.get(speaker, 0) + word_count(text)

    def hybrid(self, question: str, vector: np.ndarray, *, use_vector=True, use_words=True) -> list[tuple[int, float]]:
        """[(chunk index, cosine)] in fused order: chunk < len(turns) is a turn, else a window."""
        vectors = np.vstack([self.turn_vectors, self.window_vectors])
        cosine = vectors @ vector
        fused: dict[int, float] = {}
        if use_vector:
            for rank, i in enumerate(np.argsort(-cosine, kind="stable")[:DEPTH]):
                fused[int(i)] = fused.get(int(i), 0.0) + 1.0 / (RRF_K + rank)
        words = {stem(w) for w in content_words(question)}
        if use_words and words:
            matches = [(len(words & cw), i) for i, cw in enumerate(self.chunk_words)]
            matches = sorted((m for m in matches if m[0] > 0), key=lambda m: (-m[0], m[1]))[:DEPTH]
            for rank, (_, i) in enumerate(matches):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
        order = sorted(fused, key=lambda i: (-fused[i], i))[:DEPTH]
        return [(i, float(cosine[i])) for i in order]

    def evidence(self, hits: list[tuple[int, float]], weights: ScoringWeights) -> list[Evidence]:
        """As assistant.experts.knowledge_evidence: a turn to its speaker, a window shared by words."""
        out = []
        n = len(self.turns)
        for i, cosine in hits:
            relevance = relevance_of(cosine, weights)
            if relevance <= 0:
                continue
            if i < n:
                out.append(Evidence(person=self.speakers[i], kind=SAID, text=self.turns[i], relevance=relevance,
                                    key=f"segment:{i}"))
            else:
                window = self.windows[i - n]
                out += window_evidence(relevance, [(self.speakers[j], self.turns[j], f"segment:{j}", {}) for j in window],
                                       window_key=f"window:{window[0]}", weights=weights)
        return out

    def ranking(self, hits, weights: ScoringWeights) -> list[str]:
        ranked = [e.person for e in experts_rank(self.evidence(hits, weights), limit=10, weights=weights)]
        rest = sorted((p for p in self.talk if p not in ranked), key=lambda p: (-self.talk[p], p))
        return ranked + rest


def expected_expert(meeting: dict, idx: list[int]) -> str | None:
    words: dict[str, int] = {}
    for i in idx:
        if 0 <= i < len(meeting["segments"]):
            segment = meeting["segments"][i]
            words[segment["speaker"]] = words.get(segment["speaker"], 0) + word_count(clean_turn(segment["text"]))
    if not words:
        return None
    top = sorted(words.values(), reverse=True)
    if top[0] == 0 or (len(top) > 1 and top[0] == top[1]):
        return None
    return max(words, key=words.get)


def names_a_participant(question: str, meeting: dict) -> bool:
    text = question.lower()
    return any(re.search(r"\b" + re.escape(alias.lower()) + r"\b", text)
               for p in meeting["participants"] for alias in [p["name"], *p.get("aliases", [])]
               if not (alias.isupper() and len(alias) <= 3)) or bool(re.search(r"\b(PM|ME|ID|UI)\b", question))


def score(rankings: list[tuple[list[str], str]]) -> dict:
    if not rankings:
        return {"n": 0, "top1": None, "mrr": None}
    ranks = [order.index(gold) + 1 if gold in order else None for order, gold in rankings]
    return {"n": len(rankings), "top1": sum(r == 1 for r in ranks) / len(ranks),
            "mrr": sum(1.0 / r for r in ranks if r) / len(ranks)}


def random_baseline(questions) -> dict:
    if not questions:
        return {"n": 0, "top1": None, "mrr": None}
    sizes = [len(q["index"].talk) for q in questions]
    return {"n": len(sizes), "top1": float(np.mean([1 / n for n in sizes])),
            "mrr": float(np.mean([sum(1 / k for k in range(1, n + 1)) / n for n in sizes]))}


def evaluate(questions, weights: ScoringWeights, hits_key: str = "hits") -> dict:
    return score([(q["index"].ranking(q[hits_key], weights), q["gold"]) for q in questions])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meetings", type=int, default=0, help="only the first N meetings (a quick look)")
    parser.add_argument("--window-vectors", choices=["mean", "embed"], default="mean",
                        help="windows as the mean of their turns' vectors (default, seconds), or embedded as the "
                             "product does (about an hour on 2 shared cores the first time)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    started = time.monotonic()
    meetings = load_meetings()
    if args.meetings:
        meetings = dict(list(meetings.items())[:args.meetings])
    series = sorted({series_of(m) for m in meetings})
    tune_series = set(series[0::2])
    log(f"{len(meetings)} meetings, {len(series)} series ({len(tune_series)} to tune on); embedding (cached)")
    questions, skipped = [], 0
    all_questions = [(mid, q) for mid, m in meetings.items() for q in m["qa"] if q.get("evidence_segment_idx")]
    question_vectors = cached_embeddings([q["question"] for _, q in all_questions], "experts-questions")
    indexes: dict[str, MeetingIndex] = {}
    for (mid, q), vector in zip(all_questions, question_vectors, strict=True):
        gold = expected_expert(meetings[mid], q["evidence_segment_idx"])
        if gold is None:
            skipped += 1
            continue
        if mid not in indexes:
            indexes[mid] = MeetingIndex(meetings[mid], args.window_vectors)
        index = indexes[mid]
        questions.append({
            "meeting": mid, "question": q["question"], "gold": gold, "index": index,
            "half": "tune" if series_of(mid) in tune_series else "report",
            "names_participant": names_a_participant(q["question"], meetings[mid]),
            "hits": index.hybrid(q["question"], vector),
            "hits_vector": index.hybrid(q["question"], vector, use_words=False),
            "hits_words": index.hybrid(q["question"], vector, use_vector=False),
        })
    tune = [q for q in questions if q["half"] == "tune"]
    report = [q for q in questions if q["half"] == "report"]
    log(f"{len(questions)} questions with an expected expert ({skipped} skipped: no evidence turns or a tie); "
        f"tune {len(tune)}, report {len(report)}")

    grid = []
    for floor, decay, credit in itertools.product(GRID["floor"], GRID["decay"], GRID["window_credit"]):
        weights = ScoringWeights(floor=floor, decay=decay, window_credit=credit)
        grid.append((evaluate(tune, weights)["mrr"], floor, decay, credit))
    grid.sort(key=lambda g: (-g[0], g[1], g[2], g[3]))
    _, floor, decay, credit = grid[0]
    tuned = ScoringWeights(floor=floor, decay=decay, window_credit=credit)
    log(f"chosen on the tune half: floor={floor} decay={decay} window_credit={credit} (tune MRR {grid[0][0]:.3f})")

    def most_talkative(qs):
        return score([(sorted(q["index"].talk, key=lambda p: (-q["index"].talk[p], p)), q["gold"]) for q in qs])

    no_name = [q for q in report if not q["names_participant"]]
    rows = [
        ("random order (expected)", random_baseline(report), random_baseline(no_name)),
        ("most talkative in the meeting", most_talkative(report), most_talkative(no_name)),
        ("experts, defaults in the product", evaluate(report, ScoringWeights()), evaluate(no_name, ScoringWeights())),
        ("experts, tuned (tune half)", evaluate(report, tuned), evaluate(no_name, tuned)),
        ("  ablation: vector half only", evaluate(report, tuned, "hits_vector"), evaluate(no_name, tuned, "hits_vector")),
        ("  ablation: word half only", evaluate(report, tuned, "hits_words"), evaluate(no_name, tuned, "hits_words")),
        ("  ablation: no windows", evaluate(report, replace(tuned, window_credit=0.0)),
         evaluate(no_name, replace(tuned, window_credit=0.0))),
        ("  variant: diminishing returns 0.7", evaluate(report, replace(tuned, decay=0.7)),
         evaluate(no_name, replace(tuned, decay=0.7))),
        ("  ablation: only the best piece", evaluate(report, replace(tuned, decay=0.0)),
         evaluate(no_name, replace(tuned, decay=0.0))),
    ]
    print()
    print(f"Report half: {len(report)} questions in {len({q['meeting'] for q in report})} meetings "
          f"({len(no_name)} that name no participant)")
    header = f"{'method':36s} {'top-1':>6s} {'MRR':>6s}   {'top-1*':>6s} {'MRR*':>6s}"
    print(header)
    print("-" * len(header))
    for name, all_q, unnamed in rows:
        cells = [f"{v:6.3f}" if v is not None and v == v else f"{'-':>6s}"
                 for v in (all_q["top1"], all_q["mrr"], unnamed["top1"], unnamed["mrr"])]
        print(f"{name:36s} {cells[0]} {cells[1]}   {cells[2]} {cells[3]}")
    print("* questions that name no participant role (\"what did the marketing expert say\" named ones left out)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "data": "../shared/meetings-eval (AMI meetings, QMSum specific queries with evidence turns)",
        "expected_expert": "the participant with the most words (cleaned turns) in the question's evidence turns; "
                           "ties skipped",
        "split": {"by": "meeting series", "tune_series": sorted(tune_series),
                  "report_series": sorted(set(series) - tune_series)},
        "questions": {"with_expert": len(questions), "skipped": skipped, "tune": len(tune), "report": len(report),
                      "report_naming_no_participant": len(no_name)},
        "retrieval": {"window_vectors": args.window_vectors, "depth": DEPTH, "rrf_k": RRF_K, "window_turns": WINDOW_TURNS,
                      "words": "in-memory approximation of the PostgreSQL full-text half"},
        "tuned_on_tune_half": {"floor": floor, "decay": decay, "window_credit": credit, "tune_mrr": grid[0][0]},
        "grid": [{"tune_mrr": m, "floor": f, "decay": d, "window_credit": c} for m, f, d, c in grid],
        "product_defaults": {"floor": ScoringWeights().floor, "decay": ScoringWeights().decay,
                             "window_credit": ScoringWeights().window_credit},
        "report_half": {name.strip(): {"all": all_q, "naming_no_participant": unnamed} for name, all_q, unnamed in rows},
        "seconds": round(time.monotonic() - started, 1),
    }, indent=2) + "\n")
    log(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
