"""No request waits on a model, under load (issue 16, docs/adr/0015): while 20 people ask at once, every
other request is still answered quickly.

    .venv/bin/python bench/ask_load.py                      # a fake model that writes each answer over ~5 s
    .venv/bin/python bench/ask_load.py --model embedded     # the embedded llama.cpp small model (slow on CPU)

Starts a throwaway office (bench/common.py BenchStack: embedded PostgreSQL and Valkey, Daphne on
127.0.0.1), 20 knowledge facts in one open room, and a model: by default a FAKE OpenAI-compatible
server on 127.0.0.1 (a subprocess) that streams each answer over --model-seconds and answers unstreamed
calls after as long (no language model at all: this bench measures the office, not a model); with
`--model embedded`, the packaged llama.cpp small model for both tiers.

Two phases, each with a probe client that asks for other things every 100 ms, round robin: GET /healthz,
GET /api/rooms/, GET /office/<map>/ (a map page):

  * stream: --askers members each POST /api/assistant/ask/stream/ at the same moment and read the
    server-sent events to the end (what the page does);
  * jobs: as many scripts POST /api/assistant/ask/ with an API token (202 and a result URL at once),
    then long-poll the result URL with ?wait=10 until done; one Celery worker on the `assistant`
    queue (--worker-concurrency processes) answers them.

Prints the probes' p50/p95/max per phase (and idle, before any load), the askers' time to the first
event and to `done` (scripts: to the 202 and to the result), the most threads Daphne had, and writes
bench/results/ask_load.json. Target: probe p95 < 200 ms while the askers wait.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402
from common import (  # noqa: E402
    ROOT,
    VENV_BIN,
    BenchStack,
    latency_summary,
    log,
    print_table,
    wait_healthy,
    write_results,
)

PROBE_TARGET_P95_MS = 200.0
FACTS = [
    ("The printer on the second floor needs toner; Dana orders it every Monday.",
     "Who orders toner for the second floor printer?"),
    ("Visitor parking is behind building B and must be booked one day ahead.",
     "Where can visitors park and when must they book?"),
    ("The mobile app release ships on Friday after QA signs off.", "When does the mobile app ship?"),
    ("Expense reports are due on the fifth of each month, approved by team leads.",
     "When are expense reports due?"),
    ("The storage vendor contract renews on March 3 and needs sixty days notice.",
     "When does the storage vendor contract renew?"),
    ("Lunch on Thursdays is pizza in the kitchen at noon.", "What is for lunch on Thursdays?"),
    ("The projector in Atlas was replaced with a 4K model last week.", "What happened to the Atlas projector?"),
    ("New hires get their laptops from IT on their first morning at nine.",
     "When do new hires receive their laptops?"),
    ("The quarterly budget sheet is due on the last Friday of the quarter; Carol reviews it.",
     "Who reviews the quarterly budget sheet?"),
    ("The office Wi-Fi password changes on the first day of every month.", "How often does the Wi-Fi password change?"),
    ("Fire drills happen twice a year, in April and October.", "When are the fire drills?"),
    ("The coffee machine on floor three is descaled every Wednesday by facilities.",
     "Who descales the coffee machine on floor three?"),
    ("Holiday requests must be entered in the HR portal two weeks in advance.",
     "How early must holiday requests be made?"),
    ("The customer support rota changes every Sunday evening.", "When does the support rota change?"),
    ("Server maintenance windows are on Saturday nights from 22:00 to 02:00.",
     "When is the server maintenance window?"),
    ("The design review for the onboarding flow is on Tuesday with Bob presenting.",
     "Who presents the onboarding design review?"),
    ("Bike storage is in the basement, with a key card from reception.", "Where can I store my bike?"),
    ("The all-hands meeting is the first Thursday of each month at 16:00.", "When is the all-hands meeting?"),
    ("Security badges that are lost must be reported to reception within a day.",
     "What do I do if I lose my security badge?"),
    ("The sales team's targets for next quarter are set at the offsite in June.",
     "When are next quarter's sales targets set?"),
]
FAKE_ANSWER = ("According to the room's notes, this is settled [1]. The passage says so plainly, and nobody has "
               "changed it since; ask again if the plan moves.")


# --- the fake model (a subprocess: its threads must not share the probe client's interpreter) ---

def serve_fake_model(port: int, seconds: float) -> None:
    """An OpenAI-compatible chat-completions server that is slow on purpose, and says so in /health."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    def reply_for(body: dict) -> str:
        name = body.get("response_format", {}).get("json_schema", {}).get("name", "")
        if name == "room_catch_up":
            return json.dumps({"summary": FAKE_ANSWER.replace(" [1]", ""), "highlights": [1], "confidence": 0.8})
        return json.dumps({"answer": FAKE_ANSWER, "citations": [1], "found": True, "confidence": 0.9})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self._json(200, {"status": "ok", "model": f"FAKE: no language model, {seconds:g} s per answer"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            reply = reply_for(body)
            usage = {"prompt_tokens": 300, "completion_tokens": len(reply.split())}
            if not body.get("stream"):
                time.sleep(seconds)
                self._json(200, {"choices": [{"message": {"role": "assistant", "content": reply}}], "usage": usage})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pieces = [reply[i:i + 4] for i in range(0, len(reply), 4)]
            try:
                for piece in pieces:
                    time.sleep(seconds / len(pieces))
                    self._chunk({"choices": [{"index": 0, "delta": {"content": piece}}]})
                self._chunk({"choices": [], "usage": usage})
                self._chunk_raw("data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _chunk(self, payload: dict) -> None:
            self._chunk_raw(f"data: {json.dumps(payload)}\n\n")

        def _chunk_raw(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


# --- a small HTTP/1.1 client on asyncio streams (one connection per request, as a fresh browser fetch) ---

class Http:
    def __init__(self, base_url: str):
        parsed = urlparse(base_url)
        if parsed.hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit("benchmarks only talk to 127.0.0.1")
        self.host, self.port = parsed.hostname, parsed.port

    async def request(self, method: str, path: str, *, headers: dict | None = None, body: dict | None = None,
                      on_data=None) -> tuple[int, dict, bytes]:
        """(status, headers, body); `on_data(bytes)` hears each piece of the body as it arrives."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            data = json.dumps(body).encode() if body is not None else b""
            lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: close",
                     f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
            if body is not None:
                lines.append("Content-Type: application/json")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            response_headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                response_headers[name.strip().lower()] = value.strip()
            chunks = []
            if response_headers.get("transfer-encoding") == "chunked":
                while size := int((await reader.readline()).strip() or b"0", 16):
                    chunk = await reader.readexactly(size)
                    await reader.readline()
                    chunks.append(chunk)
                    if on_data:
                        on_data(chunk)
            elif "content-length" in response_headers:
                chunks.append(await reader.readexactly(int(response_headers["content-length"])))
            else:
                while chunk := await reader.read(65536):
                    chunks.append(chunk)
                    if on_data:
                        on_data(chunk)
            return status, response_headers, b"".join(chunks)
        finally:
            writer.close()


def session_headers(member: dict) -> dict:
    # Any 32-character CSRF secret will do, as long as the cookie and the header agree.
    csrf = "b" * 32
    return {"Cookie": f"sessionid={member['sessionid']}; csrftoken={csrf}", "X-CSRFToken": csrf}


# --- the load ---

class Probe:
    """Other requests every 100 ms while the askers wait; latencies tagged with the phase they fell in."""

    def __init__(self, http: Http, member: dict, map_id: int, daphne_pid: int):
        self.http, self.headers = http, session_headers(member)
        self.paths = ["/healthz", "/api/rooms/", f"/office/{map_id}/"]
        self.phase = "idle"
        self.samples: list[tuple[str, str, float, int, float]] = []  # phase, path, seconds, status, sent at
        self.threads: dict[str, int] = {}
        self.daphne = psutil.Process(daphne_pid)
        self._task: asyncio.Task | None = None

    async def _one(self, path: str, phase: str) -> None:
        started = time.perf_counter()
        try:
            status, _, _ = await self.http.request("GET", path, headers=self.headers)
        except OSError:
            status = 0
        self.samples.append((phase, path, time.perf_counter() - started, status, started))

    async def _run(self) -> None:
        n = 0
        pending = set()
        while True:
            phase = self.phase
            task = asyncio.create_task(self._one(self.paths[n % len(self.paths)], phase))
            pending.add(task)
            task.add_done_callback(pending.discard)
            try:
                self.threads[phase] = max(self.threads.get(phase, 0), self.daphne.num_threads())
            except psutil.Error:
                pass
            n += 1
            await asyncio.sleep(0.1)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.sleep(1.0)  # the last probes come back

    def summary(self, phase: str, windows: list[tuple[float, float]] | None = None) -> dict:
        """The probes of `phase` (only those sent inside one of `windows`, when given)."""
        rows = [s for s in self.samples if s[0] == phase
                and (windows is None or any(a <= s[4] <= b for a, b in windows))]
        out = {"requests": len(rows), "errors": sum(1 for r in rows if r[3] != 200),
               "error_statuses": sorted({r[3] for r in rows if r[3] != 200}),
               **latency_summary([r[2] for r in rows]), "daphne_threads_max": self.threads.get(phase)}
        out["by_path"] = {path: latency_summary([r[2] for r in rows if r[1] == path]) for path in self.paths}
        if rows:  # when in the phase the slow ones were: [seconds into the phase, ms, path, status]
            out["timeline"] = [[round(r[4] - rows[0][4], 2), round(r[2] * 1000, 1), r[1], r[3]] for r in rows]
        return out


def parse_events(raw: bytes) -> list[dict]:
    return [json.loads(line[5:]) for block in raw.decode().split("\n\n") for line in block.split("\n")
            if line.startswith("data:")]


async def stream_asker(http: Http, member: dict, question: str, room: int) -> dict:
    """One person asking through the page's stream: times to the first event, first words, and done."""
    started, marks, buffer = time.perf_counter(), {}, bytearray()

    def heard(chunk: bytes) -> None:
        now = time.perf_counter() - started
        buffer.extend(chunk)
        complete, _, rest = bytes(buffer).rpartition(b"\n\n")
        buffer[:] = rest
        for event in parse_events(complete):
            marks.setdefault(event["type"], now)

    status, _, raw = await http.request("POST", "/api/assistant/ask/stream/", headers=session_headers(member),
                                        body={"question": question, "room": room}, on_data=heard)
    events = parse_events(raw) if status == 200 else []
    done = events[-1] if events and events[-1]["type"] == "done" else {}
    return {"status": status, "first_event_s": min(marks.values()) if marks else None,
            "first_delta_s": marks.get("delta"), "done_s": marks.get("done"),
            "found": done.get("found"), "unavailable": done.get("unavailable"), "cached": done.get("cached")}


async def script_asker(http: Http, token: str, question: str, room: int) -> dict:
    """One script: POST /ask/ (202 at once), then long-poll the result URL until the job is done."""
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    status, response_headers, raw = await http.request("POST", "/api/assistant/ask/", headers=headers,
                                                       body={"question": question, "room": room})
    accepted_s = time.perf_counter() - started
    if status != 202:
        return {"status": status, "accepted_s": accepted_s, "done_s": None, "detail": raw[:200].decode()}
    url, polls, job = response_headers["location"], 0, {}
    while True:
        polls += 1
        status, _, raw = await http.request("GET", f"{url}?wait=10", headers=headers)
        job = json.loads(raw)
        if status != 202 or polls > 60:
            break
    result = job.get("result") or {}
    return {"status": status, "accepted_s": accepted_s, "done_s": time.perf_counter() - started, "polls": polls,
            "job_status": job.get("status"), "found": result.get("found"), "unavailable": result.get("unavailable")}


def timings(rows: list[dict], keys: list[str]) -> dict:
    return {key: latency_summary([r[key] for r in rows if r.get(key) is not None]) for key in keys}


async def run_load(args, stack: BenchStack, setup: dict) -> dict:
    http = Http(stack.url)
    members, room, map_id = setup["members"], setup["room"], setup["map"]
    probe = Probe(http, members[-1], map_id, stack.pid)
    askers = members[:args.askers]
    questions = [FACTS[i % len(FACTS)][1] for i in range(args.askers)]

    # warm-up, unmeasured: the embedder and the first model connection in Daphne
    await stream_asker(http, members[-1], "Is there anything about the kitchen?", room)
    probe.start()
    await asyncio.sleep(3.0)  # idle: the probes alone

    streamed, waiting, stream_wall = [], [], 0.0
    for n in range(1, args.rounds + 1):
        if n > 1:  # a new fact in the room: the answers of the last round are no longer cached
            await asyncio.to_thread(setup["add_fact"], f"Round {n} of the bench started.")
        log(f"stream, round {n}/{args.rounds}: {len(askers)} askers at once, each reading the answer as "
            "server-sent events")
        probe.phase = "stream"
        started = time.perf_counter()
        rows = await asyncio.gather(*(stream_asker(http, m, q, room) for m, q in zip(askers, questions, strict=True)))
        stream_wall = max(stream_wall, time.perf_counter() - started)
        streamed += rows
        if all(r["first_event_s"] is not None and r["done_s"] is not None for r in rows):
            # everyone has heard back and is waiting for the model's words
            waiting.append((started + max(r["first_event_s"] for r in rows), started + min(r["done_s"] for r in rows)))
        probe.phase = "between"
        await asyncio.sleep(2.0)

    jobs_part: dict = {"skipped": True}
    if setup.get("tokens"):
        # the worker's processes warm up (each loads the embedder on its first job)
        await asyncio.gather(*(script_asker(http, setup["tokens"][-1], f"Anything about floor {n}?", room)
                               for n in range(args.worker_concurrency)))
        log(f"jobs: {len(askers)} scripts at once, POST /api/assistant/ask/ then the result URL (?wait=10)")
        probe.phase = "jobs"
        started = time.perf_counter()
        scripted = await asyncio.gather(*(script_asker(http, t, q, room)
                                          for t, q in zip(setup["tokens"][:args.askers], questions, strict=True)))
        jobs_wall = time.perf_counter() - started
        probe.phase = "after"
        jobs_part = {"scripts": len(scripted), "wall_s": round(jobs_wall, 1),
                     "statuses": sorted({r["status"] for r in scripted}),
                     "answered": sum(1 for r in scripted if r.get("job_status") == "done"),
                     "found": sum(1 for r in scripted if r.get("found")),
                     "unavailable": sum(1 for r in scripted if r.get("unavailable")),
                     **timings(scripted, ["accepted_s", "done_s"]),
                     "polls_max": max((r.get("polls", 0) for r in scripted), default=0),
                     "worker_concurrency": args.worker_concurrency}
    await probe.stop()
    out = {
        "probe_idle": probe.summary("idle"),
        "stream": {"askers": len(askers), "rounds": args.rounds, "round_wall_s_max": round(stream_wall, 1),
                   "statuses": sorted({r["status"] for r in streamed}),
                   "answered": sum(1 for r in streamed if r["done_s"] is not None),
                   "found": sum(1 for r in streamed if r["found"]),
                   "unavailable": sum(1 for r in streamed if r["unavailable"]),
                   "cached": sum(1 for r in streamed if r["cached"]),
                   **timings(streamed, ["first_event_s", "first_delta_s", "done_s"]),
                   "probe": probe.summary("stream"),
                   "probe_while_all_wait_on_the_model": probe.summary("stream", windows=waiting)},
        "jobs": jobs_part,
    }
    if not jobs_part.get("skipped"):
        jobs_part["probe"] = probe.summary("jobs")
    return out


# --- the stack ---

def prepare_data(stack: BenchStack, askers: int, with_tokens: bool) -> dict:
    """Members with sessions, one map with its open room, the facts as that room's knowledge, and
    (for the scripts) an API token per member."""
    setup = stack.setup_office({"members": askers + 1, "prefix": "asker",
                                "maps": [{"name": "Ask", "width": 30, "height": 20}]})
    os.environ.update(stack.env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from assistant.services import knowledge_chunks_add
    from rooms import services as room_services
    from rooms.models import Room

    room = Room.objects.get(pk=setup["maps"][0]["room"])
    knowledge_chunks_add([{"room": room, "source_kind": "document", "source_id": f"bench-fact:{i}",
                           "locator": {"fact": i}, "text": text} for i, (text, _) in enumerate(FACTS)])
    tokens = []
    if with_tokens:
        users = get_user_model().objects.in_bulk([m["id"] for m in setup["members"]])
        tokens = [room_services.api_token_create(user=users[m["id"]], name="ask bench", scope="write")[1]
                  for m in setup["members"]]
    def add_fact(text: str) -> None:
        from assistant.services import knowledge_chunk_add

        knowledge_chunk_add(room=room, source_kind="document", source_id=f"bench-note:{text}", locator={}, text=text)

    return {"members": setup["members"], "room": room.pk, "map": setup["maps"][0]["id"], "tokens": tokens,
            "add_fact": add_fact}


def start_model(args, env: dict) -> tuple[subprocess.Popen, str]:
    from office.embedded import free_port

    port = free_port()
    if args.model == "fake":
        command = [sys.executable, __file__, "--serve-fake-model", str(port), "--model-seconds", str(args.model_seconds)]
        label = f"FAKE model (no language model): each answer streamed over {args.model_seconds:g} s"
    else:
        command = [sys.executable, str(ROOT / "manage.py"), "llm_server", "--tier", "small", "--port", str(port)]
        label = "embedded llama.cpp small model (both tiers)"
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_healthy(f"http://127.0.0.1:{port}/health", process)
    url = f"http://127.0.0.1:{port}/v1"
    env.update(LLM_BASE_URL=url, LLM_LARGE_BASE_URL=url)
    if args.model == "embedded":
        env["LLM_LARGE_MODEL"] = env.get("LLM_MODEL", "qwen2.5-coder-0.5b-instruct-q4")
    log(f"model: {label} at {url}")
    return process, label


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--askers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="times the askers ask at once (more probes)")
    parser.add_argument("--model", choices=["fake", "embedded"], default="fake")
    parser.add_argument("--model-seconds", type=float, default=5.0, help="the fake model's time per answer")
    parser.add_argument("--worker-concurrency", type=int, default=4, help="assistant worker processes (jobs phase)")
    parser.add_argument("--skip-jobs", action="store_true", help="only the streamed askers")
    parser.add_argument("--conn-max-age", type=int, default=0,
                        help="DATABASE_CONN_MAX_AGE of Daphne and the worker: 0, as the tests' Daphnes run (Django's "
                        "advice under ASGI: each request's thread has its own connection); the settings' default "
                        "60 lets them pile up past PostgreSQL's 100 under this load")
    parser.add_argument("--out", default="ask_load.json", help="file name under bench/results/")
    parser.add_argument("--serve-fake-model", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake_model:
        serve_fake_model(args.serve_fake_model, args.model_seconds)
        return 0
    if args.askers > len(FACTS):
        raise SystemExit(f"at most {len(FACTS)} askers (one fact each)")

    stack = BenchStack()
    model = worker = None
    try:
        stack.start()
        stack.env.update({"LLM_TIMEOUT_SECONDS": "600", "LOG_LEVEL": "WARNING",
                          "DATABASE_CONN_MAX_AGE": str(args.conn_max_age)})
        model, model_label = start_model(args, stack.env)
        setup = prepare_data(stack, args.askers, with_tokens=not args.skip_jobs)
        stack.start_daphne()
        if not args.skip_jobs:
            worker = subprocess.Popen(
                [str(VENV_BIN / "celery"), "-A", "office", "worker", "-l", "WARNING", "-Q", "assistant",
                 "--concurrency", str(args.worker_concurrency), "-n", "bench-assistant@%h", "--without-gossip",
                 "--without-mingle", "--without-heartbeat"],
                env=stack.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = asyncio.run(run_load(args, stack, setup))
        result["daphne_log_tail"] = stack.daphne_log_tail(40).splitlines()
    finally:
        stop(worker)
        stop(model)
        stack.stop()
    result = {"model": model_label, "askers": args.askers, "machine": f"{os.cpu_count()} cores",
              "conn_max_age": args.conn_max_age,
              "target_probe_p95_ms": PROBE_TARGET_P95_MS, **result}
    report(result)
    path = write_results(args.out, result)
    log(f"wrote {path}")
    probes = [result["stream"]["probe"]] + ([result["jobs"]["probe"]] if result["jobs"].get("probe") else [])
    return 0 if all(p["p95_ms"] is not None and p["p95_ms"] < PROBE_TARGET_P95_MS for p in probes) else 1


def report(result: dict) -> None:
    print(f"\nmodel: {result['model']}; {result['askers']} askers; {result['machine']}")
    print("\nprobes (GET /healthz, /api/rooms/, a map page; every 100 ms):")
    rows = [{"phase": "idle", **result["probe_idle"]}, {"phase": "stream", **result["stream"]["probe"]},
            {"phase": "stream: all waiting", **result["stream"]["probe_while_all_wait_on_the_model"]}]
    if result["jobs"].get("probe"):
        rows.append({"phase": "jobs", **result["jobs"]["probe"]})
    print_table(rows, ["phase", "requests", "errors", "p50_ms", "p95_ms", "max_ms", "daphne_threads_max"])
    print("(stream: all waiting = probes sent after every asker had its first event and before the first done)")
    s = result["stream"]
    print(f"\nstream: {s['rounds']} rounds of {s['askers']} askers at once; {s['answered']} answered "
          f"({s['found']} found, {s['unavailable']} unavailable, {s['cached']} from the cache), statuses "
          f"{s['statuses']}, a round done after {s['round_wall_s_max']} s at most")
    print_table([{"time to": k.removesuffix("_s"), **v} for k, v in s.items()
                 if k in ("first_event_s", "first_delta_s", "done_s")], ["time to", "p50_ms", "p95_ms", "max_ms"])
    j = result["jobs"]
    if not j.get("skipped"):
        print(f"\njobs: {j['answered']}/{j['scripts']} answered ({j['found']} found), statuses {j['statuses']}, "
              f"{j['worker_concurrency']} worker processes, all done after {j['wall_s']} s, "
              f"at most {j['polls_max']} polls")
        print_table([{"time to": k.removesuffix("_s"), **v} for k, v in j.items() if k in ("accepted_s", "done_s")],
                    ["time to", "p50_ms", "p95_ms", "max_ms"])


if __name__ == "__main__":
    sys.exit(main())
