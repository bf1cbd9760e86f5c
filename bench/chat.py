"""Chat delivery benchmark: 50 clients in one room thread, forced reconnects, exactly-once check.

    .venv/bin/python bench/chat.py
    .venv/bin/python bench/chat.py --clients 50 --duration 20 --interval 2

Every client sends a message every --interval seconds (uniform jitter of +-50%), each with a fresh
client_id (uuid). Latency = time from sending `chat.send` until another client receives the live
`chat.message` carrying that client_id. Every --kick-every seconds --kick random online clients
lose their socket abruptly (TCP abort, no close frame), stay offline 0.5-2 s while the others keep
talking, reconnect naming the last seq they saw in the URL (`?resume=<thread>.<seq>`, as the browser does) right
after `hello`. Messages whose `chat.ack` never came are re-sent after the reconnect with the same
client_id (which must never create a second message).

The client does no de-duplication of its own: at the end each client must have received every seq
1..last exactly once (live or via `chat.backlog`). lost = (client, seq) pairs never received,
duplicated = extra receptions. For comparison the run also replays what the browser client
(static/office/socket.js: drop seq <= lastSeq, lastSeq = newest) would have shown: `ui_lost`.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402
from common import (  # noqa: E402
    BenchStack,
    CpuMeter,
    LoopLag,
    base_args,
    gently,
    latency_summary,
    load_external,
    log,
    print_table,
    write_results,
    ws_close,
    ws_connect,
    ws_url,
)
from websockets.exceptions import ConnectionClosed  # noqa: E402


class Shared:
    def __init__(self):
        self.sent: dict[str, tuple[int, float]] = {}  # client_id -> (sender index, send time)
        self.resent: set[str] = set()
        self.stored: dict[str, set[int]] = {}  # client_id -> seqs it was stored under (must be one)
        self.latencies = array("d")
        self.ack_latencies = array("d")
        self.backlog_deliveries = 0
        self.live_deliveries = 0
        self.errors: dict[str, int] = {}
        self.unexpected_closes = 0
        self.reconnects = 0
        self.max_seq = 0
        self.measuring = False


class Client:
    def __init__(self, index: int, member: dict, thread: int, shared: Shared, uri: str, origin: str):
        self.i = index
        self.member = member
        self.thread = thread
        self.shared = shared
        self.uri, self.origin = uri, origin
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.online = False
        self.intentional_close = False
        self.received: dict[int, int] = {}  # seq -> times received
        self.last_seen = 0  # newest seq received (what chat.resume sends)
        self.ui_last: int | None = None  # socket.js's lastSeq, replayed
        self.ui_shown: set[int] = set()
        self.unacked: dict[str, str] = {}  # client_id -> body
        self.hello_last_seq = 0
        self.hello: dict | None = None

    async def connect(self, resume: bool) -> None:
        # As static/office/socket.js does: name the last seq seen in the handshake URL, so the server
        # sends the gap as a backlog right after hello, before any live message.
        uri = f"{self.uri}?resume={self.thread}.{self.last_seen}" if resume else self.uri
        self.ws = await ws_connect(uri, self.origin, self.member["sessionid"])
        while True:
            frame = json.loads(await self.ws.recv())
            if frame["type"] == "hello":
                break
            if frame["type"] == "error":
                raise RuntimeError(f"client {self.i}: {frame}")
        thread = next((t for t in frame["threads"] if t["id"] == self.thread), None)
        if thread is None:
            raise RuntimeError(f"client {self.i}: thread {self.thread} not in hello")
        self.hello_last_seq = thread["last_seq"]
        self.hello = frame
        if not resume:
            self.last_seen = thread["last_seq"]
            self.ui_last = thread["last_seq"]
        self.intentional_close = False
        self.online = True
        self.reader = asyncio.create_task(self.read_loop())
        for client_id, body in list(self.unacked.items()):  # retry sends that were never acknowledged
            self.shared.resent.add(client_id)
            await self.ws.send(json.dumps({"type": "chat.send", "thread": self.thread, "body": body,
                                           "client_id": client_id}))

    def _receive(self, message: dict, now: float, live: bool) -> None:
        seq = message["seq"]
        self.received[seq] = self.received.get(seq, 0) + 1
        if seq > self.last_seen:
            self.last_seen = seq
        shared = self.shared
        shared.max_seq = max(shared.max_seq, seq)
        client_id = message.get("client_id")
        if client_id:
            shared.stored.setdefault(client_id, set()).add(seq)
        if live:
            shared.live_deliveries += 1
            sent = shared.sent.get(client_id) if client_id else None
            if sent is not None and sent[0] != self.i and client_id not in shared.resent and shared.measuring:
                shared.latencies.append(now - sent[1])
        else:
            shared.backlog_deliveries += 1

    def _ui_message(self, seq: int) -> None:  # socket.js "chat.message"
        if self.ui_last is not None and seq <= self.ui_last:
            return
        self.ui_last = seq
        self.ui_shown.add(seq)

    def _ui_backlog(self, seqs: list[int]) -> None:  # socket.js "chat.backlog"
        fresh = [s for s in seqs if self.ui_last is None or s > self.ui_last]
        if fresh:
            self.ui_last = fresh[-1]
        self.ui_shown.update(fresh)

    async def read_loop(self) -> None:
        shared = self.shared
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "chat.message":
                    message = frame["message"]
                    if message["thread"] == self.thread:
                        self._receive(message, now, live=True)
                        self._ui_message(message["seq"])
                elif kind == "chat.backlog":
                    if frame["thread"] == self.thread:
                        for message in frame["messages"]:
                            self._receive(message, now, live=False)
                        self._ui_backlog([m["seq"] for m in frame["messages"]])
                elif kind == "chat.ack":
                    client_id = frame.get("client_id")
                    if client_id in self.unacked:
                        del self.unacked[client_id]
                        sent = shared.sent.get(client_id)
                        if sent is not None and client_id not in shared.resent and shared.measuring:
                            shared.ack_latencies.append(now - sent[1])
                    if client_id:
                        shared.stored.setdefault(client_id, set()).add(frame["seq"])
                    shared.max_seq = max(shared.max_seq, frame["seq"])
                elif kind == "error":
                    code = frame.get("code", "?")
                    shared.errors[code] = shared.errors.get(code, 0) + 1
                else:
                    self.on_frame(kind, frame)
        except ConnectionClosed:
            pass
        self.online = False
        if not self.intentional_close:
            shared.unexpected_closes += 1

    def on_frame(self, kind: str, frame: dict) -> None:
        """Frames other than chat and errors (moves, presence...): for subclasses (bench/faults.py)."""

    async def send_message(self) -> None:
        client_id = uuid.uuid4().hex
        body = f"bench message from client {self.i} ({client_id[:8]})"
        self.unacked[client_id] = body
        self.shared.sent[client_id] = (self.i, time.perf_counter())
        await self.ws.send(json.dumps({"type": "chat.send", "thread": self.thread, "body": body,
                                       "client_id": client_id}))

    async def talk(self, until: float, interval: float, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, interval))
        while time.perf_counter() < until:
            if self.online:
                try:
                    await self.send_message()
                except ConnectionClosed:
                    pass
            await asyncio.sleep(rng.uniform(0.5 * interval, 1.5 * interval))

    async def kick(self, offline_s: float) -> None:
        """Drop the socket without a close frame, stay away, come back and resume."""
        self.intentional_close = True
        self.online = False
        self.ws.transport.abort()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
        await asyncio.sleep(offline_s)
        await self.connect(resume=True)
        self.shared.reconnects += 1

    async def close(self) -> None:
        self.intentional_close = True
        await ws_close(self.ws, self.reader)


def delivery_counts(clients: list[Client], shared: Shared) -> dict:
    """Every client must have received every seq 1..last exactly once (live or as backlog)."""
    last = shared.max_seq
    first = 1
    lost = duplicated = ui_lost = 0
    lost_clients = dup_clients = 0
    dup_examples = []
    for c in clients:
        c_lost = sum(1 for s in range(first, last + 1) if c.received.get(s, 0) == 0)
        c_dup = sum(n - 1 for n in c.received.values() if n > 1)
        lost += c_lost
        duplicated += c_dup
        lost_clients += bool(c_lost)
        dup_clients += bool(c_dup)
        if c_dup and len(dup_examples) < 3:
            dup_examples.append({"client": c.i, "seqs": sorted(s for s, n in c.received.items() if n > 1)[:10]})
        ui_lost += sum(1 for s in range(first, last + 1) if s not in c.ui_shown)
    return {"lost": lost, "duplicated": duplicated, "ui_lost": ui_lost, "clients_with_loss": lost_clients,
            "clients_with_duplicates": dup_clients, "duplicate_examples": dup_examples}


async def kicker(clients: list[Client], until: float, every: float, count: int, rng: random.Random,
                 tasks: list) -> None:
    busy: set[int] = set()
    while True:
        await asyncio.sleep(every)
        if time.perf_counter() >= until:
            return
        candidates = [c for c in clients if c.online and c.i not in busy]
        for c in rng.sample(candidates, min(count, len(candidates))):
            busy.add(c.i)

            async def one(c=c):
                try:
                    await c.kick(rng.uniform(0.5, 2.0))
                finally:
                    busy.discard(c.i)

            tasks.append(asyncio.create_task(one()))


async def main_async(args) -> int:
    stack = None
    spec = {"members": args.clients, "prefix": "talker",
            "maps": [{"name": "Bench chat floor", "width": 64, "height": 48, "spawn": [32, 24]}]}
    if args.print_spec:
        print(json.dumps(spec))
        return 0
    try:
        if args.url:
            setup = load_external(args)
            base_url = args.url
            cpu_groups = {"daphne": [args.daphne_pid]} if args.daphne_pid else {}
        else:
            stack = BenchStack(keep=args.keep, server_diag="chat" if args.server_diag else None)
            stack.start()
            setup = stack.setup_office(spec)
            stack.start_daphne()
            base_url = stack.url
            cpu_groups = {"daphne": [stack.pid], **stack.helper_pids()}
        map_info = setup["maps"][0]
        uri, origin = ws_url(base_url, map_info["id"])
        shared = Shared()
        shared.measuring = False
        rng = random.Random(args.seed)
        clients = [Client(i, setup["members"][i], map_info["thread"], shared, uri, origin) for i in range(args.clients)]
        t0 = time.perf_counter()
        await gently([lambda c=c: c.connect(resume=False) for c in clients], batch=20, pause=0.2)
        log(f"{len(clients)} clients connected in {time.perf_counter() - t0:.1f}s")
        await asyncio.sleep(1.0)

        meter = CpuMeter(cpu_groups)
        me = psutil.Process()
        client_cpu0 = sum(me.cpu_times()[:2])
        meter.begin()
        if stack is not None:
            stack.diag_mark()
        lag = LoopLag()
        lag.start()
        shared.measuring = True
        started = time.perf_counter()
        until = started + args.duration
        kick_tasks: list[asyncio.Task] = []
        await asyncio.gather(
            *(c.talk(until, args.interval, random.Random(rng.random())) for c in clients),
            kicker(clients, until, args.kick_every, args.kick, random.Random(rng.random()), kick_tasks),
        )
        await asyncio.gather(*kick_tasks)  # everyone back online
        talk_s = time.perf_counter() - started
        # Wait for outstanding acks (re-sent after reconnect) and deliveries, then a quiet period.
        deadline = time.perf_counter() + 15
        while any(c.unacked for c in clients) and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(args.quiet)
        cpu = meter.end()
        client_lag = lag.stop()
        wall = time.perf_counter() - started
        client_cpu = round(100.0 * (sum(me.cpu_times()[:2]) - client_cpu0) / wall, 1)
        shared.measuring = False
        for c in clients:
            await c.close()
        if stack is not None and stack.daphne.poll() is not None:
            print(stack.daphne_log_tail())
            raise SystemExit("daphne exited during the run")
        if stack is not None:
            tail = [line for line in stack.daphne_log_tail(400).splitlines() if "ERROR" in line or "Traceback" in line]
            if tail:
                print("daphne log has errors:\n" + "\n".join(tail[-10:]))
    finally:
        if stack is not None:
            stack.stop()

    counts = delivery_counts(clients, shared)
    lost, duplicated, ui_lost = counts["lost"], counts["duplicated"], counts["ui_lost"]
    lost_clients, dup_clients = counts["clients_with_loss"], counts["clients_with_duplicates"]
    dup_examples, last = counts["duplicate_examples"], shared.max_seq
    unacked = sum(len(c.unacked) for c in clients)
    double_stored = sum(1 for seqs in shared.stored.values() if len(seqs) > 1)
    messages = len({s for c in clients for s in c.received})
    lat = latency_summary(shared.latencies)
    ack = latency_summary(shared.ack_latencies)
    row = {
        "clients": args.clients,
        "messages": last,
        "messages_sent": len(shared.sent),
        "resent": len(shared.resent),
        "distinct_seqs_received": messages,
        "deliveries": shared.live_deliveries + shared.backlog_deliveries,
        "live_deliveries": shared.live_deliveries,
        "backlog_deliveries": shared.backlog_deliveries,
        "latency_samples": len(shared.latencies),
        **lat,
        "ack_p50_ms": ack["p50_ms"],
        "ack_p99_ms": ack["p99_ms"],
        "reconnects": shared.reconnects,
        "lost": lost,
        "duplicated": duplicated,
        "clients_with_loss": lost_clients,
        "clients_with_duplicates": dup_clients,
        "duplicate_examples": dup_examples,
        "ui_lost": ui_lost,
        "double_stored_client_ids": double_stored,
        "unacked_at_end": unacked,
        "errors": sum(shared.errors.values()),
        "error_codes": shared.errors,
        "unexpected_closes": shared.unexpected_closes,
        "server_cpu_pct": cpu.get("daphne"),
        "valkey_cpu_pct": cpu.get("valkey"),
        "postgres_cpu_pct": cpu.get("postgres"),
        "client_cpu_pct": client_cpu,
        "machine_cpu_pct": cpu.get("machine"),
        "other_cpu_pct": round(cpu.get("machine", 0) - client_cpu - sum(
            v or 0 for k, v in cpu.items() if k in ("daphne", "valkey", "postgres")), 1),
        "client_loop_lag_max_ms": client_lag["max_ms"],
        "duration": round(talk_s, 1),
    }
    print()
    print(f"Chat: {args.clients} clients in one room thread, one message per {args.interval:g}s +-50% each, "
          f"{args.duration:g}s; every {args.kick_every:g}s {args.kick} random clients lose their socket "
          f"(offline 0.5-2 s, then resume in the handshake). CPU in % of one core ({psutil.cpu_count()} cores shared).")
    print()
    print_table([row], ["clients", "messages", "deliveries", "backlog_deliveries", "p50_ms", "p95_ms", "p99_ms",
                        "max_ms", "ack_p99_ms", "reconnects", "lost", "duplicated", "ui_lost", "errors",
                        "server_cpu_pct", "postgres_cpu_pct", "client_cpu_pct", "other_cpu_pct"])
    path = write_results("chat.json", {"bench": "chat", "interval_s": args.interval, "duration_s": args.duration,
                                       "kick_every_s": args.kick_every, "kick": args.kick,
                                       "cpu_count": psutil.cpu_count(), "results": [row]})
    print(f"\nwritten to {path}")
    failures = []
    if lost:
        failures.append(f"{lost} (client, seq) deliveries lost on {lost_clients} clients")
    if duplicated:
        failures.append(f"{duplicated} duplicate deliveries on {dup_clients} clients, e.g. {dup_examples}")
    if double_stored:
        failures.append(f"{double_stored} client_ids stored twice")
    if unacked:
        failures.append(f"{unacked} messages never acknowledged")
    if shared.errors or shared.unexpected_closes:
        failures.append(f"{sum(shared.errors.values())} error frames {shared.errors}, "
                        f"{shared.unexpected_closes} unexpected closes")
    if ui_lost:
        print(f"note: a browser client (socket.js de-duplication) would not have shown {ui_lost} (client, seq) "
              "messages")
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("OK: every client saw every message exactly once")
    return 0


def main() -> int:
    parser = base_args(__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of talking")
    parser.add_argument("--interval", type=float, default=2.0, help="mean seconds between a client's messages")
    parser.add_argument("--kick-every", type=float, default=2.0, help="seconds between forced disconnect rounds")
    parser.add_argument("--kick", type=int, default=3, help="clients disconnected per round")
    parser.add_argument("--quiet", type=float, default=2.0, help="seconds of silence before counting")
    parser.add_argument("--print-spec", action="store_true",
                        help="print the setup spec for bench/_setup_office.py (for --url runs) and exit")
    args = parser.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
