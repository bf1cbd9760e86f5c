"""Outbound webhooks signed per Standard Webhooks (webhook-id, webhook-timestamp,
webhook-signature), only to endpoints an admin configured. Every attempt updates the
endpoint's WebhookDelivery row; retries come from the step's retry policy."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F
from django.utils import timezone
from standardwebhooks import Webhook

from ..errors import PermanentError, TransientError
from ..models import WebhookDelivery, WebhookEndpoint


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect would send the payload somewhere nobody configured


SYNTHETIC_EVENT_TYPE = "office.synthetic_check"
SYNTHETIC_HEADER = "x-office-synthetic"

# No proxies from the environment, no redirects: the request goes to the configured URL or nowhere.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def webhook_publish(ctx, event_type: str, payload: dict) -> list:
    """From a step: deliver `event_type` to every active endpoint that wants it, one ledger entry
    per endpoint, so a retry after one endpoint failed does not resend to the others."""
    results = []
    for endpoint in WebhookEndpoint.objects.filter(active=True).order_by("pk"):
        if endpoint.wants(event_type):
            results.append(ctx.send("webhook", {"endpoint_id": endpoint.pk, "event_type": event_type,
                                                "payload": payload}, key=f"webhook.{endpoint.pk}.{event_type}"))
    return results


class WebhookConnector:
    name = "webhook"
    transactional = False

    def breaker_name(self, message: dict) -> str:
        return f"webhook.{message.get('endpoint_id')}"  # one dead receiver does not hold up the others

    def deliver(self, message: dict, *, idempotency_key: str) -> dict:
        endpoint = WebhookEndpoint.objects.filter(pk=message.get("endpoint_id"), active=True).first()
        if endpoint is None:
            raise PermanentError(f"webhook endpoint {message.get('endpoint_id')!r} is gone or inactive")
        event_type = str(message.get("event_type", ""))
        delivery, _ = WebhookDelivery.objects.get_or_create(
            endpoint=endpoint, message_id=idempotency_key,
            defaults={"event_type": event_type, "payload": message.get("payload") or {}},
        )
        code, error = _post_signed(endpoint, message_id=idempotency_key, event_type=event_type,
                                   data=message.get("payload") or {})
        ok, permanent = _accepted(code), _refused(code)
        status = (WebhookDelivery.Status.SUCCEEDED if ok else
                  WebhookDelivery.Status.FAILED if permanent else WebhookDelivery.Status.RETRYING)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=F("attempts") + 1, response_code=code, last_error=error[:1000], status=status,
            last_attempt_at=timezone.now(), delivered_at=timezone.now() if ok else None,
        )
        if ok:
            return {"endpoint_id": endpoint.pk, "delivery_id": delivery.pk, "status": code}
        if permanent:
            raise PermanentError(f"{endpoint.url} refused the webhook: {error or code}")
        raise TransientError(f"{endpoint.url}: {error or code}")


def _post_signed(endpoint: WebhookEndpoint, *, message_id: str, event_type: str, data: dict,
                 extra_headers: dict | None = None) -> tuple[int | None, str]:
    """POST one signed message; (status code or None, error text without the URL)."""
    now = datetime.now(UTC)
    body = json.dumps({"type": event_type, "timestamp": now.isoformat(), "data": data}, cls=DjangoJSONEncoder)
    headers = {
        "content-type": "application/json",
        "user-agent": "Office-Webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(endpoint.secret).sign(message_id, now, body),
        **(extra_headers or {}),
    }
    request = urllib.request.Request(endpoint.url, data=body.encode(), headers=headers, method="POST")
    code, error = None, ""
    try:
        with _opener.open(request, timeout=settings.OFFICE_WEBHOOK_TIMEOUT_SECONDS) as response:
            code = response.status
            response.read(1024)
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    return code, error


def _accepted(code: int | None) -> bool:
    return code is not None and 200 <= code < 300


def _refused(code: int | None) -> bool:
    """A 4xx (or a redirect, which is not followed) other than 'later, please': resending cannot help."""
    return code is not None and not _accepted(code) and code not in (408, 425, 429) and code < 500


def webhook_check(endpoint_id: int) -> str:
    """The synthetic check (docs/adr/0017): a message signed exactly like live ones but marked twice, by
    its type (SYNTHETIC_EVENT_TYPE) and a header (SYNTHETIC_HEADER: 1), so a receiver verifies it and
    drops it. Every active endpoint gets it, whatever its event types; it leaves no WebhookDelivery."""
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, active=True).first()
    if endpoint is None:
        raise PermanentError(f"webhook endpoint {endpoint_id!r} is gone or inactive")
    code, error = _post_signed(endpoint, message_id=f"msg_synthetic_{uuid.uuid4().hex}",
                               event_type=SYNTHETIC_EVENT_TYPE, data={"synthetic": True},
                               extra_headers={SYNTHETIC_HEADER: "1"})
    if _accepted(code):
        return f"HTTP {code}"
    if _refused(code):
        raise PermanentError(f"the receiver refused the check: {error or code}")
    raise TransientError(error or f"HTTP {code}")
