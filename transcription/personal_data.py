"""Retention, erasure and export of what transcription holds: transcript segments, meeting
participation and consent, and the audio waiting in Redis (run by `rooms.personal_data`)."""

from __future__ import annotations

import logging
from datetime import datetime

import redis
from django.db import transaction

from office.redis_client import redis_client
from rooms.models import display_name
from rooms.selectors import expired_records_filter

from .audio_bus import STREAMS_KEY, owner_key, parse_stream_key
from .models import ConsentChange, Meeting, MeetingParticipant, TranscriptSegment

logger = logging.getLogger(__name__)


def _audio_stream_keys() -> list[str]:
    """Every audio stream in Redis, listed or not (a crash can leave one out of the set)."""
    keys = {k.decode() for k in redis_client().scan_iter(match="office:audio:*:*", count=500)}
    keys |= {k.decode() for k in redis_client().smembers(STREAMS_KEY)}
    return sorted(k for k in keys if k.count(":") == 3 and all(p.isdigit() for p in k.split(":")[2:]))


def _audio_streams_delete(select) -> int:
    """Delete the audio streams whose (meeting id, user id) `select` accepts, with their claims."""
    try:
        doomed = [key for key in _audio_stream_keys() if select(*parse_stream_key(key))]
        if doomed:
            pipe = redis_client().pipeline()
            for key in doomed:
                pipe.delete(key, owner_key(key)).srem(STREAMS_KEY, key)
            pipe.execute()
    except redis.RedisError as exc:
        logger.warning("audio streams not deleted (%s); the next sweep tries again", exc)
        return 0
    return len(doomed)


def transcripts_expire(*, now: datetime) -> dict[str, int]:
    """Segments spoken before their room's transcript retention, and the audio of meetings that
    ended before its audio retention (open meetings keep theirs: it is still being transcribed)."""
    counts = {"transcript_segments": 0, "audio_streams": 0}
    expired = expired_records_filter("transcripts", now=now, time_field="spoken_at")
    if expired is not None:
        with transaction.atomic():
            counts["transcript_segments"], _ = TranscriptSegment.objects.filter(expired).delete()
    expired = expired_records_filter("audio", now=now, time_field="ended_at")
    if expired is not None:
        ended = set(Meeting.objects.filter(expired, ended_at__isnull=False).values_list("pk", flat=True))
        counts["audio_streams"] = _audio_streams_delete(lambda meeting_id, _user_id: meeting_id in ended)
    return counts


def person_transcripts_erase(*, user) -> dict[str, int]:
    """Inside the erasure's transaction: the person's words, their participation and consent record,
    and any audio of theirs still waiting (deleted after commit, so a rollback keeps it)."""
    counts = {}
    counts["transcript_segments"], _ = TranscriptSegment.objects.filter(speaker=user).delete()
    ConsentChange.objects.filter(user=user).delete()
    counts["meeting_participations"], _ = MeetingParticipant.objects.filter(user=user).delete()
    transaction.on_commit(lambda: _audio_streams_delete(lambda _meeting_id, user_id: user_id == user.pk))
    return counts


def person_transcripts_export(*, user) -> dict:
    """The meetings the person was in, their consent changes, and their own words: as rows in the
    JSON and as one text transcript per meeting (other people's words are theirs, not exported)."""
    meetings = []
    files = {}
    participations = MeetingParticipant.objects.filter(user=user).select_related("meeting__room")
    for participation in participations.order_by("meeting__started_at"):
        meeting = participation.meeting
        segments = list(TranscriptSegment.objects.filter(meeting=meeting, speaker=user).order_by("seq"))
        meetings.append({
            "meeting": meeting.pk, "room": meeting.room.name, "started_at": meeting.started_at.isoformat(),
            "ended_at": meeting.ended_at.isoformat() if meeting.ended_at else None,
            "joined_at": participation.joined_at.isoformat(), "opted_out": participation.opted_out,
            "consent_changes": [{"transcribe": c.transcribe, "at": c.at.isoformat()}
                                for c in ConsentChange.objects.filter(meeting=meeting, user=user)],
            "segments": [{"seq": s.seq, "spoken_at": s.spoken_at.isoformat(), "text": s.text} for s in segments],
        })
        if segments:
            header = f"{meeting.room.name}, meeting of {meeting.started_at:%Y-%m-%d %H:%M} UTC ({display_name(user)})\n\n"
            files[f"transcripts/meeting-{meeting.pk}.txt"] = header + "".join(
                f"[{s.spoken_at:%H:%M:%S}] {s.text}\n" for s in segments)
    return {"meetings": meetings, "files": files}
