"""Reads for meetings and transcripts (access follows the room's)."""

from __future__ import annotations

from django.db.models import Q

from rooms.selectors import display_name, rooms_visible_to

from .models import Meeting, TranscriptSegment


def open_meeting_for_room(room_id: int) -> Meeting | None:
    return Meeting.objects.filter(room_id=room_id, ended_at__isnull=True).first()


def meeting_state_payload(meeting: Meeting) -> dict:
    participants = meeting.participants.select_related("user__profile").order_by("joined_at")
    return {
        "id": meeting.id,
        "room": meeting.room_id,
        "started_at": meeting.started_at.isoformat(),
        "ended_at": meeting.ended_at.isoformat() if meeting.ended_at else None,
        "recording": meeting.ended_at is None,
        "last_seq": meeting.last_seq,
        "participants": [
            {"user": p.user_id, "name": display_name(p.user), "transcribed": not p.opted_out} for p in participants
        ],
    }


def segment_payload(segment: TranscriptSegment) -> dict:
    return {
        "meeting": segment.meeting_id,
        "room": segment.room_id,
        "seq": segment.seq,
        "speaker": {"id": segment.speaker_id, "name": display_name(segment.speaker)},
        "text": segment.text,
        "start_ms": segment.start_ms,
        "end_ms": segment.end_ms,
        "spoken_at": segment.spoken_at.isoformat(),
        "confidence": round(segment.confidence, 3),
        "model_id": segment.model_id,
    }


def meetings_visible_to(user):
    return Meeting.objects.filter(room__in=rooms_visible_to(user)).select_related("room")


def meeting_for_user(user, meeting_id: int) -> Meeting | None:
    return meetings_visible_to(user).filter(pk=meeting_id).first()


def meeting_segments(meeting: Meeting, *, after_seq: int = 0, query: str = "", limit: int = 500):
    segments = TranscriptSegment.objects.filter(meeting=meeting, seq__gt=after_seq).select_related("speaker__profile")
    if query:
        segments = segments.filter(Q(text__icontains=query))
    return list(segments.order_by("seq")[:limit])
