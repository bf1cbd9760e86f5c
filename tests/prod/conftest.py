"""The production shape on this machine, without containers (`make prod-check`, docs/deploy.md).

What docker/compose.yaml runs, as processes on loopback: Caddy from Debian with docker/Caddyfile, two
Daphne nodes behind it, every other process of office/processes.py but the model servers (the same
commands, through office.runner.local_argv), coturn from Debian with docker/turnserver.conf, on the
test session's embedded PostgreSQL, Valkey and MQTT broker. Only the variables compose would set
differ (ports, addresses, credentials), plus what loopback needs (TURN may relay to 127.0.0.1 here).

The suite (`make test`) leaves this directory out: it takes minutes and needs Caddy and coturn.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from office.embedded import free_port, wait_for_port
from office.processes import PROCESSES, Process
from office.runner import local_argv
from tests.e2e.conftest import _database_url_for, speech_wav  # noqa: F401 (the fake microphone's sentence)
from tests.processes import stop_process

if os.environ.get("OFFICE_PROD_CHECK") != "1":
    collect_ignore_glob = ["test_*.py"]

ROOT = Path(__file__).resolve().parents[2]
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
TURN_USER, TURN_REALM = "office", "office.test"


@dataclass
class Shape:
    """What runs, and where: `url` is the proxy (https://127.0.0.1:PORT), `nodes` the Daphne processes."""

    url: str
    run_dir: Path
    nodes: dict[str, subprocess.Popen] = field(default_factory=dict)  # "web-1", "web-2" -> process
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)  # everything, nodes included
    turn_log: Path | None = None

    def node_for(self, node_id: str) -> str:
        """The name of the Daphne process behind a socket's `hello.node` (hostname-PID-random)."""
        pid = int(node_id.rsplit("-", 2)[1])
        return next(name for name, process in self.nodes.items() if process.pid == pid)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.run_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Host": "127.0.0.1"}), timeout=3) as r:
            return r.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


@pytest.fixture
def production_shape(django_db_setup, tmp_path_factory):
    missing = [name for name, path in (("caddy", CADDY), ("coturn", TURNSERVER)) if not Path(path).exists()]
    if missing:
        pytest.skip(f"Debian packages missing: {', '.join(missing)} (as root: make system-test-deps)")
    from django.conf import settings

    run_dir = tmp_path_factory.mktemp("prod-shape")
    proxy_port, turn_port = free_port(), free_port()
    url = f"https://127.0.0.1:{proxy_port}"
    turn_password = secrets.token_urlsafe(16)
    relay_min = 49160 + secrets.randbelow(200) * 20  # a slice of the compose range, away from other runs
    # compose's x-office-env, for this machine: the test database and the session's Redis and MQTT
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for(settings.DATABASES["default"]),
        "DATABASE_CONN_MAX_AGE": "0",
        "OFFICE_ENV": "production",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "OFFICE_DATA_DIR": str(run_dir / "data"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CSRF_TRUSTED_ORIGINS": url,
        "LOG_LEVEL": "WARNING",
        "OFFICE_ICE_SERVERS_JSON": (
            f'[{{"urls": ["turn:127.0.0.1:{turn_port}?transport=udp"], '
            f'"username": "{TURN_USER}", "credential": "{turn_password}"}}]'
        ),
        "OFFICE_ICE_TRANSPORT_POLICY": "relay",
        "OFFICE_RTC_HOST_ADDRESSES": "127.0.0.1",
        "OFFICE_HUB_HEARTBEAT_SECONDS": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    (run_dir / "data").mkdir()
    shape = Shape(url=url, run_dir=run_dir, turn_log=run_dir / "turn.log")
    logs = []

    def start(name: str, argv: list[str], child_env: dict[str, str]) -> subprocess.Popen:
        log = open(run_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed at teardown)
        logs.append(log)
        process = subprocess.Popen(argv, env=child_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        shape.processes[name] = process
        return process

    try:
        # the compose `setup` service (and the image's collectstatic)
        for step in (("office_setup",), ("collectstatic", "--noinput", "-v", "0")):
            subprocess.run([sys.executable, "manage.py", *step], env=env, cwd=ROOT, check=True)

        health: dict[str, str] = {}
        web: Process = next(p for p in PROCESSES if p.role == "web")
        upstreams = []
        for n in (1, 2):
            port = free_port()
            name = f"web-{n}"
            shape.nodes[name] = start(name, local_argv(web, host="127.0.0.1", port=port), env)
            upstreams.append(f"127.0.0.1:{port}")
            health[name] = f"http://127.0.0.1:{port}{web.health_path}"
        for process in PROCESSES:
            if process.role in ("web", "model"):  # the model servers: the assistant is not checked here
                continue
            metrics_port = free_port()
            child_env = {**env, **process.deployed_env(), "OFFICE_METRICS_PORT": str(metrics_port),
                         "OFFICE_METRICS_HOST": "127.0.0.1"}
            if process.role == "worker":
                child_env["PROMETHEUS_MULTIPROC_DIR"] = str(run_dir / f"metrics-{process.name}")
                Path(child_env["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
            if process.role == "transcriber":
                child_env["LOG_LEVEL"] = "INFO"  # its "ready" line: the model is loaded
            start(process.name, local_argv(process, host="127.0.0.1", port=0), child_env)
            health[process.name] = f"http://127.0.0.1:{metrics_port}{process.health_path}"

        # compose's `proxy`: docker/Caddyfile as it is, told the two nodes and loopback ports
        caddy_home = run_dir / "caddy"
        caddy_home.mkdir()
        start("proxy", [CADDY, "run", "--config", str(ROOT / "docker" / "Caddyfile"), "--adapter", "caddyfile"], {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(caddy_home),
            "XDG_DATA_HOME": str(caddy_home / "data"), "XDG_CONFIG_HOME": str(caddy_home / "config"),
            "OFFICE_DOMAIN": "127.0.0.1", "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
            "CADDY_HTTP_PORT": str(free_port()), "CADDY_HTTPS_PORT": str(proxy_port),
            "OFFICE_WEB_UPSTREAMS_FROM": "list", "OFFICE_WEB_UPSTREAMS": " ".join(upstreams),
            "OFFICE_CADDY_RELOAD": "cut",  # Debian's Caddy 2.6 has no stream_close_delay
        })
        # compose's `turn`: docker/turnserver.conf with the flags compose passes, on loopback; its
        # private-range denials stay, with 127.0.0.1 let through because the server peer lives there
        start("turn", [
            TURNSERVER, "-c", str(ROOT / "docker" / "turnserver.conf"), f"--realm={TURN_REALM}",
            f"--user={TURN_USER}:{turn_password}", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
            f"--listening-port={turn_port}", f"--min-port={relay_min}", f"--max-port={relay_min + 19}",
            "--allow-loopback-peers", "--allowed-peer-ip=127.0.0.1", "--no-tls", "--no-dtls",
            f"--pidfile={run_dir / 'turn.pid'}", f"--userdb={run_dir / 'turndb'}", "--verbose",
        ], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})

        # every service healthy, as `docker compose ps` would show
        deadline = time.monotonic() + 180
        waiting = dict(health)
        while waiting:
            for name, process in shape.processes.items():
                if process.poll() is not None:
                    pytest.fail(f"{name} exited ({process.returncode}):\n{shape.log_tail(name)}")
            waiting = {name: u for name, u in waiting.items() if not _healthy(u)}
            if time.monotonic() > deadline:
                pytest.fail(f"not healthy in 180 s: {sorted(waiting)}\n"
                            + "\n".join(shape.log_tail(name, 15) for name in waiting))
            time.sleep(0.5)
        wait_for_port(proxy_port, timeout=30)
        while b"ready" not in (run_dir / "transcriber.log").read_bytes():  # the model is loaded
            if time.monotonic() > deadline:
                pytest.fail(f"the transcriber did not get ready:\n{shape.log_tail('transcriber')}")
            time.sleep(0.3)
        yield shape
    finally:
        for process in reversed(list(shape.processes.values())):
            stop_process(process)
        for log in logs:
            log.close()
        artifacts = ROOT / "test-artifacts" / "prod-check"
        with contextlib.suppress(OSError):
            shutil.rmtree(artifacts, ignore_errors=True)
            artifacts.mkdir(parents=True)
            for path in run_dir.glob("*.log"):
                shutil.copy(path, artifacts / path.name)
