"""Meeting assistant smoke test on the real embedded models (or any OpenAI-compatible server).

Its labelled set was written for it: it shows the plumbing works end to end, not the assistant's
quality. The quality figure is bench/meetings.py, on real recorded meetings.

Starts its own embedded services in a temp dir, migrates, and (unless --llm-url is given) the
embedded llama.cpp servers from the packaged GGUF models. On the labelled set in
bench/data/assistant_labelled.json (8 short meetings written for this bench, 19 gold action items;
12 questions over 10 knowledge chunks, 3 of them unanswerable for the asker) it measures:

  * summary refresh latency p50/p95 over 60 s transcript windows (one rolling summary per meeting,
    `assistant.meeting_notes.summary_refresh`, small tier), target p95 <= 15 s on CPU;
  * action-item precision / recall / F1 for the commitment rules alone, the turn ranker with the
    deterministic writer (what the product runs), and the ranker with the model writing its turns. A prediction matches a gold item when their source lines overlap and the owner is
    the same person (or both unassigned); each gold item matches once;
  * Q&A citation accuracy: an answerable question is right when a citation points at its gold chunk;
    an unanswerable one is right when the answer is "not found".

    .venv/bin/python bench/assistant.py                       # both embedded tiers, ~10-15 min on 2 cores
    .venv/bin/python bench/assistant.py --action-tier small   # faster, weaker
    .venv/bin/python bench/assistant.py --llm-url http://127.0.0.1:8000/v1 --llm-model NAME   # e.g. vLLM

Prints a summary and writes bench/results/assistant.json (or --out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from bench.common import BenchStack, latency_summary, log, start_model_servers  # noqa: E402

DATA = json.loads((BENCH_DIR / "data" / "assistant_labelled.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--action-tier", choices=["small", "large"], default="large")
    parser.add_argument("--llm-url", help="use this OpenAI-compatible server for both tiers")
    parser.add_argument("--llm-model", default="", help="model name on --llm-url")
    parser.add_argument("--llm-external", action="store_true", help="treat --llm-url as external (redact)")
    parser.add_argument("--out", default=str(BENCH_DIR / "results" / "assistant.json"))
    parser.add_argument("--skip", default="", help="comma list of parts to skip: summary,actions,qa")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    stack = BenchStack()
    stack.start()
    servers: list[subprocess.Popen] = []
    try:
        env = dict(stack.env)
        env["OFFICE_MODEL_DIR"] = str(ROOT / ".data" / "models")
        if args.llm_url:
            env.update(LLM_BASE_URL=args.llm_url, LLM_LARGE_BASE_URL=args.llm_url)
            if args.llm_model:
                env.update(LLM_MODEL=args.llm_model, LLM_LARGE_MODEL=args.llm_model)
            if args.llm_external:
                env["LLM_EXTERNAL"] = "true"
        else:
            servers = start_model_servers(env)
        env["LLM_TIMEOUT_SECONDS"] = "300"
        os.environ.update(env)
        import django

        django.setup()
        result = run(args, skip)
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "details"}, indent=2))
    log(f"wrote {args.out}")
    return 0


def run(args, skip: set[str]) -> dict:
    from django.conf import settings

    from assistant import llm, meeting_notes, qa
    from assistant.models import ModelCall
    from assistant.services import knowledge_chunks_add
    from rooms import services as room_services
    from transcription import services as transcription_services
    from transcription.models import Meeting, MeetingParticipant

    people = {u: room_services.member_create(username=u, password="bench-pass-1234", display_name=n)
              for u, n in DATA["people"]}
    hq = room_services.office_map_create(name="Bench HQ", slug="bench-hq", width=40, height=24, spawn_x=10, spawn_y=15)
    room_services.room_create(office_map=hq, name="Open", kind="open", x=0, y=0, width=40, height=24)
    atlas = room_services.room_create(office_map=hq, name="Atlas", kind="meeting", x=2, y=1, width=9, height=6,
                                      doors=[[6, 6]], capacity=8, assistant_enabled=True)
    vault = room_services.room_create(office_map=hq, name="Vault", kind="private", x=16, y=1, width=9, height=6,
                                      doors=[[20, 6]])
    room_services.room_set_members(room=vault, user_ids=[people["alice"].pk])
    start = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)

    meetings = []
    for spec in DATA["meetings"]:
        meeting = Meeting.objects.create(room=atlas)
        for speaker in dict.fromkeys(s for s, _ in spec["lines"]):
            MeetingParticipant.objects.create(meeting=meeting, user=people[speaker])
        for i, (speaker, text) in enumerate(spec["lines"]):
            # 7.5 s per line: 8 lines = a 60 s window.
            transcription_services.transcript_segment_add(
                meeting_id=meeting.pk, speaker_id=people[speaker].pk, start_ms=i * 7500, end_ms=i * 7500 + 7000,
                spoken_at=start + dt.timedelta(seconds=i * 7.5), text=text, words=[], confidence=0.9,
                model_id="labelled")
        meeting.refresh_from_db()
        meeting.room = atlas
        meetings.append((spec, meeting))
        Meeting.objects.filter(pk=meeting.pk).update(ended_at=start + dt.timedelta(minutes=1))
    client = llm.get_client()
    out: dict = {"models": {"small": settings.LLM_MODEL, "large": settings.LLM_LARGE_MODEL},
                 "endpoints": {"small": llm.endpoint_for("small").base_url, "large": llm.endpoint_for("large").base_url},
                 "machine": f"{os.cpu_count()} cores", "details": {}}

    if "summary" not in skip:
        latencies, sources = [], []
        for spec, meeting in meetings:
            t = time.monotonic()
            summary = meeting_notes.summary_refresh(meeting, client=client)
            latencies.append(time.monotonic() - t)
            sources.append(summary.source)
            calls = list(ModelCall.objects.filter(input_ids__meeting=meeting.pk, purpose__startswith="meeting.summary")
                         .order_by("created_at").values("status", "latency_ms", "prompt_tokens", "completion_tokens"))
            out["details"].setdefault("summaries", []).append({"meeting": spec["name"], "summary": summary.summary,
                                                              "decisions": summary.decisions, "source": summary.source,
                                                              "seconds": round(latencies[-1], 2), "calls": calls})
            log(f"summary {spec['name']}: {latencies[-1]:.1f}s ({summary.source}) "
                + ", ".join(f"{c['status']} {c['prompt_tokens']}+{c['completion_tokens']} tok {c['latency_ms']} ms"
                            for c in calls))
        out["summary_refresh_s"] = {**latency_summary(latencies), "windows": len(latencies),
                                    "window_seconds": 60, "from_model": sources.count("model"),
                                    "target_p95_s": 15.0}

    if "actions" not in skip:
        from assistant import extract

        if args.action_tier == "small":
            settings.LLM_LARGE_BASE_URL = llm.endpoint_for("small").base_url
            settings.LLM_LARGE_MODEL = settings.LLM_MODEL
        # The product's path (ranker + the deterministic writer), the model writing the ranked turns,
        # and the commitment rules alone, for comparison.
        modes = {"rules": [], "ranker+model": [], "ranker+rules": []}
        action_latency = []
        gold_total = 0
        for spec, meeting in meetings:
            gold = spec["gold"]
            gold_total += len(gold)
            ppl = meeting_notes.people_for(meeting)
            segs = list(meeting.segments.select_related("speaker__profile").order_by("seq"))
            lines = meeting_notes._lines(segs, ppl)
            rules = extract.rule_candidates(lines, ppl)
            t = time.monotonic()
            merged, _calls, _label = meeting_notes.extract_candidates(lines, ppl, meeting=meeting, client=client,
                                                                      writer="rules")
            action_latency.append(time.monotonic() - t)
            with_model, _calls, _label = meeting_notes.extract_candidates(lines, ppl, meeting=meeting, client=client,
                                                                          writer="model")
            for mode, preds in (("rules", rules), ("ranker+model", with_model), ("ranker+rules", merged)):
                modes[mode].append(score(preds, gold))
            out["details"].setdefault("action_items", []).append({
                "meeting": spec["name"], "gold": gold,
                "predicted": [{"text": c.text, "owner": c.owner.display_name if c.owner else None,
                               "lines": c.lines, "due": c.due.isoformat() if c.due else None,
                               "confidence": round(c.confidence, 2), "sources": sorted(c.sources)} for c in merged]})
            log(f"action items {spec['name']}: {action_latency[-1]:.1f}s, {len(merged)} proposed, gold {len(gold)}")
        out["action_items"] = {mode: prf(scores) for mode, scores in modes.items()}
        out["action_items"]["gold_items"] = gold_total
        out["action_items"]["tier"] = args.action_tier
        out["action_items"]["latency_s"] = latency_summary(action_latency)

    if "qa" not in skip:
        rooms = {"atlas": atlas, "vault": vault}
        chunks = knowledge_chunks_add([
            {"room": rooms[r], "source_kind": k, "source_id": f"bench:{i}", "locator": {"n": i}, "text": t}
            for i, (r, k, t) in enumerate(DATA["knowledge"])])
        right, answered_right, unanswerable_right, qa_latency = 0, 0, 0, []
        for item in DATA["questions"]:
            qa.answer_cache.clear()
            t = time.monotonic()
            result = qa.answer_question(user=people["bob"], question=item["q"])
            qa_latency.append(time.monotonic() - t)
            cited = {c["locator"].get("n") for c in result["citations"]}
            if item["gold"] is None:
                ok = not result["found"]
                unanswerable_right += ok
            else:
                ok = result["found"] and item["gold"] in cited
                answered_right += ok
            right += ok
            out["details"].setdefault("qa", []).append({"q": item["q"], "gold": item["gold"], "answer": result["answer"],
                                                        "cited": sorted(c for c in cited if c is not None), "ok": ok})
            log(f"qa {item['q']!r}: {'ok' if ok else 'WRONG'} ({qa_latency[-1]:.1f}s)")
        answerable = sum(1 for q in DATA["questions"] if q["gold"] is not None)
        out["qa"] = {"questions": len(DATA["questions"]), "citation_accuracy": round(right / len(DATA["questions"]), 3),
                     "answerable_correctly_cited": f"{answered_right}/{answerable}",
                     "unanswerable_not_found": f"{unanswerable_right}/{len(DATA['questions']) - answerable}",
                     "latency_s": latency_summary(qa_latency), "chunks": len(chunks)}
    out["model_calls"] = {s: ModelCall.objects.filter(status=s).count() for s in ModelCall.Status.values}
    return out


def score(preds, gold) -> tuple[int, int, int]:
    used = set()
    tp = 0
    for pred in preds:
        owner = pred.owner.username if pred.owner else None
        for i, g in enumerate(gold):
            if i in used:
                continue
            if set(pred.lines) & set(g["lines"]) and owner == g["owner"]:
                used.add(i)
                tp += 1
                break
    return tp, len(preds) - tp, len(gold) - len(used)


def prf(scores) -> dict:
    tp = sum(s[0] for s in scores)
    fp = sum(s[1] for s in scores)
    fn = sum(s[2] for s in scores)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f1, 3), "tp": tp, "fp": fp, "fn": fn}


if __name__ == "__main__":
    sys.exit(main())
