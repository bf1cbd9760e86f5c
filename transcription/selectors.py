"""Reads for meetings and transcripts (access follows the room's)."""

from __future__ import annotations

from django.db.models import Q

from rooms.selectors import rooms_visible_to
from rooms.services import room_occupant_ids

from .models import Meeting, MeetingParticipant, TranscriptSegment
from .serializers import MeetingStateOut, SegmentOut


def open_meeting_for_room(room_id: int) -> Meeting | None:
    return Meeting.objects.filter(room_id=room_id, ended_at__isnull=True).first()


def transcribed_speakers_in_room(room_id: int) -> tuple[int | None, set[int]]:
    """The room's open meeting and the people standing in it who consent to transcription now."""
    meeting = open_meeting_for_room(room_id)
    if meeting is None:
        return None, set()
    consenting = set(MeetingParticipant.objects.filter(meeting=meeting, opted_out=False).values_list("user_id", flat=True))
    return meeting.pk, consenting & room_occupant_ids(room_id)


def meeting_state_payload(meeting: Meeting) -> dict:
    return dict(MeetingStateOut(meeting).data)


def segment_payload(segment: TranscriptSegment) -> dict:
    return dict(SegmentOut(segment).data)


def meetings_visible_to(user):
    return Meeting.objects.filter(room__in=rooms_visible_to(user)).select_related("room")


def meeting_for_user(user, meeting_id: int) -> Meeting | None:
    return meetings_visible_to(user).filter(pk=meeting_id).first()


def meeting_segments(meeting: Meeting, *, after_seq: int = 0, query: str = "", limit: int = 500):
    segments = TranscriptSegment.objects.filter(meeting=meeting, seq__gt=after_seq).select_related("speaker__profile")
    if query:
        segments = segments.filter(Q(text__icontains=query))
    return list(segments.order_by("seq")[:limit])


def consent_changes_of(meeting: Meeting):
    """The meeting's consent record, oldest first, with who changed it."""
    return meeting.consent_changes.select_related("user__profile")


def speaker_transcribed_until(meeting_id: int, user_id: int) -> float | None:
    """Wall-clock time (epoch seconds) where the speaker's last stored segment in the meeting ends.

    A worker that takes over a stream skips the audio before it: that part is stored already.
    """
    last = (TranscriptSegment.objects.filter(meeting_id=meeting_id, speaker_id=user_id)
            .order_by("-spoken_at").values("spoken_at", "start_ms", "end_ms").first())
    if last is None:
        return None
    return last["spoken_at"].timestamp() + (last["end_ms"] - last["start_ms"]) / 1000
