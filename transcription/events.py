"""What the office socket sends about meetings, captions and proximity voice: frame `type` -> the
serializer of its other fields (see rooms/events.py)."""

from __future__ import annotations

from rest_framework import serializers

from rooms.serializers import PersonOut

from .serializers import MeetingStateOut, SegmentOut


class MeetingStateEvent(serializers.Serializer):
    """When you enter a room with a meeting, and whenever the meeting changes (consent, people, its end)."""

    meeting = MeetingStateOut()


class MeetingLeftEvent(serializers.Serializer):
    """You walked out of the meeting's room (your microphone was detached)."""

    meeting = serializers.IntegerField()


class RtcAnswerEvent(serializers.Serializer):
    """The server peer's answer to your `rtc.offer`."""

    sdp = serializers.CharField()
    meeting = serializers.IntegerField()


class MeetingAudioViaSfuEvent(serializers.Serializer):
    """While `active`, the server takes every consenting speaker's microphone in this room from the SFU
    (docs/adr/0025): do not upload it with `rtc.offer` (refused with `audio_via_sfu`). When it is no
    longer active, upload again. Sent to the room when it changes, and to you when you enter it."""

    room = serializers.IntegerField(help_text="the office room")
    active = serializers.BooleanField()


class CaptionPartialEvent(serializers.Serializer):
    """The current guess for what a speaker is saying; replaces that speaker's previous partial."""

    meeting = serializers.IntegerField()
    speaker = PersonOut()
    text = serializers.CharField()


class CaptionFinalEvent(serializers.Serializer):
    """A transcript turn, stored before it is sent; replaces that speaker's partial."""

    segment = SegmentOut()


class TranscriptionStatusEvent(serializers.Serializer):
    """The transcriber fell behind live audio (or caught up)."""

    meeting = serializers.IntegerField()
    speaker = serializers.IntegerField(help_text="user id")
    lagging = serializers.BooleanField()
    lag_s = serializers.FloatField()


class VoiceSignalEvent(serializers.Serializer):
    """WebRTC signalling from someone who may hear you (relayed as they sent it)."""

    def get_fields(self):
        # `from` is a Python keyword: declared here rather than as a class attribute.
        return {"from": serializers.IntegerField(help_text="user id"), "signal": serializers.JSONField()}


MEETING_EVENTS = {
    "meeting.state": MeetingStateEvent,
    "meeting.left": MeetingLeftEvent,
    "rtc.answer": RtcAnswerEvent,
    "meeting.audio_via_sfu": MeetingAudioViaSfuEvent,
    "caption.partial": CaptionPartialEvent,
    "caption.final": CaptionFinalEvent,
    "transcription.status": TranscriptionStatusEvent,
}
VOICE_EVENTS = {"voice.signal": VoiceSignalEvent}
CLIENT_EVENTS = {**MEETING_EVENTS, **VOICE_EVENTS}
