"""Connectors: the only code that causes side effects, each behind one small interface.

A connector has a `name`, says whether its effect is a write in our own database
(`transactional`: done in one transaction with the ledger row), and `deliver(message,
idempotency_key=...)` returns a JSON-safe result or raises TransientError/PermanentError.
External connectors are called through a circuit breaker (`breaker_name`). Steps reach them
with `ctx.send(name, message)`; tests may register a double for a SaaS under the same name.
"""

from __future__ import annotations

from typing import Any, Protocol

import pybreaker

from ..breakers import breaker_for, retry_after_seconds
from ..errors import ConnectorUnavailable


class Connector(Protocol):
    name: str
    transactional: bool

    def deliver(self, message: dict, *, idempotency_key: str) -> Any: ...

    def breaker_name(self, message: dict) -> str: ...


_connectors: dict[str, Connector] = {}


def connector_register(connector: Connector, *, replace: bool = False) -> Connector:
    if connector.name in _connectors and not replace and type(_connectors[connector.name]) is not type(connector):
        raise ValueError(f"a connector named {connector.name!r} is already registered")
    _connectors[connector.name] = connector
    return connector


def connector_get(name: str) -> Connector:
    try:
        return _connectors[name]
    except KeyError:
        raise LookupError(f"no connector named {name!r}; known: {sorted(_connectors)}") from None


def call_through_breaker(connector: Connector, message: dict, idempotency_key: str) -> Any:
    breaker = breaker_for(connector.breaker_name(message))
    try:
        return breaker.call(connector.deliver, message, idempotency_key=idempotency_key)
    except pybreaker.CircuitBreakerError:
        raise ConnectorUnavailable(breaker.name, retry_after_seconds(breaker)) from None


from .chat import RoomChatConnector  # noqa: E402
from .email import EmailConnector  # noqa: E402
from .notifications import NotificationConnector  # noqa: E402
from .webhooks import WebhookConnector, webhook_publish  # noqa: E402

connector_register(NotificationConnector())
connector_register(RoomChatConnector())
connector_register(EmailConnector())
connector_register(WebhookConnector())

__all__ = ["Connector", "connector_get", "connector_register", "call_through_breaker", "webhook_publish"]
