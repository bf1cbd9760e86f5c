"""Logins and topic rights for the embedded MQTT broker (amqtt plugins, loaded by office/mqtt_broker.py).

Two kinds of login are accepted, nothing else (no anonymous clients):
- the office's service account (settings.OFFICE_IOT_MQTT_USERNAME / _PASSWORD; `make run` generates
  one in the data directory): the ingester, the health check, benches; it may use any topic;
- a sensor: its `mqtt_username` and the password shown at creation, checked against the stored hash
  (read from the database: the broker runs with Django set up). The client id must be the device
  id, so a device cannot take over the ingester's persistent session, and it may publish and
  subscribe on its own topic only.

A refused login gets CONNACK "not authorised" and one WARNING with the reason, never the password.
Password hashes are slow on purpose; a verified (hash, password) pair is remembered in memory so a
reconnecting device does not pay again, and a rotated hash no longer matches that memory. Rights
are re-read every OFFICE_ACCESS_RECHECK_SECONDS while a device keeps publishing, so disabling a
sensor or rotating its credentials also stops an open connection from publishing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from . import selectors
from .credentials import mqtt_password_ok

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    reason: str  # "service", "sensor" or why it was refused
    topic: str | None = None  # the one topic a sensor may use; None: any (service account)
    password_hash: str = ""


# username -> (stored hash, sha256 of the password that matched it)
_verified: dict[str, tuple[str, bytes]] = {}


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode()).digest()


def _sensor_password_ok(username: str, password: str, stored_hash: str) -> bool:
    remembered = _verified.get(username)
    if remembered is not None and remembered[0] == stored_hash:
        return hmac.compare_digest(remembered[1], _digest(password))
    if not mqtt_password_ok(password, stored_hash):
        return False
    _verified[username] = (stored_hash, _digest(password))
    return True


def mqtt_login_check(username: str | None, password: str | None, client_id: str | None) -> LoginResult:
    """Decide one CONNECT. Blocking (database, password hash): call it from a worker thread."""
    if not username:
        return LoginResult(False, "anonymous")
    service_user = settings.OFFICE_IOT_MQTT_USERNAME
    if service_user and username == service_user:
        expected = settings.OFFICE_IOT_MQTT_PASSWORD
        if expected and hmac.compare_digest(_digest(password or ""), _digest(expected)):
            return LoginResult(True, "service")
        return LoginResult(False, "wrong_password")
    close_old_connections()
    login = selectors.sensor_mqtt_login(username)
    if login is None:
        return LoginResult(False, "unknown_user")
    if not login.enabled:
        return LoginResult(False, "sensor_disabled")
    if not _sensor_password_ok(username, password or "", login.password_hash):
        return LoginResult(False, "wrong_password")
    if client_id != login.device_id:
        return LoginResult(False, "client_id_not_device_id")
    return LoginResult(True, "sensor", topic=login.topic, password_hash=login.password_hash)


def sensor_rights_current(username: str, password_hash: str) -> str | None:
    """The sensor's topic if its login granted earlier still stands (enabled, same credentials)."""
    close_old_connections()
    login = selectors.sensor_mqtt_login(username)
    if login is None or not login.enabled or login.password_hash != password_hash:
        return None
    return login.topic


@dataclass
class _Grant:
    username: str
    topic: str | None
    password_hash: str
    checked_at: float


# client id -> what its last accepted login may do. Only accepted logins change it: amqtt hands a
# returning client id its old session before asking us, and a refused login must not strip the rights
# of the session it tried to reuse (the ingester would stop receiving while it reconnects).
_grants: dict[str, _Grant] = {}

_check_login = sync_to_async(mqtt_login_check, thread_sensitive=False)
_check_rights = sync_to_async(sensor_rights_current, thread_sensitive=False)


class OfficeAuthPlugin(BaseAuthPlugin):
    """Accepts the service account and sensors with their own password; refuses everyone else."""

    async def authenticate(self, *, session) -> bool:
        try:
            result = await _check_login(session.username, session.password, session.client_id)
        except Exception:
            logger.exception("MQTT login of %r could not be checked; refused", session.username)
            return False
        if not result.ok:
            logger.warning("MQTT login refused (%s): user %r, client id %r", result.reason,
                           (session.username or "")[:80], (session.client_id or "")[:80],
                           extra={"reason": result.reason})
            return False
        _grants[session.client_id] = _Grant(session.username, result.topic, result.password_hash, time.monotonic())
        # The health check signs in every few seconds as the service: only device logins are worth INFO.
        logger.log(logging.INFO if result.reason == "sensor" else logging.DEBUG,
                   "MQTT login accepted (%s): user %r, client id %r", result.reason, session.username,
                   session.client_id)
        return True


class OfficeTopicPlugin(BaseTopicPlugin):
    """A sensor publishes and subscribes on its own topic only; the service account anywhere."""

    async def topic_filtering(self, *, session=None, topic=None, action=None) -> bool:
        if action == Action.RECEIVE:
            return True  # what a session may receive was decided when it subscribed
        grant = _grants.get(session.client_id) if session is not None else None
        if grant is None or grant.username != session.username:
            return False
        if grant.topic is None:
            return True
        if time.monotonic() - grant.checked_at > settings.OFFICE_ACCESS_RECHECK_SECONDS:
            try:
                current = await _check_rights(grant.username, grant.password_hash)
            except Exception:
                logger.exception("MQTT rights of %r could not be re-checked", grant.username)
                return False
            if current is None:
                logger.warning("MQTT %s refused for %r: sensor disabled, deleted or credentials rotated",
                               action, grant.username)
                _grants.pop(session.client_id, None)
                return False
            grant.topic, grant.checked_at = current, time.monotonic()
        if topic != grant.topic:
            logger.warning("MQTT %s refused for %r: topic %r is not its own (%r)", action, grant.username,
                           (topic or "")[:200], grant.topic)
            return False
        return True
