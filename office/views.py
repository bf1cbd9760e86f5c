"""Operational endpoints: health for load balancers, metrics for Prometheus."""

from __future__ import annotations

import hmac
import secrets
import socket
import time
from urllib.parse import unquote, urlparse

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from office.mqtt import broker_uri


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def _mqtt_string(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(2, "big") + data


def _mqtt_remaining_length(size: int) -> bytes:
    out = bytearray()
    while True:
        size, digit = divmod(size, 128)
        out.append(digit | (0x80 if size else 0))
        if not size:
            return bytes(out)


def _check_mqtt() -> None:
    """Open an MQTT 3.1.1 session with the ingester's login (CONNECT, expect CONNACK accepted), then
    disconnect: a broker that refuses that login is as bad for sensors as one that is down."""
    url = urlparse(broker_uri())
    flags = 0x02  # clean session
    payload = _mqtt_string(f"office-health-{secrets.token_hex(4)}")
    if url.username:
        flags |= 0x80
        payload += _mqtt_string(unquote(url.username))
        if url.password is not None:
            flags |= 0x40
            payload += _mqtt_string(unquote(url.password))
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x0a" + payload
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 1883), timeout=2) as sock:
        sock.sendall(b"\x10" + _mqtt_remaining_length(len(body)) + body)
        reply = sock.recv(4)
        if len(reply) < 4 or reply[0] != 0x20 or reply[3] != 0:
            raise ConnectionError(f"broker refused the session (CONNACK {reply.hex()})")
        sock.sendall(b"\xe0\x00")


CHECKS = {"database": _check_database, "redis": _check_redis, "mqtt": _check_mqtt}


@login_not_required
def healthz(request):
    """200 when every backing service answers, 503 naming the one that does not. No data is exposed."""
    results, healthy = {}, True
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
        except Exception as exc:
            healthy = False
            results[name] = {"ok": False, "error": type(exc).__name__}
    return JsonResponse({"ok": healthy, "checks": results}, status=200 if healthy else 503)


@login_not_required
def metrics(request):
    """Prometheus text format; a bearer token (METRICS_TOKEN) or an admin session is required."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    by_token = bool(token) and hmac.compare_digest(header, f"Bearer {token}")
    if not by_token and not (request.user.is_authenticated and request.user.is_staff):
        return JsonResponse({"error": {"code": "forbidden", "message": "metrics need METRICS_TOKEN or an admin"}},
                            status=403)
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)


def not_found(request, exception):
    """A path that names no page (handler404): under /api/ in the API's error shape, which is what a
    script parses, not an HTML page; elsewhere Django's page."""
    if request.path_info.startswith("/api/"):
        message = "no such API path"
        return JsonResponse({"error": {"code": "not_found", "message": message, "detail": message}}, status=404)
    return page_not_found(request, exception)
