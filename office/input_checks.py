"""One rule for text that comes in: no NUL bytes or other control characters (tab, line feed and
carriage return are text). PostgreSQL refuses NUL in text, so letting one through turns a typo or a
probe into a 500; the other control characters have no business in names, messages or parameters.
Nor does half a surrogate pair (a JSON escape such as "\ud800"), which no encoding, PostgreSQL's
included, can store.

Applied in one place per entry: `ControlCharacterMiddleware` (paths, query strings, headers, form
fields, JSON bodies of every HTTP request), `office.drf.SafeJSONParser` (DRF), and the socket's
frame parser (`rooms.protocol`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from django.http import HttpResponseBadRequest, JsonResponse

CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, f"{where}.{key}" if where else str(key))
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


def control_character_field(value: Any, where: str = "") -> str | None:
    """Where in `value` (a string or JSON-like data) a control character sits, or None."""
    for place, text in _strings(value, where):
        if CONTROL_CHARACTER.search(text):
            return place or "value"
    return None


def refusal_message(place: str) -> str:
    return f"control characters (such as NUL) are not allowed in text: {place[:80]}"


def _request_problem(request) -> str | None:
    if CONTROL_CHARACTER.search(request.path_info):
        return "the path"
    for key, values in request.GET.lists():
        if (place := control_character_field([key, *values], f"query parameter {key!r}")) is not None:
            return place.split("[")[0]
    for name, value in request.META.items():
        if name.startswith("HTTP_") and isinstance(value, str) and CONTROL_CHARACTER.search(value):
            return f"header {name[5:].replace('_', '-').title()}"
    content_type = request.content_type or ""
    if request.method in ("POST", "PUT", "PATCH") and content_type.startswith(_FORM_TYPES):
        for key, values in request.POST.lists():
            if control_character_field([key, *values]) is not None:
                return f"form field {key!r}"
        for key, upload in request.FILES.items():
            if CONTROL_CHARACTER.search(upload.name or ""):
                return f"file name of {key!r}"
    elif request.method in ("POST", "PUT", "PATCH") and content_type == "application/json" and request.body:
        try:
            data = json.loads(request.body)
        except (ValueError, RecursionError):
            return None  # not JSON at all: the view's parser says so
        if (place := control_character_field(data)) is not None:
            return f"JSON field {place}"
    return None


class ControlCharacterMiddleware:
    """A request carrying control characters anywhere is answered 400 with where, before any view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = _request_problem(request)
        if problem is None:
            return self.get_response(request)
        message = refusal_message(problem)
        if request.path_info.startswith("/api/"):
            return JsonResponse({"error": {"code": "invalid", "message": message, "detail": message}}, status=400)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
