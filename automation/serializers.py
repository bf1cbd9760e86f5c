"""Output shapes of the work state: tasks, tickets, reminders, digests, audit entries and inbox
notifications. The same `.data` goes to REST, the live events and the audit snapshots."""

from __future__ import annotations

from rest_framework import serializers

from office.serializers import IsoDateField, IsoDateTimeField, JsonObjectField
from rooms.serializers import DisplayNameField


class TaskOut(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.IntegerField(source="owner_id", allow_null=True)
    owner_name = DisplayNameField(source="owner", allow_null=True)
    due_date = IsoDateField(allow_null=True)
    status = serializers.CharField()
    room = serializers.IntegerField(source="room_id", allow_null=True)
    room_name = serializers.CharField(source="room.name", allow_null=True)
    source_kind = serializers.CharField()
    source_id = serializers.CharField()
    provenance = JsonObjectField()
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True)
    created_by_label = serializers.CharField()
    created_at = IsoDateTimeField()
    updated_at = IsoDateTimeField()


class TicketOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    room = serializers.IntegerField(source="room_id", allow_null=True)
    room_name = serializers.CharField(source="room.name", allow_null=True)
    severity = serializers.CharField()
    title = serializers.CharField()
    detail = serializers.CharField()
    status = serializers.CharField()
    dedupe_key = serializers.CharField()
    source = serializers.CharField()
    created_at = IsoDateTimeField()
    updated_at = IsoDateTimeField()
    resolved_at = IsoDateTimeField(allow_null=True)


class ReminderOut(serializers.Serializer):
    id = serializers.IntegerField()
    task = serializers.IntegerField(source="task_id")
    user = serializers.IntegerField(source="user_id")
    remind_at = IsoDateTimeField()
    sent_at = IsoDateTimeField(allow_null=True)
    status = serializers.CharField()


class DigestOut(serializers.Serializer):
    id = serializers.IntegerField()
    date = IsoDateField()
    content = JsonObjectField()
    text = serializers.CharField()
    created_at = IsoDateTimeField()
    sent_at = IsoDateTimeField(allow_null=True)


class AuditEntryOut(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.CharField()
    actor = serializers.IntegerField(source="actor_id", allow_null=True)
    actor_label = serializers.CharField()
    reason = serializers.CharField()
    before = JsonObjectField()
    after = JsonObjectField()
    at = IsoDateTimeField()


class NotificationOut(serializers.Serializer):
    """An inbox notification (automation.workflows)."""

    id = serializers.IntegerField(source="pk")
    title = serializers.CharField()
    body = serializers.CharField()
    url = serializers.CharField()
    created_at = IsoDateTimeField()
    read = serializers.SerializerMethodField()  # stored as the time it was read

    def get_read(self, notification) -> bool:
        return notification.read_at is not None
