"""What the office socket sends about the room's assistant: frame `type` -> the serializer of its
other fields (see rooms/events.py). Stored before they are sent; REST holds the full state."""

from __future__ import annotations

from rest_framework import serializers

from .serializers import ActionItemOut, SummaryOut


class AssistantSummaryEvent(serializers.Serializer):
    """To people standing in the meeting's room, on each rolling summary and the final one."""

    summary = SummaryOut()


class AssistantActionItemEvent(serializers.Serializer):
    """To people standing in the room, on each proposal and each decision."""

    item = ActionItemOut()


CLIENT_EVENTS = {
    "assistant.summary": AssistantSummaryEvent,
    "assistant.action_item": AssistantActionItemEvent,
}
