"""REST API for tasks, tickets, digests and calendars. Views parse, authorise and call one service;
anything a member may not see answers 404, the same as anything that does not exist."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from office.api import call_service
from rooms import selectors as room_selectors

from . import selectors, services
from .models import Task, Ticket
from .serializers import AuditEntryOut, DigestOut, TaskOut, TicketOut

LIST_LIMIT = 500


def _member(user_id: int | None):
    if user_id is None:
        return None
    user = selectors.active_members().filter(pk=user_id).first()
    if user is None:
        raise ValidationError({"owner": ["no such member"]})
    return user


def _visible_room(user, room_id: int | None):
    return None if room_id is None else call_service(room_selectors.room_get_visible, user=user, room_id=room_id)


class TaskListApi(APIView):
    permission_classes = [IsAuthenticated]

    class TaskCreateInputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, max_length=10000)
        owner = serializers.IntegerField(required=False, allow_null=True)
        due_date = serializers.DateField(required=False, allow_null=True)
        room = serializers.IntegerField(required=False, allow_null=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("tab", str, enum=["all", "mine", "team", "room"]),
            OpenApiParameter("room", int),
            OpenApiParameter("closed", bool, description="include done and cancelled tasks"),
        ],
        responses=TaskOut(many=True),
    )
    def get(self, request):
        tab = request.query_params.get("tab", "all")
        room_id = request.query_params.get("room")
        try:
            room_id = int(room_id) if room_id not in (None, "") else None
        except ValueError as exc:
            raise NotFound("no such room") from exc
        closed = request.query_params.get("closed") in ("1", "true", "yes")
        tasks = call_service(selectors.tasks_for_tab, request.user, tab=tab, room_id=room_id, include_closed=closed)
        return Response([selectors.task_payload(t) for t in tasks[:LIST_LIMIT]])

    @extend_schema(request=TaskCreateInputSerializer, responses={201: TaskOut})
    def post(self, request):
        data = self.TaskCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        task = call_service(
            services.task_create, title=values["title"], description=values.get("description", ""),
            owner=_member(values.get("owner")), due_date=values.get("due_date"),
            room=_visible_room(request.user, values.get("room")), actor=request.user,
        )
        return Response(selectors.task_payload(task), status=status.HTTP_201_CREATED)


class TaskDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    class TaskUpdateInputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(required=False, allow_blank=True, max_length=10000)
        owner = serializers.IntegerField(required=False, allow_null=True)
        due_date = serializers.DateField(required=False, allow_null=True)
        status = serializers.ChoiceField(choices=Task.Status.choices, required=False)
        room = serializers.IntegerField(required=False, allow_null=True)
        reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)

    @extend_schema(responses=TaskOut)
    def get(self, request, task_id: int):
        return Response(selectors.task_payload(call_service(selectors.task_for_user, request.user, task_id)))

    @extend_schema(request=TaskUpdateInputSerializer, responses=TaskOut)
    def patch(self, request, task_id: int):
        task = call_service(selectors.task_for_user, request.user, task_id)
        data = self.TaskUpdateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        reason = changes.pop("reason", "")
        if "owner" in changes:
            changes["owner"] = _member(changes["owner"])
        if "room" in changes:
            changes["room"] = _visible_room(request.user, changes["room"])
        task = call_service(services.task_update, task, actor=request.user, reason=reason, **changes)
        return Response(selectors.task_payload(selectors.task_for_user(request.user, task.pk)))


class TaskHistoryApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=AuditEntryOut(many=True))
    def get(self, request, task_id: int):
        task = call_service(selectors.task_for_user, request.user, task_id)
        return Response([selectors.audit_payload(e) for e in selectors.audit_trail("task", task.pk)])


class TicketListApi(APIView):
    """Members report problems; facilities (admins) see every ticket, members those of rooms they may enter."""

    permission_classes = [IsAuthenticated]

    class TicketReportInputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Ticket.Kind.choices)
        room = serializers.IntegerField(required=False, allow_null=True)
        severity = serializers.ChoiceField(choices=Ticket.Severity.choices, default=Ticket.Severity.MEDIUM)
        title = serializers.CharField(max_length=200)
        detail = serializers.CharField(required=False, allow_blank=True, max_length=10000)

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=Ticket.Status.values)],
                   responses=TicketOut(many=True))
    def get(self, request):
        tickets = selectors.tickets_visible_to(request.user)
        wanted = request.query_params.get("status")
        if wanted:
            tickets = tickets.filter(status=wanted)
        return Response([selectors.ticket_payload(t) for t in tickets.order_by("-created_at")[:LIST_LIMIT]])

    @extend_schema(request=TicketReportInputSerializer, responses={201: TicketOut})
    def post(self, request):
        data = self.TicketReportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        label = request.user.get_username()
        ticket, _ = call_service(
            services.ticket_open, kind=values["kind"], room=_visible_room(request.user, values.get("room")),
            severity=values["severity"], title=values["title"], detail=values.get("detail", ""),
            source=f"member:{label}", dedupe_key="", actor_label=label, actor=request.user,
        )
        return Response(selectors.ticket_payload(ticket), status=status.HTTP_201_CREATED)


class TicketDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    class TicketUpdateInputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
        severity = serializers.ChoiceField(choices=Ticket.Severity.choices, required=False)
        title = serializers.CharField(max_length=200, required=False)
        detail = serializers.CharField(required=False, allow_blank=True, max_length=10000)
        reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)

    @extend_schema(responses=TicketOut)
    def get(self, request, ticket_id: int):
        return Response(selectors.ticket_payload(call_service(selectors.ticket_for_user, request.user, ticket_id)))

    @extend_schema(request=TicketUpdateInputSerializer, responses=TicketOut)
    def patch(self, request, ticket_id: int):
        ticket = call_service(selectors.ticket_for_user, request.user, ticket_id)
        data = self.TicketUpdateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        reason = changes.pop("reason", "")
        ticket = call_service(services.ticket_update, ticket, actor=request.user, reason=reason, **changes)
        return Response(selectors.ticket_payload(ticket))


class DigestListApi(APIView):
    """A member's own digests, newest first."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=DigestOut(many=True))
    def get(self, request):
        return Response([selectors.digest_payload(d) for d in selectors.digests_for(request.user)])


class DigestDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=DigestOut)
    def get(self, request, date: str):
        try:
            day = dt.date.fromisoformat(date)
        except ValueError as exc:
            raise NotFound("no digest for that day") from exc
        return Response(selectors.digest_payload(call_service(selectors.digest_for_user, request.user, day)))


class CalendarFeedApi(APIView):
    """Upload your calendar (ICS text), or, as an admin, set up a member's http(s) feed."""

    permission_classes = [IsAuthenticated]

    class CalendarFeedInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120, required=False, allow_blank=True)
        content = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        url = serializers.URLField(max_length=500, required=False, allow_blank=True)
        user = serializers.IntegerField(required=False, help_text="admins only: whose calendar")

    class CalendarFeedOutSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        user = serializers.IntegerField(source="user_id")
        name = serializers.CharField()
        url = serializers.CharField()
        last_imported_at = serializers.DateTimeField(allow_null=True)
        last_error = serializers.CharField()
        busy_intervals = serializers.IntegerField()

    @extend_schema(responses=CalendarFeedOutSerializer(many=True))
    def get(self, request):
        return Response(self.CalendarFeedOutSerializer(selectors.calendar_feeds_for(request.user), many=True).data)

    @extend_schema(request=CalendarFeedInputSerializer, responses={201: CalendarFeedOutSerializer})
    def post(self, request):
        data = self.CalendarFeedInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        owner = request.user if values.get("user") in (None, request.user.pk) else _member(values["user"])
        feed = call_service(services.calendar_feed_add, user=owner, actor=request.user, name=values.get("name", ""),
                    url=values.get("url", ""), content=values.get("content", ""))
        feed = selectors.calendar_feeds_for(owner).get(pk=feed.pk)
        return Response(self.CalendarFeedOutSerializer(feed).data, status=status.HTTP_201_CREATED)
