"""REST API of booked meetings' agendas (docs/adr/0021): read one, the room's upcoming one, and edit
one with the version it started from (a stale version is a 409). Views parse, authorise through the
selectors and call one service."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from office.api import call_service

from . import selectors, services
from .serializers import AGENDA_ITEM_KINDS, AgendaDetailOut, RoomAgendaOut
from .services.agendas import AGENDA_ITEM_TEXT_MAX, AGENDA_MAX_ITEMS, AGENDA_URL_MAX, REF_MAX


class AgendaItemIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AGENDA_ITEM_KINDS, required=False, default="custom")
    text = serializers.CharField(max_length=AGENDA_ITEM_TEXT_MAX)
    ref = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1, max_value=REF_MAX)
    url = serializers.CharField(required=False, allow_blank=True, default="", max_length=AGENDA_URL_MAX,
                                help_text="a path inside the office (starts with /), or empty")


class AgendaDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        version = serializers.IntegerField(min_value=1, max_value=2**62,
                                           help_text="the version you edited (from the agenda you loaded)")
        items = AgendaItemIn(many=True, allow_empty=True, max_length=AGENDA_MAX_ITEMS,
                             help_text="the whole list, in order")

    @extend_schema(responses=AgendaDetailOut)
    def get(self, request, agenda_id: int):
        agenda = call_service(selectors.agenda_for_user, request.user, agenda_id)
        return Response(selectors.agenda_detail_payload(agenda, request.user))

    @extend_schema(request=InputSerializer, responses=AgendaDetailOut)
    def put(self, request, agenda_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agenda = call_service(services.agenda_update, user=request.user, agenda_id=agenda_id,
                              version=data.validated_data["version"],
                              items=[dict(item) for item in data.validated_data["items"]])
        return Response(selectors.agenda_detail_payload(agenda, request.user))


class RoomAgendaApi(APIView):
    """The agenda of the room's meeting going on now, else of its next booked one (null until drafted)."""

    @extend_schema(responses=RoomAgendaOut)
    def get(self, request, room_id: int):
        agenda = call_service(selectors.agenda_upcoming_in_room, request.user, room_id, now=timezone.now())
        return Response({"room": room_id,
                         "agenda": selectors.agenda_detail_payload(agenda, request.user) if agenda else None})
