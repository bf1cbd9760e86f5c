"""The assistant on real recorded meetings (../shared/meetings-eval: AMI design meetings, human labels).

Each meeting goes through the product's own path: its turns are stored as the transcription worker
stores segments (one speaker per participant, in a room of its own), the meeting ends, and then
  * action items: `meeting_notes.action_items_propose` (the end-of-meeting pass);
  * decisions: `meeting_notes.decisions_from_transcript` (what the final notes list);
  * Q&A: the segments are indexed as the Celery indexer does, and `qa.answer_question` answers each
    QMSum question with a participant as the asker.
The rankers used are the cross-validation fold rankers of bench/train_ranker.py: a meeting is scored
by the ranker that never saw its series. The scorers of meetings-eval then score the predictions.

    .venv/bin/python bench/meetings.py                                  # all 93 meetings: items, decisions
    .venv/bin/python bench/meetings.py --parts actions,decisions,qa --limit 12 --qa-per-meeting 3
    .venv/bin/python bench/meetings.py --series ES2002,IS1003 --writer model   # the model writes the items
    .venv/bin/python bench/meetings.py --llm-url http://127.0.0.1:8000/v1 --llm-model NAME --writer model

Writes bench/results/meetings.json (and the prediction files beside it) and prints the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from bench.ami import EVAL_DIR, load_meetings, series_of  # noqa: E402
from bench.common import BenchStack, log, start_model_servers  # noqa: E402
from bench.train_ranker import FOLD_DIR  # noqa: E402

SECONDS_PER_TURN = 4


def fold_ranker(kind: str, meeting_id: str):
    """The cross-validation ranker whose held-out series holds this meeting."""
    from assistant import candidate_ranker as cr

    for version in cr.available_versions(kind, FOLD_DIR):
        ranker = cr.load(kind, version, FOLD_DIR)
        if series_of(meeting_id) in ranker.card.get("held_out_series", []):
            return ranker
    raise SystemExit(f"no fold ranker held out {series_of(meeting_id)}: run bench/train_ranker.py first")


def store_meeting(data: dict, users: dict, index: int):
    """A room of its own, the participants, and every turn stored as the worker stores a final segment."""
    from rooms import services as room_services
    from transcription import services as transcription_services
    from transcription.models import Meeting, MeetingParticipant

    office_map = room_services.office_map_create(name=f"Bench {data['id']}", slug=f"bench-{data['id'].lower()}",
                                                 width=12, height=10, spawn_x=1, spawn_y=8)
    room = room_services.room_create(office_map=office_map, name=f"Room {data['id']}", kind="meeting", x=2, y=1,
                                     width=8, height=6, doors=[[5, 6]], capacity=8, assistant_enabled=True)
    start = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC) + dt.timedelta(days=index)
    meeting = Meeting.objects.create(room=room)
    for p in data["participants"]:
        MeetingParticipant.objects.get_or_create(meeting=meeting, user=users[p["name"]])
    segment_ids = []
    for i, turn in enumerate(data["segments"]):
        segment = transcription_services.transcript_segment_add(
            meeting_id=meeting.pk, speaker_id=users[turn["speaker"]].pk, start_ms=i * SECONDS_PER_TURN * 1000,
            end_ms=(i + 1) * SECONDS_PER_TURN * 1000 - 200, spoken_at=start + dt.timedelta(seconds=i * SECONDS_PER_TURN),
            text=turn["text"], words=[], confidence=0.9, model_id="ami-manual")
        segment_ids.append(segment.pk)
    Meeting.objects.filter(pk=meeting.pk).update(ended_at=start + dt.timedelta(seconds=len(segment_ids) * SECONDS_PER_TURN))
    meeting.refresh_from_db()
    return meeting, segment_ids


def scorer(script: str, predictions: Path, *extra: str) -> dict:
    done = subprocess.run([sys.executable, str(EVAL_DIR / script), str(predictions), *extra],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="actions,decisions", help="comma list of actions,decisions,qa")
    parser.add_argument("--series", default="", help="comma list of series (ES2002,...); default all")
    parser.add_argument("--limit", type=int, default=0, help="at most this many meetings (spread over the set)")
    parser.add_argument("--qa-per-meeting", type=int, default=0, help="at most this many questions per meeting")
    parser.add_argument("--writer", choices=["rules", "model"], default=None,
                        help="who writes action items (default: the product's OFFICE_ACTION_ITEM_WRITER)")
    parser.add_argument("--llm-url", help="an OpenAI-compatible server for both tiers (e.g. vLLM)")
    parser.add_argument("--llm-model", default="")
    parser.add_argument("--small-url", help="an already running small-tier server")
    parser.add_argument("--large-url", help="an already running large-tier server")
    parser.add_argument("--out", default=str(BENCH_DIR / "results" / "meetings.json"))
    args = parser.parse_args()
    parts = set(filter(None, args.parts.split(",")))

    meetings = load_meetings([s for s in args.series.split(",") if s] or None)
    if args.limit and args.limit < len(meetings):
        ids = sorted(meetings)
        step = len(ids) / args.limit
        meetings = {ids[int(i * step)]: meetings[ids[int(i * step)]] for i in range(args.limit)}
    needs_model = "qa" in parts or args.writer == "model"

    stack = BenchStack()
    stack.start()
    servers: list[subprocess.Popen] = []
    try:
        env = dict(stack.env)
        env["OFFICE_MODEL_DIR"] = str(ROOT / ".data" / "models")
        env["LLM_TIMEOUT_SECONDS"] = "300"
        if args.llm_url:
            env.update(LLM_BASE_URL=args.llm_url, LLM_LARGE_BASE_URL=args.llm_url)
            if args.llm_model:
                env.update(LLM_MODEL=args.llm_model, LLM_LARGE_MODEL=args.llm_model)
        elif args.small_url or args.large_url:
            env.update(LLM_BASE_URL=args.small_url or args.large_url, LLM_LARGE_BASE_URL=args.large_url or args.small_url)
        elif needs_model:
            servers = start_model_servers(env)
        os.environ.update(env)
        import django

        django.setup()
        result = run(meetings, parts, args)
    finally:
        for proc in servers:
            proc.terminate()
        stack.stop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))
    log(f"wrote {out}")
    return 0


def run(meetings: dict, parts: set[str], args) -> dict:
    from django.conf import settings

    from assistant import candidate_ranker, indexing, meeting_notes, qa
    from assistant.models import ModelCall
    from rooms import services as room_services

    users = {}
    for name in sorted({p["name"] for m in meetings.values() for p in m["participants"]}):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        users[name] = room_services.member_create(username=slug, password=None, display_name=name)
    names = {u.pk: name for name, u in users.items()}
    predictions = {"actions": {}, "decisions": {}, "qa": {}}
    timing = {"actions_s": [], "decisions_s": [], "answer_s": [], "index_s": []}
    per_meeting = []
    for index, (mid, data) in enumerate(sorted(meetings.items())):
        meeting, segment_ids = store_meeting(data, users, index)
        row = {"id": mid, "turns": len(segment_ids), "gold_actions": len(data["gold_actions"])}
        if "actions" in parts:
            candidate_ranker.set_current("action_items", fold_ranker("action_items", mid))
            started = time.monotonic()
            items = meeting_notes.action_items_propose(meeting, writer=args.writer)
            timing["actions_s"].append(time.monotonic() - started)
            predictions["actions"][mid] = [{"text": i.text, "owner": names.get(i.owner_id)} for i in items]
            row.update(actions=len(items), actions_s=round(timing["actions_s"][-1], 2))
        if "decisions" in parts:
            candidate_ranker.set_current("decisions", fold_ranker("decisions", mid))
            started = time.monotonic()
            decisions = meeting_notes.decisions_from_transcript(meeting)
            timing["decisions_s"].append(time.monotonic() - started)
            predictions["decisions"][mid] = [{"text": d, "owner": None} for d in decisions]
        if "qa" in parts and data["qa"]:
            started = time.monotonic()
            indexing.index_segments(segment_ids)
            timing["index_s"].append(time.monotonic() - started)
            seq_to_idx = {i + 1: i for i in range(len(segment_ids))}
            asker = users[data["participants"][0]["name"]]
            answers = []
            for question in data["qa"][:args.qa_per_meeting or None]:
                qa.answer_cache.clear()
                started = time.monotonic()
                result = qa.answer_question(user=asker, question=question["question"], room_id=meeting.room_id)
                timing["answer_s"].append(time.monotonic() - started)
                cited = [seq_to_idx[c["locator"]["seq"]] for c in result["citations"]
                         if c["kind"] == "transcript" and c["locator"].get("seq") in seq_to_idx]
                answers.append({"question": question["question"], "answer": result["answer"] if result["found"] else "",
                                "cited_segment_idx": cited, "found": result["found"]})
            predictions["qa"][mid] = answers
        candidate_ranker.set_current("action_items", None)
        candidate_ranker.set_current("decisions", None)
        per_meeting.append(row)
        log(f"{mid}: {row}")

    out_dir = Path(args.out).with_suffix("")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"meetings": len(meetings), "series": sorted({series_of(m) for m in meetings}),
                     "writer": args.writer or settings.OFFICE_ACTION_ITEM_WRITER,
                     "models": {"small": settings.LLM_MODEL, "large": settings.LLM_LARGE_MODEL},
                     "rankers": "cross-validation folds: each meeting scored by a ranker that never saw its series",
                     "machine": f"{os.cpu_count()} cores"}
    for kind, pred in predictions.items():
        if pred:
            (out_dir / f"{kind}.json").write_text(json.dumps(pred, indent=1))
    if predictions["actions"]:
        scored = scorer("score_actions.py", out_dir / "actions.json", "--meetings-from", str(out_dir / "actions.json"))
        gold_meetings = [r for r in per_meeting if r["gold_actions"]]
        summary["action_items"] = {
            **{k: scored[k] for k in ("precision", "recall", "f1", "tp", "pred", "gold", "owner_accuracy", "owner_n",
                                      "invented_owners", "sweep")},
            "proposals_per_meeting": round(statistics.mean(r["actions"] for r in per_meeting), 2),
            "gold_per_meeting": round(statistics.mean(r["gold_actions"] for r in gold_meetings), 2) if gold_meetings else 0,
            "seconds_per_meeting": _latency(timing["actions_s"]),
        }
    if predictions["decisions"]:
        scored = scorer("score_actions.py", out_dir / "decisions.json", "--field", "gold_decisions",
                        "--meetings-from", str(out_dir / "decisions.json"))
        summary["decisions"] = {**{k: scored[k] for k in ("precision", "recall", "f1", "tp", "pred", "gold", "sweep")},
                                "seconds_per_meeting": _latency(timing["decisions_s"])}
    if predictions["qa"]:
        scored = scorer("score_qa.py", out_dir / "qa.json", "--answered-only")
        answered = [a for answers in predictions["qa"].values() for a in answers]
        summary["qa"] = {**{k: v for k, v in scored.items() if not isinstance(v, list | dict)},
                         "questions": len(answered),
                         "not_found_share": round(sum(not a["found"] for a in answered) / max(len(answered), 1), 3),
                         "seconds_per_question": _latency(timing["answer_s"]),
                         "index_seconds_per_meeting": _latency(timing["index_s"])}
    calls = ModelCall.objects.exclude(status="cached")
    summary["model_calls"] = {
        purpose: {"calls": len(rows), "prompt_tokens_mean": round(statistics.mean(r[0] for r in rows), 1),
                  "completion_tokens_mean": round(statistics.mean(r[1] for r in rows), 1),
                  "latency_ms_p50": int(statistics.median(r[2] for r in rows)),
                  "statuses": {s: sum(1 for r in rows if r[3] == s) for s in {r[3] for r in rows}}}
        for purpose in set(calls.values_list("purpose", flat=True))
        for rows in [list(calls.filter(purpose=purpose).values_list("prompt_tokens", "completion_tokens",
                                                                     "latency_ms", "status"))]
    }
    return {"summary": summary, "per_meeting": per_meeting}


def _latency(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 2), "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
            "max": round(ordered[-1], 2), "n": len(ordered)}


if __name__ == "__main__":
    sys.exit(main())
