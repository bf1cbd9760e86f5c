"""Writes for meetings and transcripts: meeting lifecycle from room presence, consent, segments."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from office.events import room_group, send_event_on_commit
from rooms import services as room_services
from rooms.models import Room

from . import selectors
from .models import ConsentChange, Meeting, MeetingParticipant, TranscriptSegment

logger = logging.getLogger(__name__)


def _announce_meeting_state(meeting: Meeting) -> None:
    payload = selectors.meeting_state_payload(Meeting.objects.get(pk=meeting.pk))
    send_event_on_commit(room_group(meeting.room_id), {"type": "meeting.state", "meeting": payload})


def meetings_follow_presence(*, user, left_room_id: int | None, entered_room_id: int | None) -> None:
    """Start, join and end meetings as members enter and leave rooms (inside the visit's transaction)."""
    if entered_room_id is not None:
        room = Room.objects.filter(pk=entered_room_id, assistant_enabled=True).select_for_update().first()
        if room is not None:
            meeting = Meeting.objects.filter(room=room, ended_at__isnull=True).first()
            if meeting is None:
                meeting = Meeting.objects.create(room=room)
                logger.info("meeting %s started in room %s", meeting.pk, room.pk)
            MeetingParticipant.objects.get_or_create(meeting=meeting, user=user)
            _announce_meeting_state(meeting)
    if left_room_id is not None:
        meeting = Meeting.objects.filter(room_id=left_room_id, ended_at__isnull=True).select_for_update().first()
        if meeting is not None:
            if not room_services.room_occupant_ids(left_room_id):
                meeting_end(meeting=meeting)
            else:
                _announce_meeting_state(meeting)


def meeting_end(*, meeting: Meeting) -> Meeting:
    """End a meeting (the last person left, or someone ended it); its transcript stays."""
    with transaction.atomic():
        updated = Meeting.objects.filter(pk=meeting.pk, ended_at__isnull=True).update(ended_at=timezone.now())
        meeting.refresh_from_db()
        if updated:
            logger.info("meeting %s ended", meeting.pk)
            _announce_meeting_state(meeting)
    return meeting


def meeting_set_consent(*, user, meeting_id: int, transcribe: bool) -> MeetingParticipant:
    """A participant opts out of (or back into) transcription; everyone in the room is told, and each
    change is recorded with who and when (`ConsentChange`, listed on the meeting page)."""
    with transaction.atomic():
        participant = MeetingParticipant.objects.select_for_update().filter(
            meeting_id=meeting_id, user=user, meeting__ended_at__isnull=True
        ).first()
        if participant is None:
            raise ValidationError("you are not in this meeting")
        if participant.opted_out != (not transcribe):
            participant.opted_out = not transcribe
            participant.save(update_fields=["opted_out"])
            ConsentChange.objects.create(meeting_id=meeting_id, user=user, transcribe=transcribe)
            logger.info("meeting %s: %s %s transcription", meeting_id, user.get_username(),
                        "resumed" if transcribe else "opted out of")
        _announce_meeting_state(participant.meeting)
    return participant


def transcript_segment_add(
    *,
    meeting_id: int,
    speaker_id: int,
    start_ms: int,
    end_ms: int,
    spoken_at,
    text: str,
    words: list,
    confidence: float,
    model_id: str,
) -> TranscriptSegment | None:
    """Store a final segment with the meeting's next seq, then announce it. Nothing is stored for a
    participant who opted out (their audio should never reach the worker; this is the last guard)."""
    text = text.strip()
    if not text:
        return None
    with transaction.atomic():
        participant = MeetingParticipant.objects.filter(meeting_id=meeting_id, user_id=speaker_id).first()
        if participant is None or participant.opted_out:
            logger.warning("dropped a segment of user %s in meeting %s: not a consenting participant",
                           speaker_id, meeting_id)
            return None
        Meeting.objects.filter(pk=meeting_id).update(last_seq=F("last_seq") + 1)
        meeting = Meeting.objects.get(pk=meeting_id)
        segment = TranscriptSegment.objects.create(
            meeting=meeting, room_id=meeting.room_id, speaker_id=speaker_id, seq=meeting.last_seq,
            start_ms=start_ms, end_ms=end_ms, spoken_at=spoken_at, text=text, words=words,
            confidence=confidence, model_id=model_id,
        )
        send_event_on_commit(room_group(meeting.room_id), {
            "type": "caption.final", "segment": selectors.segment_payload(segment),
        })
    return segment
