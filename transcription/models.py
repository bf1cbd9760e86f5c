"""Meetings in assistant rooms and their transcripts.

A meeting starts when the first person enters a room with the assistant on and ends when the last
one leaves. Each final transcript segment gets the meeting's next sequence number in the same
transaction that stores it, so captions can be resumed and replayed like chat.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Q


class Meeting(models.Model):
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="meetings")
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room"], condition=Q(ended_at__isnull=True), name="one_open_meeting_per_room")
        ]
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Meeting in {self.room} at {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class MeetingParticipant(models.Model):
    """Everyone who was in the room during the meeting, and whether they agreed to be transcribed."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="meeting_participations")
    joined_at = models.DateTimeField(auto_now_add=True)
    opted_out = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["meeting", "user"], name="meeting_participant_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.meeting}"


class ConsentChange(models.Model):
    """Who stopped or resumed transcription of their voice in a meeting, and when (kept with the
    meeting: the record of what people agreed to)."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="consent_changes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    transcribe = models.BooleanField(help_text="true: agreed to be transcribed; false: opted out")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.user} {'agreed' if self.transcribe else 'opted out'} in {self.meeting} at {self.at:%H:%M:%S}"


class TranscriptSegment(models.Model):
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="segments")
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="transcript_segments")
    speaker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transcript_segments")
    seq = models.BigIntegerField()
    start_ms = models.BigIntegerField(help_text="from the start of the speaker's audio stream")
    end_ms = models.BigIntegerField()
    spoken_at = models.DateTimeField(help_text="wall-clock time the phrase started")
    text = models.TextField()
    words = models.JSONField(default=list, blank=True, help_text="[[word, start_ms, end_ms, probability], ...]")
    confidence = models.FloatField()
    model_id = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)
    # Words, for the meetings archive's search (ranked, highlighted); kept by PostgreSQL itself.
    search = models.GeneratedField(expression=SearchVector("text", config="english"), output_field=SearchVectorField(),
                                   db_persist=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["meeting", "seq"], name="transcript_segment_seq_unique")]
        indexes = [models.Index(fields=["room", "-created_at"]),
                   GinIndex(fields=["search"], name="transcript_segment_search_gin"),
                   models.Index(fields=["room", "spoken_at"], name="transcript_segment_room_time")]
        ordering = ["meeting_id", "seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.text[:40]}"
