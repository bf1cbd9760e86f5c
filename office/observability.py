"""Request ids, structured logs and Prometheus metrics shared by every process."""

from __future__ import annotations

import re
import time
import uuid

from django.contrib.auth.middleware import LoginRequiredMiddleware
from prometheus_client import Counter, Gauge, Histogram

from .logformat import request_id_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

HTTP_REQUESTS = Counter("office_http_requests_total", "HTTP requests served", ["method", "status"])
HTTP_LATENCY = Histogram("office_http_request_seconds", "HTTP request latency", ["method"])
WS_CONNECTIONS = Gauge("office_ws_connections", "Open office WebSocket connections")
WS_FRAMES_IN = Counter("office_ws_frames_in_total", "Frames received from clients", ["type"])
WS_ERRORS = Counter("office_ws_errors_total", "Error frames sent to clients", ["code"])
MOVE_BATCHES = Counter("office_move_batches_total", "Movement batches published by this process")
MOVE_BATCH_SIZE = Histogram(
    "office_move_batch_size", "Moves per published batch", buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000)
)
MOVE_TICK_PERIOD = Gauge("office_move_tick_seconds", "Current movement tick period (stretched while the process lags)")
CHAT_MESSAGES = Counter("office_chat_messages_total", "Chat messages persisted")


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Tag each request with an id (the caller's X-Request-ID if well-formed), echo it, log it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        request.request_id = request_id
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        HTTP_REQUESTS.labels(request.method, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method).observe(time.perf_counter() - started)
        return response


class LoginRequiredEverywhereMiddleware(LoginRequiredMiddleware):
    """Every page needs a session; the API answers 401/403 JSON itself instead of redirecting."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
