"""What a synthetic connector check is made of, per connector (docs/adr/0017): the targets to check,
the probe that sends a marked test request through the connector's own code, and the circuit breaker
live work to that target goes through (None where live work has none).

A probe returns a short detail on success. It raises TransientError for an outage (connection
refused, timeout, 5xx: the breaker opens) and PermanentError for a refusal or bad configuration
(4xx, a login refused: the check fails, the breaker stays as it is, as it does for live work).
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pybreaker
from django.conf import settings

from .breakers import breaker_for
from .connectors import connector_get
from .errors import PermanentError, TransientError


@dataclass(frozen=True)
class CheckTarget:
    key: str  # stable id: an endpoint or feed id, a model tier, "default"
    label: str  # what a person recognises; never a whole URL (it may hold a token)


@dataclass(frozen=True)
class ConnectorCheckKind:
    connector: str
    targets: Callable[[], list[CheckTarget]]
    probe: Callable[[str], str]
    breaker: Callable[[str], pybreaker.CircuitBreaker | None] = lambda key: None


_kinds: dict[str, ConnectorCheckKind] = {}


def check_kind_register(kind: ConnectorCheckKind) -> ConnectorCheckKind:
    _kinds[kind.connector] = kind
    return kind


def check_kind_get(connector: str) -> ConnectorCheckKind:
    try:
        return _kinds[connector]
    except KeyError:
        raise LookupError(f"no connector check named {connector!r}; known: {sorted(_kinds)}") from None


def check_kinds() -> list[ConnectorCheckKind]:
    return list(_kinds.values())


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


# --- webhook: one target per active endpoint, breaker webhook.<id> as in WebhookConnector ---

def _webhook_targets() -> list[CheckTarget]:
    from .models import WebhookEndpoint

    return [CheckTarget(str(pk), f"{description or 'endpoint'} ({_host(url)})")
            for pk, description, url in WebhookEndpoint.objects.filter(active=True).order_by("pk")
            .values_list("pk", "description", "url")]


def _webhook_probe(key: str) -> str:
    from .connectors.webhooks import webhook_check

    return webhook_check(int(key))


# --- e-mail: the configured backend, breaker "email" as in EmailConnector ---

def _email_targets() -> list[CheckTarget]:
    backend = settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
    where = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}" if backend == "smtp" else backend
    return [CheckTarget("default", where)]


def _email_probe(key: str) -> str:
    from .connectors.email import email_check

    return email_check()


# --- room chat: the channel layer that nudges people; no breaker (a post is a write in our database) ---

def _room_chat_probe(key: str) -> str:
    from .connectors.chat import room_chat_check

    return room_chat_check(settings.OFFICE_CONNECTOR_CHECK_TIMEOUT_SECONDS)


# --- calendar feeds: one target per URL feed, breaker calendar_feed.<id> used by the import ---

def _calendar_targets() -> list[CheckTarget]:
    from automation import services as automation_services

    return [CheckTarget(str(pk), label) for pk, label in automation_services.calendar_feeds_checked()]


def _calendar_probe(key: str) -> str:
    from automation import services as automation_services

    return automation_services.calendar_feed_check(int(key))


def _calendar_breaker(key: str) -> pybreaker.CircuitBreaker:
    from automation import services as automation_services

    return automation_services.calendar_feed_breaker(int(key))


# --- model endpoints: one target per distinct server, the assistant's own breaker for it ---

def _model_targets() -> list[CheckTarget]:
    from assistant import llm

    seen, targets = set(), []
    for tier in llm.TIERS:
        endpoint = llm.endpoint_for(tier)
        if endpoint.base_url not in seen:
            seen.add(endpoint.base_url)
            targets.append(CheckTarget(tier, f"{endpoint.model} ({_host(endpoint.base_url)})"))
    return targets


def _model_probe(key: str) -> str:
    from assistant import llm

    endpoint = llm.endpoint_for(key)
    try:
        served = llm.HttpTransport().models(endpoint, settings.OFFICE_CONNECTOR_CHECK_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise PermanentError(f"the model server refused the check: HTTP {exc.code}") from exc
        raise TransientError(f"HTTP {exc.code}") from exc
    except (json.JSONDecodeError, AttributeError) as exc:
        raise PermanentError("not an OpenAI-compatible answer to GET /models") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise TransientError(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc
    # llama.cpp serves one model under its file name whatever the request names: listed or not, it answers.
    listed = "" if endpoint.model in served else f"; {endpoint.model} is not among them"
    return f"serves {', '.join(served[:3]) or 'no models'}{listed}"


def _model_breaker(key: str) -> pybreaker.CircuitBreaker:
    from assistant import llm

    return llm.breaker_for(llm.endpoint_for(key))


check_kind_register(ConnectorCheckKind(
    "webhook", _webhook_targets, _webhook_probe,
    breaker=lambda key: breaker_for(connector_get("webhook").breaker_name({"endpoint_id": int(key)}))))
check_kind_register(ConnectorCheckKind(
    "email", _email_targets, _email_probe, breaker=lambda key: breaker_for(connector_get("email").breaker_name({}))))
check_kind_register(ConnectorCheckKind(
    "room_chat", lambda: [CheckTarget("default", "channel layer")], _room_chat_probe))
check_kind_register(ConnectorCheckKind(
    "calendar_feed", _calendar_targets, _calendar_probe, breaker=_calendar_breaker))
check_kind_register(ConnectorCheckKind(
    "model_endpoint", _model_targets, _model_probe, breaker=_model_breaker))
