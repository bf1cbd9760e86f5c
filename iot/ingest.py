"""The MQTT ingester: subscribe to every sensor topic with QoS 1, store each message through
`services.mqtt_message_ingest`, fire rules that became due at once, reconnect with backoff.

It keeps a persistent session (clean session off, a fixed client id), so the broker queues QoS 1
messages while the ingester restarts and delivers them afterwards. A bad message is logged and
counted by the service and never stops the loop. amqtt acknowledges a QoS 1 message when it is
queued in this process, so messages are handled one by one in arrival order to keep the window
between acknowledgement and commit short.
"""

from __future__ import annotations

import asyncio
import logging
import random
from urllib.parse import urlparse

from amqtt.client import MQTTClient
from amqtt.mqtt.constants import QOS_1
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from office.mqtt import broker_uri

from . import services
from .metrics import INGESTER_CONNECTS, READINGS_REJECTED

logger = logging.getLogger(__name__)
# amqtt's session state machine logs every transition at INFO.
logging.getLogger("transitions").setLevel(logging.WARNING)


def subscription() -> str:
    return settings.OFFICE_IOT_TOPIC_PREFIX + "/#"


DATABASE_AWAY = "database_away"
DATABASE_RETRY_MAX_SECONDS = 5.0


def _handle_message_sync(topic: str, payload: bytes) -> str:
    """Store one message (the service acts on timers it made due); returns an outcome word (for logs/tests)."""
    close_old_connections()
    try:
        result = services.mqtt_message_ingest(topic=topic, payload=payload)
    except services.ReadingRejected as exc:
        return exc.reason
    except (OperationalError, InterfaceError):
        # The database is away (restarting): the broker took this message as delivered already, so
        # it is kept and stored again once the database is back, never dropped.
        return DATABASE_AWAY
    except Exception:
        # Database trouble and the like: logged and counted; the loop goes on with the next message.
        READINGS_REJECTED.labels("mqtt", "error").inc()
        logger.exception("sensor message on %s could not be stored", topic[:200])
        return "error"
    return "stored" if result.created else "duplicate"


handle_message = sync_to_async(_handle_message_sync, thread_sensitive=True)


class Ingester:
    """One long-lived MQTT session; `run` returns when `stop` is set (or the task is cancelled)."""

    def __init__(self, *, client_id: str | None = None, uri: str | None = None):
        self.client_id = client_id or settings.OFFICE_IOT_MQTT_CLIENT_ID
        self.uri = uri or broker_uri()
        self.handled = 0
        self.connected = asyncio.Event()

    def _client(self) -> MQTTClient:
        return MQTTClient(client_id=self.client_id, config={
            "auto_reconnect": False,  # our own loop reconnects, with backoff and a fresh subscribe
            "cleansession": False,
            "keep_alive": 15,
            "default_qos": QOS_1,
        })

    async def run(self, stop: asyncio.Event) -> None:
        delay = 0.5
        while not stop.is_set():
            client = self._client()
            try:
                await client.connect(self.uri, cleansession=False)
                await client.subscribe([(subscription(), QOS_1)])
            except Exception as exc:
                INGESTER_CONNECTS.labels("failed").inc()
                logger.warning("MQTT broker at %s not reachable (%s); retrying in %.1fs",
                               urlparse(self.uri).hostname, type(exc).__name__, delay)
                await self._sleep(stop, delay)
                delay = min(delay * 2, settings.OFFICE_IOT_RECONNECT_MAX_SECONDS) * random.uniform(0.8, 1.2)
                continue
            INGESTER_CONNECTS.labels("ok").inc()
            logger.info("ingesting sensor messages from %s", subscription())
            delay = 0.5
            self.connected.set()
            try:
                await self._consume(client, stop)
            finally:
                self.connected.clear()
                await self._store_acknowledged(client, stop)
                await self._disconnect(client)

    async def _consume(self, client: MQTTClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                message = await client.deliver_message(timeout_duration=1.0)
            except TimeoutError:
                if not client.session or not client.session.transitions.is_connected():
                    logger.warning("lost the MQTT broker; reconnecting")
                    return
                continue
            except Exception as exc:
                logger.warning("MQTT session ended (%s); reconnecting", type(exc).__name__)
                return
            if message is None:
                continue
            await self._store(message.topic, bytes(message.data or b""), stop)
            self.handled += 1

    async def _store_acknowledged(self, client: MQTTClient, stop: asyncio.Event) -> None:
        """Messages amqtt acknowledged and queued that nobody took yet: stored before the client goes,
        since the broker will not send them again (they were lost when the broker restarted mid-flow)."""
        queue = getattr(getattr(client, "session", None), "delivered_message_queue", None)
        while queue is not None and not queue.empty():
            message = queue.get_nowait()
            await self._store(message.topic, bytes(message.data or b""), stop)
            self.handled += 1

    async def _store(self, topic: str, payload: bytes, stop: asyncio.Event) -> None:
        """Store one message, waiting (with backoff) while the database is away."""
        delay = 0.2
        while await handle_message(topic, payload) == DATABASE_AWAY and not stop.is_set():
            logger.warning("database unavailable; keeping the sensor message on %s and retrying in %.1fs",
                           topic[:200], delay)
            await self._sleep(stop, delay)
            delay = min(delay * 2, DATABASE_RETRY_MAX_SECONDS)

    @staticmethod
    async def _disconnect(client: MQTTClient) -> None:
        try:
            await asyncio.wait_for(client.disconnect(), 3)
        except Exception:
            pass

    @staticmethod
    async def _sleep(stop: asyncio.Event, seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass
