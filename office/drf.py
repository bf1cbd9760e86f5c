"""The API's parser and throttle (named in settings.REST_FRAMEWORK). Kept apart from `office.api`,
which imports DRF's views: DRF's views read these settings at import, so a module they name must
not import the views back."""

from __future__ import annotations

import logging

from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.throttling import UserRateThrottle

from office.input_checks import control_character_field, refusal_message

logger = logging.getLogger(__name__)


class SafeJSONParser(JSONParser):
    """DRF's parser lets a deeply nested body raise RecursionError (a 500); make it a 400. Text with
    control characters is refused here too (office.input_checks), whatever reaches DRF."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nesting too deep") from exc
        if (place := control_character_field(data)) is not None:
            raise exceptions.ParseError(refusal_message(f"JSON field {place}"))
        return data


class SharedUserRateThrottle(UserRateThrottle):
    """DRF's per-user limit, counted in the shared (Redis) cache so all web nodes agree. If the
    cache cannot be reached the request is allowed and the outage logged: a limiter is no reason
    to refuse everyone."""

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # redis-py raises its own errors through Django's cache
            logger.warning("API rate limiter unavailable (%s); allowing the request", type(exc).__name__)
            return True
