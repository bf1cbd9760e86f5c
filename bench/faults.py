"""Fault tolerance across services: under steady load, restart or kill one service at a time and
count afterwards what was lost or doubled, and how long each flow took to work again.

    .venv/bin/python bench/faults.py             # 50 sockets, every fault, about 6 minutes
    .venv/bin/python bench/faults.py --quick     # 20 sockets, shorter settle periods, about 3 minutes
    .venv/bin/python bench/faults.py --faults redis,mqtt --settle 15

One throwaway stack (bench/common.py's BenchStack: embedded PostgreSQL, Valkey and the MQTT broker
in a temp dir on free ports), and as subprocesses: two Daphne nodes on the Redis channel layer, two
Celery workers (default queue) and beat running bench/chaos_workflows.py's workflow, one
transcription worker and the sensor ingester. The load, all from this process:

* chat + movement: --clients sockets (chat.py's client), half on each Daphne node, each walking at
  --move-hz and sending a chat message every --chat-interval s (+-50%) in one room thread. A socket
  that drops reconnects (same node first, then the other) naming its last seq in the URL, as
  static/office/socket.js does, and re-sends unacknowledged messages with their client_id.
* transcription: 2 speakers on Daphne node A stream real speech (../shared/speech-dev) in real time
  over WebRTC into the server peer (bench/transcription.py's Speaker); audio reaches the worker over
  Redis streams.
* workflows: a run of bench.chaos (3 steps, each a side effect in a sink table) every
  1/--workflow-rate s, each with its own idempotency key (re-tried with the same key if starting fails).
* sensors: one device publishing a reading with a message id every 1/--sensor-rate s, QoS 1; a
  publish without PUBACK within 5 s is re-sent (same id) after reconnecting.

Faults (--faults, in this order, --settle s apart): restart Redis, restart PostgreSQL, restart the
MQTT broker (each stopped and started on the same port and data dir), SIGKILL Daphne node B (it is
started again once its clients are back, on node A), SIGKILL a Celery worker and the transcription
worker (a replacement starts at once, as a supervisor would). A process that exits by itself is
counted as a crash and restarted.

Recovery of a flow after a fault = the earliest success of something begun at or after the fault:
a chat message delivered live to another member, a transcript segment stored (from the end of its
audio), a workflow run finished (from its start), a sensor reading stored (from its first publish);
sockets: until every dropped socket is back.

Counted after the load stops and a drain period: chat acknowledged vs stored vs delivered to every
member (lost, duplicated); transcript segments (stored twice = same speaker and overlapping time or
the same text at the same offset; lost = speech in the source audio longer than --speech-gap-s that
no segment covers); workflow runs started vs finished and their side effects (3 each, exactly once);
sensor readings acknowledged by the broker vs stored. Prints two tables, writes
bench/results/faults.json; exit status 1 if anything was lost or doubled or a process crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chat  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import sensors  # noqa: E402
from common import ROOT, BenchStack, daphne_command, log, print_table, write_results, ws_url  # noqa: E402

from office.embedded import free_port, wait_for_port  # noqa: E402
from tests.audio import SAMPLE_RATE, wav_16k, write_wav_16k  # noqa: E402
from tests.processes import stop_process_group  # noqa: E402

# chat.py and sensors.py put bench/ first again: the repository goes ahead of it, or `transcription` (the app) would
# be bench/transcription.py (see bench/README.md).
sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))

FAULTS = ("redis", "postgres", "mqtt", "daphne", "celery", "transcriber")
SPEECH_DEV = ROOT.parent / "shared" / "speech-dev"
THERMOMETER_TOPIC = "office/sensors/bench-thermometer"
PERF_TO_WALL = time.time() - time.perf_counter()  # chat.py stamps with perf_counter


# ------------------------------------------------------------------------------------------------
# Processes
# ------------------------------------------------------------------------------------------------


class Proc:
    """A server process in its own session (SIGKILL takes its children too), log per incarnation."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.command, self.env, self.log_dir = name, command, env, log_dir
        self.popen: subprocess.Popen | None = None
        self.incarnation = 0
        self.log_path: Path | None = None
        self.expected_exit = False

    def start(self) -> None:
        self.incarnation += 1
        self.log_path = self.log_dir / f"{self.name}-{self.incarnation}.log"
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(self.command, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self.expected_exit = False

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        self.expected_exit = True
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        self.expected_exit = True
        if self.popen is not None:
            stop_process_group(self.popen, timeout=15)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def wait_log(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: no {needle!r} in its log within {timeout:.0f}s")


# ------------------------------------------------------------------------------------------------
# Chat + movement clients
# ------------------------------------------------------------------------------------------------


class FaultShared(chat.Shared):
    def __init__(self):
        super().__init__()
        self.stopping = False  # no reconnects any more
        self.first_delivery: dict[str, float] = {}  # client_id -> first live delivery to another member (perf)
        self.drops: list[tuple[float, int]] = []  # (wall time, client) of unexpected socket closes
        self.reconnected: list[tuple[float, int, float]] = []  # (wall time back, client, when it dropped)


class OfficeClient(chat.Client):
    """chat.py's client that also walks, and reconnects on its own like socket.js (resume in the URL)."""

    def __init__(self, index: int, member: dict, thread: int, shared: FaultShared, uris: list[str], origin: str,
                 size: tuple[int, int]):
        super().__init__(index, member, thread, shared, uris[index % len(uris)], origin)
        self.uris = uris
        self.node = index % len(uris)
        self.size = size
        self.pos: tuple[int, int] | None = None
        self.move_seq = 0
        self.reconnect_task: asyncio.Task | None = None

    async def connect(self, resume: bool) -> None:
        await super().connect(resume)
        you = self.hello["you"]
        self.pos = (you["x"], you["y"])

    def on_frame(self, kind: str, frame: dict) -> None:
        if kind == "move.rejected":
            self.pos = (frame["x"], frame["y"])

    def _receive(self, message: dict, now: float, live: bool) -> None:
        super()._receive(message, now, live)
        client_id = message.get("client_id")
        sent = self.shared.sent.get(client_id) if client_id else None
        if live and sent is not None and sent[0] != self.i:
            self.shared.first_delivery.setdefault(client_id, now)

    async def read_loop(self) -> None:
        await super().read_loop()
        if not self.intentional_close and not self.shared.stopping:
            self.shared.drops.append((time.time(), self.i))
            self.reconnect_task = asyncio.create_task(self.reconnect())

    async def reconnect(self) -> None:
        dropped_at = self.shared.drops[-1][0]
        delay = 0.25
        while not self.shared.stopping:
            for node in [self.node] + [n for n in range(len(self.uris)) if n != self.node]:
                self.uri = self.uris[node]
                try:
                    await asyncio.wait_for(self.connect(resume=True), 15)
                except Exception:  # noqa: BLE001 (refused, closed, timed out: try the next node, then back off)
                    continue
                self.node = node
                self.shared.reconnects += 1
                self.shared.reconnected.append((time.time(), self.i, dropped_at))
                return
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 4.0)

    async def wander(self, until: float, hz: float, rng: random.Random) -> None:
        from websockets.exceptions import ConnectionClosed

        await asyncio.sleep(rng.uniform(0, 1 / hz))
        while time.perf_counter() < until:
            if self.online and self.pos is not None:
                x, y = self.pos
                nx = min(max(x + rng.choice((-1, 0, 1)), 1), self.size[0] - 2)
                ny = min(max(y + rng.choice((-1, 0, 1)), 1), self.size[1] - 2)
                self.move_seq += 1
                try:
                    await self.ws.send(json.dumps({"type": "move", "x": nx, "y": ny, "seq": self.move_seq}))
                    self.pos = (nx, ny)
                except ConnectionClosed:
                    pass
            await asyncio.sleep(rng.uniform(0.8, 1.2) / hz)


# ------------------------------------------------------------------------------------------------
# Sensor publisher
# ------------------------------------------------------------------------------------------------


class SensorPublisher:
    """A device that keeps what the broker did not acknowledge and sends it again (same id)."""

    def __init__(self, uri: str, rate: float):
        self.uri, self.rate = uri, rate
        self.first_try: dict[str, float] = {}  # id -> wall time of the first publish attempt
        self.acked: dict[str, float] = {}  # id -> wall time of PUBACK
        self.pending: deque[str] = deque()
        self.reconnects = 0
        self.n = 0

    async def run(self, until: float, drain_until: float) -> None:
        from amqtt.mqtt.constants import QOS_1
        client = None
        next_at = time.time()
        delay = 0.25
        while time.time() < drain_until and (time.time() < until or self.pending):
            if time.time() < until and time.time() >= next_at:
                self.n += 1
                mid = f"r{self.n}"
                self.first_try[mid] = time.time()
                self.pending.append(mid)
                next_at += 1 / self.rate
            if client is None:
                try:
                    client = await asyncio.wait_for(sensors.connect_publisher(self.uri, "bench-faults-device"), 5)
                    delay = 0.25
                except Exception:  # noqa: BLE001 (broker away: back off and try again)
                    client = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
            while self.pending:
                mid = self.pending[0]
                payload = json.dumps({"celsius": 20 + (self.n % 50) / 10, "id": mid}).encode()
                try:
                    await asyncio.wait_for(client.publish(THERMOMETER_TOPIC, payload, qos=QOS_1), 5)
                except Exception:  # noqa: BLE001 (no PUBACK: reconnect and send it again)
                    asyncio.ensure_future(_quiet_disconnect(client))
                    client, self.reconnects = None, self.reconnects + 1
                    break
                self.acked.setdefault(mid, time.time())
                self.pending.popleft()
            await asyncio.sleep(max(0.0, min(next_at - time.time(), 0.2)))
        if client is not None:
            await _quiet_disconnect(client)


async def _quiet_disconnect(client) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), 2)
    except Exception:  # noqa: BLE001
        pass


# ------------------------------------------------------------------------------------------------
# Speech
# ------------------------------------------------------------------------------------------------


def speech_wav(path: Path, seconds: float, order: list[Path], pause_s: float = 1.5) -> tuple[float, list]:
    """Real speech files one after another (repeated) until `seconds`; returns (length, speech intervals)."""
    parts, at = [np.zeros(SAMPLE_RATE, dtype=np.float32)], 1.0
    clips = [wav_16k(p) for p in order]
    k = 0
    while at < seconds:
        clip = clips[k % len(clips)]
        parts += [clip, np.zeros(int(pause_s * SAMPLE_RATE), dtype=np.float32)]
        at += len(clip) / SAMPLE_RATE + pause_s
        k += 1
    audio = np.concatenate(parts)[: int(seconds * SAMPLE_RATE)]
    write_wav_16k(audio, path)
    return len(audio) / SAMPLE_RATE, speech_intervals(audio)


def speech_intervals(audio: np.ndarray, frame_s: float = 0.03, merge_s: float = 0.7, min_s: float = 0.4) -> list:
    """[start, end] seconds of speech by frame energy (a rough VAD: the reference for coverage)."""
    n = int(frame_s * SAMPLE_RATE)
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    loud = rms > max(0.01, 0.1 * float(np.percentile(rms, 95)))
    intervals: list[list[float]] = []
    for i in np.flatnonzero(loud):
        start = i * frame_s
        if intervals and start - intervals[-1][1] <= merge_s:
            intervals[-1][1] = start + frame_s
        else:
            intervals.append([start, start + frame_s])
    return [iv for iv in intervals if iv[1] - iv[0] >= min_s]


def transcript_counts(segments: list[dict], intervals: list, gap_s: float) -> dict:
    """Segments stored twice and speech no segment covers, for one speaker's stream."""
    segments = sorted(segments, key=lambda s: s["start_ms"])
    doubled = []
    for a_i, a in enumerate(segments):
        for b in segments[a_i + 1:]:
            if b["start_ms"] >= a["end_ms"]:
                break
            overlap = min(a["end_ms"], b["end_ms"]) - b["start_ms"]
            same_text = a["text"].strip() == b["text"].strip() and abs(a["start_ms"] - b["start_ms"]) < 1000
            if overlap > 500 or same_text:
                doubled.append([a["seq"], b["seq"]])
    covered = [(s["start_ms"] / 1000 - 0.5, s["end_ms"] / 1000 + 0.5) for s in segments]
    uncovered = []
    for start, end in intervals:
        # the longest stretch of this speech interval that no segment covers
        points = sorted([(max(a, start), min(b, end)) for a, b in covered if b > start and a < end])
        longest, cursor = 0.0, start
        for a, b in points:
            longest = max(longest, a - cursor)
            cursor = max(cursor, b)
        longest = max(longest, end - cursor)
        if longest >= gap_s:
            uncovered.append([round(start, 1), round(end, 1), round(longest, 1)])
    return {"segments": len(segments), "doubled": doubled, "uncovered_speech": uncovered}


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.stack = BenchStack(keep=args.keep)
        self.procs: dict[str, Proc] = {}
        self.crashes: list[dict] = []
        self.faults: list[dict] = []
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db")  # one thread owns the connection
        self.run_ids: list[int] = []
        self.workflow_start_failures = 0
        self.live = None  # bench/transcription.py, imported once Django is set up

    def broker_uri(self) -> str:
        from iot.ingest import broker_uri

        return broker_uri()

    # -- stack --

    def start_stack(self) -> None:
        stack = self.stack
        stack.start()
        sensors.django_setup(stack.env)
        from bench import chaos_workflows

        self.chaos = chaos_workflows
        self.env = {**chaos_workflows.worker_env(stack.env), "OFFICE_RTC_HOST_ADDRESSES": "127.0.0.1",
                    "OFFICE_IOT_MQTT_CLIENT_ID": "bench-ingester"}
        self.env.pop("DATABASE_CONN_MAX_AGE")  # the product's default (persistent connections + health checks)
        stack.env = self.env
        self.setup = stack.setup_office({"members": self.args.clients, "prefix": "faults",
                                         "maps": [{"name": "Faults floor", "width": 64, "height": 48,
                                                   "spawn": [32, 24]}]})
        from bench import transcription as live  # after django.setup(): `transcription` is the app already

        sys.path.remove(str(ROOT))
        sys.path.insert(0, str(ROOT))  # it put bench/ first again
        self.live = live
        self.speaker_setup = live.setup_office(stack, 2)
        chaos_workflows.sink_create()
        self.sensor_ids = sensors.make_office(0)

        log_dir = stack.tmp
        python = sys.executable
        self.ports = [free_port(), free_port()]
        for node, port in zip("ab", self.ports, strict=True):
            self.procs[f"daphne-{node}"] = Proc(f"daphne-{node}", daphne_command(port), self.env, log_dir)
        for n in (1, 2):
            self.procs[f"worker{n}"] = Proc(f"worker{n}", chaos_workflows.worker_command(f"worker{n}"), self.env,
                                            log_dir)
        self.procs["beat"] = Proc("beat", chaos_workflows.beat_command(), self.env, log_dir)
        self.procs["transcriber"] = Proc("transcriber", [python, str(ROOT / "manage.py"), "transcription_worker"],
                                         {**self.env, "LOG_LEVEL": "INFO"}, log_dir)
        self.procs["ingester"] = Proc("ingester", [python, str(ROOT / "manage.py"), "iot_ingester", "--no-schedule"],
                                      {**self.env, "LOG_LEVEL": "INFO"}, log_dir)
        for proc in self.procs.values():
            proc.start()
        for port in self.ports:
            wait_for_port(port, timeout=60)
        self.procs["transcriber"].wait_log("ready", 90)
        self.procs["ingester"].wait_log("ingesting sensor messages", 60)
        log(f"daphne on ports {self.ports}, 2 celery workers + beat, transcription worker, ingester running")

    def stop(self) -> None:
        for proc in self.procs.values():
            try:
                proc.stop()
            except Exception as exc:  # noqa: BLE001
                log(f"stopping {proc.name}: {exc!r}")
        self.db.shutdown(wait=True)
        self.stack.daphne = None
        self.stack.stop()

    async def on_db(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.db, _db_call, fn, *args)

    # -- supervision --

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restart a process that exited by itself (and count it), as systemd would."""
        while not stop.is_set():
            for proc in self.procs.values():
                if proc.popen is not None and not proc.alive() and not proc.expected_exit:
                    self.crashes.append({"process": proc.name, "at": time.time(), "code": proc.popen.returncode,
                                         "log_tail": proc.log_text()[-1500:]})
                    log(f"{proc.name} exited by itself (code {proc.popen.returncode}); restarting it")
                    proc.start()
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass

    # -- load --

    async def start_workflows(self, until: float) -> None:
        i = 0
        next_at = time.time()
        while time.time() < until:
            key = f"faults-{i}"
            try:
                run_id = await self.on_db(self._workflow_start, key, i)
            except Exception:  # noqa: BLE001 (database or broker away: the same key again next time)
                self.workflow_start_failures += 1
            else:
                if run_id not in self.run_ids:
                    self.run_ids.append(run_id)
                i += 1
            next_at += 1 / self.args.workflow_rate
            await asyncio.sleep(max(0.05, next_at - time.time()))

    def _workflow_start(self, key: str, i: int) -> int:
        from automation.workflows import services

        return services.workflow_start(self.chaos.WORKFLOW, {"n": i}, idempotency_key=key).pk

    # -- faults --

    async def fault(self, name: str, clients: list[OfficeClient]) -> None:
        started = time.time()
        entry = {"fault": name, "at": started}
        services = self.stack.services
        if name in ("redis", "postgres", "mqtt"):
            await asyncio.to_thread(services.restart_service, name)
            if name == "redis" and services._valkey.port != services.redis_port:
                raise RuntimeError("Valkey came back on another port")
        elif name == "daphne":
            node_b = self.procs["daphne-b"]
            on_b = [c for c in clients if c.node == 1 and c.online]
            entry["sockets_on_node"] = len(on_b)
            node_b.kill()
        elif name == "celery":
            worker = self.procs["worker1"]
            worker.kill()
            worker.start()
        elif name == "transcriber":
            worker = self.procs["transcriber"]
            worker.kill()
            worker.start()
        entry["outage_s"] = round(time.time() - started, 2)
        self.faults.append(entry)
        log(f"fault {name}: done in {entry['outage_s']} s")

    async def restore_daphne_b(self) -> None:
        node_b = self.procs["daphne-b"]
        if not node_b.alive():
            node_b.start()
            await asyncio.to_thread(wait_for_port, self.ports[1], 60)


def _db_call(fn, *args):
    from django.db import close_old_connections, connections

    close_old_connections()
    try:
        return fn(*args)
    except Exception:
        connections.close_all()  # a broken connection (the database restarted): a fresh one next time
        raise


async def run(args) -> int:
    import logging

    import aioice.ice


    # Client peers use loopback host candidates too (as bench/transcription.py does).
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    rng = random.Random(args.seed)
    random.seed(args.seed)
    bench = Bench(args)
    supervisor_stop = asyncio.Event()
    supervisor = None
    clients: list[OfficeClient] = []
    speakers = []
    try:
        await asyncio.get_running_loop().run_in_executor(bench.db, bench.start_stack)  # Django is sync-only
        logging.getLogger("amqtt").setLevel(logging.ERROR)  # the device's reconnect attempts, one line each
        supervisor = asyncio.create_task(bench.supervise(supervisor_stop))
        live = bench.live
        load_s = args.warmup + len(args.faults) * args.settle
        workdir = bench.stack.tmp
        files = sorted(SPEECH_DEV.glob("*.wav"))
        if not files:
            raise SystemExit(f"no speech in {SPEECH_DEV}")
        audio_s = load_s + 4
        wavs = [speech_wav(workdir / f"speaker{k}.wav", audio_s, files if k == 0 else files[::-1]) for k in range(2)]

        # Sockets: chat + movement, half on each node.
        map_info = bench.setup["maps"][0]
        uris = [ws_url(f"http://127.0.0.1:{port}", map_info["id"])[0] for port in bench.ports]
        origin = ws_url(f"http://127.0.0.1:{bench.ports[0]}", map_info["id"])[1]
        shared = FaultShared()
        shared.measuring = True
        clients = [OfficeClient(i, bench.setup["members"][i], map_info["thread"], shared, uris, origin, (64, 48))
                   for i in range(args.clients)]
        for k in range(0, len(clients), 10):
            await asyncio.gather(*(c.connect(resume=False) for c in clients[k:k + 10]))
        log(f"{len(clients)} sockets connected ({sum(c.node == 0 for c in clients)} on node A)")

        # Speakers: node A, into Atlas, microphones on.
        t_uri = f"ws://127.0.0.1:{bench.ports[0]}/ws/office/{bench.speaker_setup['map']}/"
        speakers = [live.Speaker(live.Client(member), workdir / f"speaker{k}.wav", [], wavs[k][0])
                    for k, member in enumerate(bench.speaker_setup["members"])]
        for s in speakers:
            await s.client.connect(t_uri, origin)
        meeting = (await asyncio.gather(*(s.client.walk_into_atlas() for s in speakers)))[-1]
        await asyncio.gather(*(s.attach() for s in speakers))
        log(f"2 speakers streaming into meeting {meeting['id']} ({audio_s:.0f} s of speech each)")

        started = time.perf_counter()
        until = started + load_s
        until_wall = time.time() + load_s
        publisher = SensorPublisher(bench.broker_uri(), args.sensor_rate)
        load = [
            *(c.talk(until, args.chat_interval, random.Random(rng.random())) for c in clients),
            *(c.wander(until, args.move_hz, random.Random(rng.random())) for c in clients),
            bench.start_workflows(until_wall),
        ]
        load_task = asyncio.gather(*load)
        sensor_task = asyncio.create_task(publisher.run(until_wall, until_wall + args.drain))
        for k, name in enumerate(args.faults):  # fault k at warmup + k * settle (later if one overran)
            await asyncio.sleep(max(0.0, started + args.warmup + k * args.settle - time.perf_counter()))
            await bench.fault(name, clients)
            if name == "daphne":  # node B comes back once its sockets moved (they stay on node A)
                await asyncio.sleep(args.settle / 2)
                await bench.restore_daphne_b()
        await load_task
        log("load stopped; draining")

        # Drain: speakers hang up (end marker), everything outstanding settles.
        for s in speakers:
            try:
                await s.client.send({"type": "rtc.close"})
            except Exception:  # noqa: BLE001
                pass
        drained = await drain(bench, clients, publisher, sensor_task, time.time() + args.drain)
        await asyncio.sleep(args.quiet)
        shared.stopping = True
        for c in clients:
            if c.reconnect_task is not None:
                c.reconnect_task.cancel()
            await c.close()
        counts = await bench.on_db(final_counts, bench, clients, shared, publisher, speakers, wavs, args)
        counts["drained"] = drained
    finally:
        supervisor_stop.set()
        if supervisor is not None:
            await supervisor
        if bench.live is not None:
            await bench.live.release(speakers)
        bench.stop()
    return report(bench, counts, shared, args)


async def drain(bench: Bench, clients, publisher: SensorPublisher, sensor_task, deadline: float) -> bool:
    from transcription.audio_bus import STREAMS_KEY

    await asyncio.wait([sensor_task], timeout=max(0.0, deadline - time.time()))

    def settled() -> dict:
        from automation.workflows.models import WorkflowRun
        from iot.models import SensorReading
        from office.redis_client import redis_client

        runs_open = WorkflowRun.objects.filter(pk__in=bench.run_ids).exclude(status__in=WorkflowRun.FINAL).count()
        stored = set(SensorReading.objects.filter(sensor_id=bench.sensor_ids["thermometer"])
                     .values_list("message_id", flat=True))
        return {"runs_open": runs_open, "readings_missing": len(set(publisher.acked) - stored),
                "streams_open": redis_client().scard(STREAMS_KEY)}

    state = {}
    while time.time() < deadline:
        unacked = sum(len(c.unacked) for c in clients)
        try:
            state = await bench.on_db(settled)
        except Exception:  # noqa: BLE001
            state = {}
        state["chat_unacked"] = unacked
        if state and not any(state.values()):
            log("drained")
            return True
        await asyncio.sleep(0.5)
    log(f"drain timed out: {state}")
    return False


def final_counts(bench: Bench, clients, shared: FaultShared, publisher: SensorPublisher, speakers, wavs, args) -> dict:
    from django.db.models import Count

    from automation.workflows.models import WorkflowRun
    from iot.models import SensorReading
    from rooms.models import ChatMessage
    from transcription.models import TranscriptSegment

    # chat
    thread = clients[0].thread
    stored = list(ChatMessage.objects.filter(thread_id=thread).values_list("client_id", "seq"))
    stored_ids = {cid for cid, _seq in stored}
    shared.max_seq = max((seq for _cid, seq in stored), default=0)
    acked = {cid for cid in shared.sent if not any(cid in c.unacked for c in clients)}
    deliveries = chat.delivery_counts(clients, shared)
    chat_row = {
        "flow": "chat", "sent": len(shared.sent), "acknowledged": len(acked), "stored": len(stored),
        "delivered_ok": len(clients) * len(stored) - deliveries["lost"],
        "lost": len(acked - stored_ids) + deliveries["lost"],
        "duplicated": (len(stored) - len(stored_ids)) + deliveries["duplicated"],
        "detail": {"acked_not_stored": len(acked - stored_ids), "deliveries_lost": deliveries["lost"],
                   "deliveries_duplicated": deliveries["duplicated"], "unacked": len(set(shared.sent) - acked),
                   "clients_with_loss": deliveries["clients_with_loss"], "ui_lost": deliveries["ui_lost"],
                   "resent": len(shared.resent), "reconnects": shared.reconnects, "errors": shared.errors},
    }
    # transcript
    per_speaker = []
    for s, (_len, intervals) in zip(speakers, wavs, strict=True):
        segs = list(TranscriptSegment.objects.filter(speaker_id=s.client.member["id"])
                    .values("seq", "start_ms", "end_ms", "text"))
        per_speaker.append(transcript_counts(segs, intervals, args.speech_gap_s))
    t_row = {
        "flow": "transcript", "sent": sum(len(iv) for _l, iv in wavs), "acknowledged": None,
        "stored": sum(p["segments"] for p in per_speaker),
        "delivered_ok": None,
        "lost": sum(len(p["uncovered_speech"]) for p in per_speaker),
        "duplicated": sum(len(p["doubled"]) for p in per_speaker),
        "detail": {"per_speaker": per_speaker},
    }
    # workflows
    effects = bench.chaos.effect_counts(bench.run_ids)
    w_row = {
        "flow": "workflows", "sent": len(bench.run_ids), "acknowledged": None, "stored": effects["runs_completed"],
        "delivered_ok": effects["side_effects_committed"],
        "lost": effects["runs_lost"] + max(0, effects["missing_side_effects"]),
        "duplicated": effects["duplicated_side_effects"],
        "detail": {**effects, "start_failures_retried": bench.workflow_start_failures},
    }
    # sensors
    readings = dict(SensorReading.objects.filter(sensor_id=bench.sensor_ids["thermometer"]).exclude(message_id="")
                    .values_list("message_id").annotate(n=Count("id")).values_list("message_id", "n"))
    s_row = {
        "flow": "sensors", "sent": len(publisher.first_try), "acknowledged": len(publisher.acked),
        "stored": len(readings), "delivered_ok": None,
        "lost": len(set(publisher.acked) - set(readings)),
        "duplicated": sum(n - 1 for n in readings.values() if n > 1),
        "detail": {"lost_ids": sorted(set(publisher.acked) - set(readings), key=lambda m: int(m[1:]))[:50],
                   "publisher_reconnects": publisher.reconnects, "never_acked": len(publisher.pending)},
    }

    # recovery: (begun, succeeded) wall times per flow
    events = {
        "chat": [(shared.sent[cid][1] + PERF_TO_WALL, at + PERF_TO_WALL) for cid, at in shared.first_delivery.items()],
        "transcript": [(seg.spoken_at.timestamp() + (seg.end_ms - seg.start_ms) / 1000, seg.created_at.timestamp())
                       for seg in TranscriptSegment.objects.filter(
                           speaker_id__in=[s.client.member["id"] for s in speakers])],
        "workflow": [(r.created_at.timestamp(), r.finished_at.timestamp())
                     for r in WorkflowRun.objects.filter(pk__in=bench.run_ids, finished_at__isnull=False)],
        "sensor": [(publisher.first_try[m], at.timestamp()) for m, at in SensorReading.objects.filter(
            sensor_id=bench.sensor_ids["thermometer"], message_id__in=list(publisher.first_try))
            .values_list("message_id", "received_at")],
    }
    return {"rows": [chat_row, t_row, w_row, s_row], "events": events}


def recovery(events: dict, faults: list[dict], shared: FaultShared) -> list[dict]:
    rows = []
    for k, fault in enumerate(faults):
        t0 = fault["at"]
        t_next = faults[k + 1]["at"] if k + 1 < len(faults) else float("inf")
        row = {"fault": fault["fault"], "outage_s": fault["outage_s"]}
        for flow, pairs in events.items():
            later = [done for begun, done in pairs if begun >= t0]
            row[f"{flow}_s"] = round(min(later) - t0, 1) if later else None
        drops = [(at, c) for at, c in shared.drops if t0 <= at < t_next]
        back = {(dropped, c): at for at, c, dropped in shared.reconnected}
        row["sockets_dropped"] = len(drops)
        row["sockets_back_s"] = (round(max(back[d] for d in drops if d in back) - t0, 1)
                                 if any(d in back for d in drops) else None)
        row["sockets_never_back"] = sum(1 for d in drops if d not in back)
        rows.append(row)
    return rows


def report(bench: Bench, counts: dict, shared: FaultShared, args) -> int:
    rows = counts["rows"]
    faults = recovery(counts.pop("events"), bench.faults, shared)
    print()
    print(f"Faults under load: {args.clients} sockets (chat every {args.chat_interval:g} s, moving at "
          f"{args.move_hz:g} Hz), 2 speakers, a workflow run every {1 / args.workflow_rate:g} s, a sensor reading "
          f"every {1 / args.sensor_rate:g} s; {args.settle:g} s between faults. Seconds from the fault until the "
          f"first success of something begun after it ({psutil.cpu_count()} cores shared).")
    print()
    if faults:
        print_table(faults, ["fault", "outage_s", "sockets_dropped", "sockets_back_s", "chat_s", "transcript_s",
                             "workflow_s", "sensor_s"])
        print()
    print_table(rows, ["flow", "sent", "acknowledged", "stored", "delivered_ok", "lost", "duplicated"])
    print("(chat: sent/acknowledged/stored messages, delivered_ok (member, message) pairs; transcript: speech "
          "intervals in the source audio, segments stored, lost = speech no segment covers; workflows: runs "
          "started, finished, side effects; sensors: readings published, acknowledged by the broker, stored)")
    for crash in bench.crashes:
        print(f"\ncrash: {crash['process']} exited with code {crash['code']}; log tail:\n{crash['log_tail'][-800:]}")
    path = write_results("faults.json", {
        "bench": "faults", "args": {k: v for k, v in vars(args).items()}, "cpu_count": psutil.cpu_count(),
        "faults": faults, "flows": rows, "crashes": bench.crashes, "drained": counts["drained"],
    })
    print(f"\nwritten to {path}")
    failures = [f"{r['flow']}: {r['lost']} lost, {r['duplicated']} duplicated" for r in rows
                if r["lost"] or r["duplicated"]]
    if bench.crashes:
        failures.append(f"{len(bench.crashes)} process crash(es): "
                        + ", ".join(sorted({c['process'] for c in bench.crashes})))
    if not counts["drained"]:
        failures.append("did not drain in time")
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("OK: nothing lost, nothing doubled, no crash")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 sockets and 12 s between faults (a short check)")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, from {','.join(FAULTS)}")
    parser.add_argument("--clients", type=int, default=None, help="sockets (default 50, --quick 20)")
    parser.add_argument("--chat-interval", type=float, default=8.0, help="mean seconds between a socket's messages")
    parser.add_argument("--move-hz", type=float, default=2.0, help="steps per second per socket")
    parser.add_argument("--workflow-rate", type=float, default=0.5, help="workflow runs started per second")
    parser.add_argument("--sensor-rate", type=float, default=5.0, help="sensor readings per second")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of load before the first fault")
    parser.add_argument("--settle", type=float, default=None, help="seconds between faults (default 30, --quick 14)")
    parser.add_argument("--drain", type=float, default=90.0, help="at most this long for everything to settle")
    parser.add_argument("--quiet", type=float, default=2.0, help="seconds of silence before counting")
    parser.add_argument("--speech-gap-s", type=float, default=2.0,
                        help="speech without any segment for this long counts as lost")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (process logs)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.clients = args.clients or (20 if args.quick else 50)
    args.settle = args.settle if args.settle is not None else (14.0 if args.quick else 30.0)
    args.warmup = args.warmup if args.warmup is not None else (8.0 if args.quick else 15.0)
    args.faults = [f for f in args.faults.split(",") if f and f != "none"]
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {sorted(unknown)}")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
