"""API plumbing shared by every app: a JSON parser that survives hostile bodies, uniform errors."""

from __future__ import annotations

import logging

from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class SafeJSONParser(JSONParser):
    """DRF's parser lets a deeply nested body raise RecursionError (a 500); make it a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nesting too deep") from exc


def exception_handler(exc, context):
    """DRF errors as {"error": {"code", "message", "detail"}}; anything unexpected is logged, then a clean 400/500."""
    response = drf_exception_handler(exc, context)
    if response is None:
        from django.core.exceptions import ValidationError as DjangoValidationError

        if isinstance(exc, DjangoValidationError):
            return Response(
                {"error": {"code": "invalid", "message": "; ".join(exc.messages), "detail": exc.messages}},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return None
    detail = response.data
    if isinstance(detail, dict) and "detail" in detail and len(detail) == 1:
        message = str(detail["detail"])
        code = getattr(detail["detail"], "code", "error")
    else:
        message = _summarise(detail) or "Invalid request"
        code = "invalid" if response.status_code == 400 else "error"
    response.data = {"error": {"code": code, "message": message, "detail": detail}}
    return response


def _summarise(detail, prefix: str = "") -> str:
    """'field: first problem; other: ...' from DRF's nested error structure."""
    if isinstance(detail, dict):
        parts = [_summarise(value, f"{prefix}{key}: " if key not in ("detail", "non_field_errors") else prefix)
                 for key, value in detail.items()]
        return "; ".join(p for p in parts if p)
    if isinstance(detail, list):
        return "; ".join(p for p in (_summarise(item, prefix) for item in detail) if p)
    return f"{prefix}{detail}"
