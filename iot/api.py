"""REST API for sensors, rules, bookings and occupancy, and the signed webhook sensors post to.

Views parse, authorise and call one service. Members read what is in rooms they may enter;
admins (staff) register sensors and rules. The webhook is machine-to-machine: no session, no
CSRF; the device's HMAC signature is its authentication.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from office.api import call_service, whole_number
from rooms.models import Room

from . import selectors, services
from .credentials import DeviceCredentials
from .models import Rule, Sensor
from .serializers import (
    BookingOut,
    DeviceCredentialsOut,
    FiringOut,
    OccupancyOut,
    ReadingOut,
    RuleOut,
    SensorCreatedOut,
    SensorOut,
    SuggestionOut,
)


def _room_or_400(room_id):
    if room_id is None:
        return None
    room = Room.objects.filter(pk=room_id).first()
    if room is None:
        raise ValidationError({"room": [f"no room {room_id}"]})
    return room


def _credentials_payload(creds: DeviceCredentials) -> dict:
    return dict(DeviceCredentialsOut(creds).data)


class AdminWritePermissions:
    """Reads for any signed-in member (filtered by selectors); writes for admins only."""

    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAuthenticated()]
        return [IsAuthenticated(), IsAdminUser()]


class SensorListApi(AdminWritePermissions, APIView):
    class InputSerializer(serializers.Serializer):
        room = serializers.IntegerField(required=False, allow_null=True)
        kind = serializers.ChoiceField(choices=Sensor.Kind.choices)
        name = serializers.CharField(max_length=120)
        device_id = serializers.SlugField(max_length=64)
        mqtt_topic = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        enabled = serializers.BooleanField(required=False, default=True)

    @extend_schema(responses=SensorOut(many=True),
                   parameters=[OpenApiParameter("room", int, description="only this room's sensors")])
    def get(self, request):
        sensors = selectors.sensors_visible_to(request.user)
        room_id = request.query_params.get("room")
        if (room := whole_number(room_id)) is not None:
            sensors = sensors.filter(room_id=room)
        return Response([selectors.sensor_payload(s) for s in sensors])

    @extend_schema(request=InputSerializer, responses={201: SensorCreatedOut})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fields["room"] = _room_or_400(fields.get("room"))
        sensor, creds = call_service(services.sensor_create, **fields)
        return Response({**selectors.sensor_payload(sensor), "credentials": _credentials_payload(creds)},
                        status=status.HTTP_201_CREATED)


class SensorDetailApi(AdminWritePermissions, APIView):
    class InputSerializer(serializers.Serializer):
        room = serializers.IntegerField(required=False, allow_null=True)
        name = serializers.CharField(max_length=120, required=False)
        mqtt_topic = serializers.CharField(max_length=200, required=False, allow_blank=True)
        enabled = serializers.BooleanField(required=False)

    @extend_schema(responses=SensorOut)
    def get(self, request, sensor_id: int):
        sensor = call_service(selectors.sensor_for_user, request.user, sensor_id)
        return Response(selectors.sensor_payload(sensor))

    @extend_schema(request=InputSerializer, responses=SensorOut)
    def patch(self, request, sensor_id: int):
        sensor = get_object_or_404(Sensor, pk=sensor_id)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if "room" in fields:
            fields["room"] = _room_or_400(fields["room"])
        sensor = call_service(services.sensor_update, sensor=sensor, **fields)
        return Response(selectors.sensor_payload(Sensor.objects.select_related("room").get(pk=sensor.pk)))

    @extend_schema(responses={204: None})
    def delete(self, request, sensor_id: int):
        call_service(services.sensor_delete, sensor=get_object_or_404(Sensor, pk=sensor_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SensorRotateApi(APIView):
    permission_classes = [IsAuthenticated, IsAdminUser]

    @extend_schema(request=None, responses=inline_serializer("SensorCredentials", {
        "credentials": DeviceCredentialsOut()}))
    def post(self, request, sensor_id: int):
        creds = call_service(services.sensor_credentials_rotate, sensor=get_object_or_404(Sensor, pk=sensor_id))
        return Response({"credentials": _credentials_payload(creds)})


class SensorReadingsApi(APIView):
    @extend_schema(responses=inline_serializer("SensorReadings", {
        "sensor": serializers.IntegerField(), "readings": ReadingOut(many=True)}),
        parameters=[OpenApiParameter("limit", int, description="the latest N readings (120; at most 1000)"),
                    OpenApiParameter("since", OpenApiTypes.DATETIME,
                                     description="only readings received at or after this time (a chart's range)")])
    def get(self, request, sensor_id: int):
        sensor = call_service(selectors.sensor_for_user, request.user, sensor_id)
        raw = request.query_params.get("limit", "120")
        limit = min(whole_number(raw) or 120, 1000)
        since = None
        if request.query_params.get("since"):
            try:
                since = serializers.DateTimeField().run_validation(request.query_params["since"])
            except ValidationError as exc:
                raise ValidationError({"since": exc.detail}) from exc
        readings = selectors.readings_recent(sensor, limit, since=since)
        return Response({"sensor": sensor.id, "readings": [selectors.reading_payload(r) for r in readings]})


class RuleSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    scope = serializers.ChoiceField(choices=Rule.Scope.choices)
    sensor = serializers.IntegerField(required=False, allow_null=True)
    room = serializers.IntegerField(required=False, allow_null=True)
    sensor_kind = serializers.ChoiceField(choices=Sensor.Kind.choices)
    field = serializers.CharField(max_length=32, required=False)
    op = serializers.ChoiceField(choices=Rule.Op.choices)
    value = serializers.JSONField(required=False, allow_null=True)
    for_seconds = serializers.IntegerField(min_value=0, max_value=7 * 24 * 3600, required=False)
    clear_op = serializers.ChoiceField(choices=[("", "not the condition"), *Rule.Op.choices], required=False)
    clear_value = serializers.JSONField(required=False, allow_null=True)
    clear_for_seconds = serializers.IntegerField(min_value=0, max_value=7 * 24 * 3600, required=False)
    action = serializers.ChoiceField(choices=Rule.Action.choices, required=False)
    severity = serializers.ChoiceField(choices=["low", "medium", "high", "critical"], required=False)
    enabled = serializers.BooleanField(required=False)


def _rule_fields(validated: dict) -> dict:
    fields = dict(validated)
    if "sensor" in fields:
        sensor_id = fields.pop("sensor")
        fields["sensor"] = None if sensor_id is None else Sensor.objects.filter(pk=sensor_id).first()
        if sensor_id is not None and fields["sensor"] is None:
            raise ValidationError({"sensor": [f"no sensor {sensor_id}"]})
    if "room" in fields:
        fields["room"] = _room_or_400(fields["room"])
    return fields


def rule_payload(rule: Rule) -> dict:
    return dict(RuleOut(rule).data)


class RuleListApi(APIView):
    permission_classes = [IsAuthenticated, IsAdminUser]

    @extend_schema(responses=RuleOut(many=True))
    def get(self, request):
        return Response([rule_payload(r) for r in Rule.objects.all()])

    @extend_schema(request=RuleSerializer, responses={201: RuleOut})
    def post(self, request):
        data = RuleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = call_service(services.rule_create, **_rule_fields(data.validated_data))
        return Response(rule_payload(rule), status=status.HTTP_201_CREATED)


class RuleDetailApi(APIView):
    permission_classes = [IsAuthenticated, IsAdminUser]

    @extend_schema(responses=RuleOut)
    def get(self, request, rule_id: int):
        return Response(rule_payload(get_object_or_404(Rule, pk=rule_id)))

    @extend_schema(request=RuleSerializer(partial=True), responses=RuleOut)
    def patch(self, request, rule_id: int):
        rule = get_object_or_404(Rule, pk=rule_id)
        data = RuleSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        rule = call_service(services.rule_update, rule=rule, **_rule_fields(data.validated_data))
        return Response(rule_payload(rule))

    @extend_schema(responses={204: None})
    def delete(self, request, rule_id: int):
        call_service(services.rule_delete, rule=get_object_or_404(Rule, pk=rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BookingListApi(APIView):
    class InputSerializer(serializers.Serializer):
        room = serializers.IntegerField()
        title = serializers.CharField(max_length=200)
        start = serializers.DateTimeField()
        end = serializers.DateTimeField()

    @extend_schema(responses=BookingOut(many=True),
                   parameters=[OpenApiParameter("room", int, description="only this room's bookings")])
    def get(self, request):
        room_id = request.query_params.get("room")
        bookings = selectors.bookings_visible_to(request.user,
                                                 room_id=whole_number(room_id))
        return Response([selectors.booking_payload(b) for b in bookings[:500]])

    @extend_schema(request=InputSerializer, responses={201: BookingOut})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        room = Room.objects.filter(pk=fields.pop("room")).first()
        if room is None:
            raise NotFound("no such room")
        booking = call_service(services.booking_create, user=request.user, room=room, **fields)
        return Response(selectors.booking_payload(booking), status=status.HTTP_201_CREATED)


class BookingDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, booking_id: int):
        booking = selectors.bookings_visible_to(request.user).filter(pk=booking_id).first()
        if booking is None:
            raise NotFound("no such booking")
        call_service(services.booking_delete, user=request.user, booking=booking)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OccupancyApi(APIView):
    """Live occupancy of a map's rooms (the map draws it as badges; later changes come over the socket)."""

    @extend_schema(responses=inline_serializer("MapOccupancy", {
        "map": serializers.IntegerField(), "rooms": OccupancyOut(many=True)}),
        parameters=[OpenApiParameter("map", int, required=True, description="the map's id")])
    def get(self, request):
        map_id = whole_number(request.query_params.get("map"))
        if map_id is None:
            raise ValidationError({"map": ["give the map id: ?map=<id>"]})
        return Response({"map": map_id, "rooms": selectors.occupancy_for_map(map_id)})


class OverviewApi(APIView):
    """What the sensors page shows: visible sensors, recent suggestions and firings."""

    @extend_schema(responses=inline_serializer("SensorsOverview", {
        "sensors": SensorOut(many=True), "suggestions": SuggestionOut(many=True), "firings": FiringOut(many=True)}))
    def get(self, request):
        return Response({
            "sensors": [selectors.sensor_payload(s) for s in selectors.sensors_visible_to(request.user)],
            "suggestions": selectors.suggestions_recent(request.user),
            "firings": selectors.firings_recent(request.user),
        })


def _webhook_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "detail": None}}, status=status_code)


@csrf_exempt  # machine-to-machine: authenticated by the HMAC signature, not a session
@login_not_required
@require_POST
def sensor_webhook(request, device_id: str):
    """POST a reading as a device: headers X-Office-Timestamp (Unix seconds) and X-Office-Signature
    (`sha256=` + hex HMAC-SHA256 of `<timestamp>.<raw body>` under the device's webhook secret)."""
    try:
        result = services.webhook_ingest(
            device_id=device_id, body=request.body,
            timestamp=request.headers.get("X-Office-Timestamp"), signature=request.headers.get("X-Office-Signature"),
        )
    except services.ReadingRejected as exc:
        return _webhook_error(exc.status, exc.reason, exc.message)
    return JsonResponse(
        {"reading": result.reading.id, "duplicate": not result.created},
        status=201 if result.created else 200,
    )

