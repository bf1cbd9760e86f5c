"""What the office socket sends about the room's assistant: frame `type` -> the serializer of its
other fields (see rooms/events.py). Stored before they are sent; REST holds the full state."""

from __future__ import annotations

from rest_framework import serializers

from .serializers import ActionItemOut, DocumentOut, SummaryOut


class AssistantSummaryEvent(serializers.Serializer):
    """To people standing in the meeting's room, on each rolling summary and the final one."""

    summary = SummaryOut()


class AssistantActionItemEvent(serializers.Serializer):
    """To people standing in the room, on each proposal and each decision."""

    item = ActionItemOut()


class DocumentProgressEvent(serializers.Serializer):
    """To people standing in the room, as a document is stored, read (page by page), indexed, ready or failed."""

    document = DocumentOut()


class DocumentDeletedEvent(serializers.Serializer):
    """To people standing in the room, when a document was deleted with its knowledge."""

    document = serializers.IntegerField()
    room = serializers.IntegerField()


CLIENT_EVENTS = {
    "assistant.summary": AssistantSummaryEvent,
    "assistant.action_item": AssistantActionItemEvent,
    "document.progress": DocumentProgressEvent,
    "document.deleted": DocumentDeletedEvent,
}
