"""API plumbing shared by every app: a JSON parser that survives hostile bodies, uniform errors."""

from __future__ import annotations

import logging

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "the request conflicts with the current state"
    default_code = "conflict"


def call_service(service, *args, **kwargs):
    """Call a service from a view, turning its domain errors into 400/403/404 answers with a message.

    Every app's "not found or not yours" error subclasses ObjectDoesNotExist, so one mapping serves all;
    a ValidationError raised with code="conflict" (the state changed under the caller) is a 409.
    """
    from django.core.exceptions import ObjectDoesNotExist
    from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
    from django.core.exceptions import ValidationError as DjangoValidationError

    try:
        return service(*args, **kwargs)
    except DjangoValidationError as exc:
        if getattr(exc, "code", None) == "conflict":
            raise Conflict("; ".join(exc.messages)) from exc
        raise exceptions.ValidationError({"detail": exc.messages}) from exc
    except DjangoPermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc)) from exc
    except ObjectDoesNotExist as exc:
        raise exceptions.NotFound(str(exc) or "not found") from exc


def whole_number(text: str | None) -> int | None:
    """`text` as an integer if it is one in ASCII digits that fits PostgreSQL's bigint, else None.
    For ids and counts in query strings: `str.isdigit()` alone also passes "²" and a thousand-digit
    number, which int() or the database then refuse with a 500."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


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
        inner = detail["detail"]
        first = inner[0] if isinstance(inner, list) and inner else inner
        message = _summarise(inner)  # a list of messages reads "a; b", not as a Python list
        code = getattr(first, "code", "error")
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
