"""The outcome dashboard's page and API (rooms/outcomes.py): both parse the same query, call
`outcomes_for` and answer in `OutcomesOut`'s shape; the page embeds it, its script refetches the API
when the room or the range changes (static/outcomes/outcomes.js)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import render
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from office.api import call_service, whole_number

from . import outcomes, selectors

EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2999, 12, 31)


class OutcomeQuery(serializers.Serializer):
    room = serializers.CharField(required=False, allow_blank=True, max_length=40)
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)
    days = serializers.ChoiceField(choices=outcomes.RANGE_DAYS, required=False)

    def validate_room(self, value: str) -> int | None:
        if value == "":
            return None
        room_id = whole_number(value)
        if room_id is None:
            raise serializers.ValidationError("room must be a room id")
        return room_id

    def _in_range(self, value: dt.date) -> dt.date:
        if not EARLIEST <= value <= LATEST:
            raise serializers.ValidationError(f"must be between {EARLIEST} and {LATEST}")
        return value

    validate_since = _in_range
    validate_until = _in_range


def _parsed(query) -> dict:
    parsed = OutcomeQuery(data=query)
    parsed.is_valid(raise_exception=True)
    return {"room_id": None, **{("room_id" if k == "room" else k): v for k, v in parsed.validated_data.items()}}


class OutcomesApi(APIView):
    @extend_schema(responses=outcomes.OutcomesOut, parameters=[
        OpenApiParameter("room", int, description="one room (members: a room they may read); none: every room (admins)"),
        OpenApiParameter("since", dt.date, description="first day (default: `days` before `until`)"),
        OpenApiParameter("until", dt.date, description="last day, included (default: today)"),
        OpenApiParameter("days", int, enum=list(outcomes.RANGE_DAYS), description="the range when `since` is not given (30)"),
    ])
    def get(self, request):
        """Figures over time for the outcome dashboard: meeting hours, action items, review and
        resolution times, model tokens, latency and estimated cost."""
        data = call_service(outcomes.outcomes_for, user=request.user, **_parsed(request.query_params))
        return Response(outcomes.OutcomesOut(data).data)


def outcomes_page(request):
    """/outcomes/: admins see every room (with a room picker), members one room they may read."""
    try:
        query = _parsed(request.GET)
        data = outcomes.outcomes_for(user=request.user, **query)
    except (ValidationError, DjangoValidationError):
        return HttpResponseBadRequest("The room or the range is not valid.")
    except selectors.NotFound as exc:
        raise Http404("no such room") from exc
    return render(request, "rooms/outcomes.html", {
        "outcomes": outcomes.OutcomesOut(data).data, "range_days": outcomes.RANGE_DAYS,
        "days": query.get("days") or (None if query.get("since") else outcomes.DEFAULT_DAYS),
    })
