"""The embedded MQTT broker (amqtt) for `make run` and tests: loopback only, no anonymous clients.

Logins are checked by iot/mqtt_auth.py: the office's service account (settings
OFFICE_IOT_MQTT_USERNAME / _PASSWORD, which office/embedded.py generates and keeps in the data
directory) and each enabled sensor with its own password, checked against the hash in the database.
That is why this process runs with Django set up. Production points MQTT_URL at Mosquitto or EMQX
with the equivalent password file and ACL (README, "Sensors").

amqtt keeps sessions in memory only. `PersistentSessions` writes the persistent (clean session off)
sessions - subscriptions and the QoS 1/2 messages not yet delivered to them - to a file in the data
directory when the broker stops and reads them back when it starts, as Mosquitto's `persistence true`
does: the ingester's messages published while the broker restarts, or before the ingester is back,
are queued for it instead of dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from amqtt.broker import Broker, BrokerContext, RetainedApplicationMessage
from amqtt.plugins.base import BasePlugin

logger = logging.getLogger(__name__)


class PersistentSessions(BasePlugin[BrokerContext]):
    """Persistent sessions and their undelivered messages survive a broker restart (see above)."""

    @dataclass
    class Config:
        path: str = "mqtt_sessions.json"

    def _read(self) -> dict:
        path = Path(self.config.path)
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            logger.exception("MQTT sessions in %s could not be read; starting without them", path)
            return {}

    async def on_broker_post_start(self) -> None:
        stored = self._read()
        queued = 0
        for client_id, entry in stored.items():
            await self.context.add_subscription(client_id, None, None)  # an offline session
            session = self.context.get_session(client_id)
            session.clean_session = False
            session.username = entry.get("username")
            for topic, qos in entry.get("subscriptions", []):
                # Straight into the table, not through add_subscription: the subscription was authorised
                # when it was made, and the topic plugin knows only logins made to this process.
                subscribers = self.context.subscriptions.setdefault(topic, [])
                if all(s.client_id != client_id for s, _qos in subscribers):
                    subscribers.append((session, qos))
            for topic, data, qos in entry.get("queued", []):
                await session.retained_messages.put(
                    RetainedApplicationMessage(None, topic, base64.b64decode(data), qos))
                queued += 1
        logger.info("restored %d persistent MQTT session(s) with %d queued message(s)", len(stored), queued)

    async def on_broker_client_subscribed(self, *, client_id: str, topic: str, qos: int) -> None:
        self._write(with_messages=False)  # a broker that dies still knows who subscribed

    async def on_broker_client_connected(self, *, client_id: str, client_session) -> None:
        if client_session.clean_session:
            self._write(with_messages=False)  # a clean session replaces a stored one

    async def on_broker_pre_shutdown(self) -> None:
        self._write(with_messages=True)

    def _write(self, *, with_messages: bool) -> None:
        sessions: dict[str, dict] = {}
        for topic_filter, subscribers in self.context.subscriptions.items():
            for session, qos in subscribers:
                if session.clean_session or session.is_anonymous or not session.client_id:
                    continue
                entry = sessions.setdefault(session.client_id, {"username": session.username, "subscriptions": [],
                                                                "queued": []})
                entry["subscriptions"].append([topic_filter, qos])
        if with_messages:
            for client_id, entry in sessions.items():
                session = self.context.get_session(client_id)
                # sent but not acknowledged first, then what waits for an offline client
                pending = list(session.inflight_out.values())
                waiting = []
                while not session.retained_messages.empty():
                    waiting.append(session.retained_messages.get_nowait())
                for message in waiting:
                    session.retained_messages.put_nowait(message)
                entry["queued"] = [[m.topic, base64.b64encode(bytes(m.data or b"")).decode(), m.qos]
                                   for m in pending + waiting if m.qos]
        path = Path(self.config.path)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(sessions))
        os.replace(temporary, path)


def broker_config(bind: str, sessions_file: Path | None = None) -> dict:
    plugins: dict = {"iot.mqtt_auth.OfficeAuthPlugin": {}, "iot.mqtt_auth.OfficeTopicPlugin": {}}
    if sessions_file is not None:
        plugins["office.mqtt_broker.PersistentSessions"] = {"path": str(sessions_file)}
    return {
        "listeners": {"default": {"type": "tcp", "bind": bind, "max_connections": 1000}},
        "plugins": plugins,
    }


async def serve(bind: str) -> None:
    from django.conf import settings

    broker = Broker(broker_config(bind, Path(settings.DATA_DIR) / "mqtt_sessions.json"))
    await broker.start()
    print(f"mqtt broker listening on {bind}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1:1884")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "office.settings")  # as manage.py does
    import django

    django.setup()
    logging.getLogger("transitions").setLevel(logging.WARNING)  # amqtt's session states, at INFO each
    asyncio.run(serve(args.bind))


if __name__ == "__main__":
    main()
