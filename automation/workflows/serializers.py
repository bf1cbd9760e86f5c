"""Output shapes of workflow runs, their steps, events and approvals, and of the connector checks
(REST and the schema)."""

from __future__ import annotations

from rest_framework import serializers


class RunOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    error = serializers.CharField()
    input = serializers.JSONField()
    started_by = serializers.CharField(source="started_by.username", default=None)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()


class AttemptOut(serializers.Serializer):
    number = serializers.IntegerField()
    kind = serializers.CharField()
    outcome = serializers.CharField()
    error = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()


class StepOut(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    next_retry_at = serializers.DateTimeField()
    last_error = serializers.CharField()
    result = serializers.JSONField()
    attempt_log = AttemptOut(many=True)


class WorkflowEventOut(serializers.Serializer):
    action = serializers.CharField()
    step = serializers.CharField(source="step.name", default=None)
    actor = serializers.CharField(source="actor.username", default=None)
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


class ApprovalOut(serializers.Serializer):
    id = serializers.IntegerField()
    run_id = serializers.IntegerField()
    workflow = serializers.CharField(source="run.name")
    step = serializers.CharField(source="step.name")
    summary = serializers.CharField()
    assignee = serializers.CharField(source="assignee.username", default=None)
    requested_at = serializers.DateTimeField()
    decision = serializers.CharField()
    decided_by = serializers.CharField(source="decided_by.username", default=None)
    decided_at = serializers.DateTimeField()
    note = serializers.CharField()


class ConnectorCheckOut(serializers.Serializer):
    connector = serializers.CharField()
    target = serializers.CharField()
    label = serializers.CharField()
    ok = serializers.BooleanField()
    latency_ms = serializers.FloatField()
    detail = serializers.CharField()
    breaker_state = serializers.CharField(help_text='"open", "half-open", "closed"; "" where the connector has none')
    reason = serializers.CharField()
    checked_at = serializers.DateTimeField()
