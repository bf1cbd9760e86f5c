"""REST for the run history and connector checks (admins), the approvals inbox and the notification
inbox (members).
Views parse, authorise and call one service or selector."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from automation.serializers import NotificationOut
from office.api import call_service

from . import selectors, services
from .models import Approval, WorkflowRun
from .serializers import ApprovalOut, ConnectorCheckOut, RunOut, StepOut, WorkflowEventOut


class RunListApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses=RunOut(many=True))
    def get(self, request):
        status = request.query_params.get("status") or None
        if status and status not in WorkflowRun.Status.values:
            raise ValidationError({"status": [f"one of {', '.join(WorkflowRun.Status.values)}"]})
        runs = selectors.runs_list(status=status, name=request.query_params.get("name") or None)
        return Response(RunOut(runs, many=True).data)


class RunDetailApi(APIView):
    permission_classes = [IsAdminUser]

    class OutputSerializer(RunOut):
        steps = StepOut(many=True)
        events = WorkflowEventOut(many=True)
        approvals = ApprovalOut(many=True)
        actions = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request, run_id: int):
        run = call_service(selectors.run_get, run_id)
        detail = selectors.run_detail(run)
        data = RunOut(run).data
        data.update(
            steps=StepOut(detail["steps"], many=True).data,
            events=WorkflowEventOut(detail["events"], many=True).data,
            approvals=ApprovalOut(detail["approvals"], many=True).data,
            actions=detail["actions"],
        )
        return Response(data)


class RunActionApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses=RunOut)
    def post(self, request, run_id: int, action: str):
        if action not in services.RUN_ACTIONS:
            raise NotFound(f"no action {action!r}; use retry, skip or cancel")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = call_service(selectors.run_get, run_id)
        run = call_service(services.run_act, run, request.user, action=action, note=data.validated_data.get("note", ""))
        run.refresh_from_db()
        return Response(RunOut(run).data)


class ConnectorCheckListApi(APIView):
    """The newest synthetic check of every outbound connector target, failing ones first."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=ConnectorCheckOut(many=True))
    def get(self, request):
        return Response(ConnectorCheckOut(selectors.connector_checks_latest(), many=True).data)


class ApprovalListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=ApprovalOut(many=True))
    def get(self, request):
        decision = request.query_params.get("decision", Approval.Decision.PENDING)
        if decision == "all":
            decision = None
        elif decision not in Approval.Decision.values:
            raise ValidationError({"decision": [f"one of all, {', '.join(Approval.Decision.values)}"]})
        return Response(ApprovalOut(selectors.approvals_for(request.user, decision=decision), many=True).data)


class ApprovalDecideApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        approve = serializers.BooleanField()
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses=ApprovalOut)
    def post(self, request, approval_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = call_service(selectors.approval_get_for, request.user, approval_id)
        approval = call_service(services.approval_decide, approval, request.user, data.validated_data["approve"],
                        data.validated_data.get("note", ""))
        return Response(ApprovalOut(approval).data)


class NotificationListApi(APIView):
    permission_classes = [IsAuthenticated]

    class OutputSerializer(serializers.Serializer):
        unread = serializers.IntegerField()
        notifications = NotificationOut(many=True)

    class FilterSerializer(serializers.Serializer):
        unread = serializers.BooleanField(required=False, default=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=50, default=50)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response({
            "unread": selectors.notifications_unread_count(request.user),
            "notifications": NotificationOut(
                selectors.notifications_for(request.user, unread_only=filters.validated_data["unread"],
                                            limit=filters.validated_data["limit"]), many=True).data,
        })


class NotificationReadApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=500)
        all = serializers.BooleanField(required=False, default=False)

        def validate(self, attrs):
            if not attrs.get("all") and not attrs.get("ids"):
                raise serializers.ValidationError("give ids, or all: true")
            return attrs

    class OutputSerializer(serializers.Serializer):
        marked = serializers.IntegerField()
        unread = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = None if data.validated_data.get("all") else data.validated_data["ids"]
        marked = services.notification_mark_read(user=request.user, notification_ids=ids)
        return Response({"marked": marked, "unread": selectors.notifications_unread_count(request.user)})
