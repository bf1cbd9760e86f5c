"""Output shapes of meetings and transcripts (REST and the office socket's meeting events)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from office.serializers import IsoDateTimeField, RoundedNumberField
from rooms.serializers import DisplayNameField, PersonOut


class ParticipantOut(serializers.Serializer):
    user = serializers.IntegerField(source="user_id")
    name = DisplayNameField(source="user")
    transcribed = serializers.SerializerMethodField()  # stored the other way round, as opted_out

    def get_transcribed(self, participant) -> bool:
        return not participant.opted_out


class MeetingStateOut(serializers.Serializer):
    """A meeting as the people in its room see it: whether it is being transcribed, and who is."""

    id = serializers.IntegerField()
    room = serializers.IntegerField(source="room_id")
    started_at = IsoDateTimeField()
    ended_at = IsoDateTimeField(allow_null=True)
    # Method fields: `recording` is derived (running = not ended); participants go in joining order
    # with their names loaded in one query.
    recording = serializers.SerializerMethodField()
    last_seq = serializers.IntegerField()
    participants = serializers.SerializerMethodField()

    def get_recording(self, meeting) -> bool:
        return meeting.ended_at is None

    @extend_schema_field(ParticipantOut(many=True))
    def get_participants(self, meeting) -> list[dict]:
        participants = meeting.participants.select_related("user__profile").order_by("joined_at")
        return list(ParticipantOut(participants, many=True).data)


class MeetingDetailOut(MeetingStateOut):
    room_name = serializers.CharField(source="room.name")


class MeetingListItemOut(serializers.Serializer):
    id = serializers.IntegerField()
    room = serializers.IntegerField(source="room_id")
    room_name = serializers.CharField(source="room.name")
    started_at = IsoDateTimeField()
    ended_at = IsoDateTimeField(allow_null=True)
    segments = serializers.IntegerField(source="last_seq")


class SegmentOut(serializers.Serializer):
    """One stored transcript turn."""

    meeting = serializers.IntegerField(source="meeting_id")
    room = serializers.IntegerField(source="room_id")
    seq = serializers.IntegerField()
    speaker = PersonOut()
    text = serializers.CharField()
    start_ms = serializers.IntegerField()
    end_ms = serializers.IntegerField()
    spoken_at = IsoDateTimeField()
    confidence = RoundedNumberField(digits=3)
    model_id = serializers.CharField()
