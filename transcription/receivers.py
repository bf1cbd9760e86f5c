"""Signal receivers: thin adapters that call one service (connected in `TranscriptionConfig.ready()`)."""

from __future__ import annotations

from django.db import transaction

from . import outcomes, personal_data, services


def meeting_presence_follow(sender, *, user, left_room_id, entered_room_id, **kwargs) -> None:
    """Inside the room visit's transaction: start, join and end meetings as people come and go."""
    services.meetings_follow_presence(user=user, left_room_id=left_room_id, entered_room_id=entered_room_id)


def sfu_listening_presence_follow(sender, *, user, left_room_id, entered_room_id, **kwargs) -> None:
    """Once the visit commits, the transcriber follows the entered room through the SFU when it goes
    there (transcription/sfu_listener.py); it notices on its own when people leave."""
    if entered_room_id is not None:
        from .sfu_listener import sfu_listening_follow

        transaction.on_commit(lambda: sfu_listening_follow(room_id=entered_room_id, entered_user_id=user.id))


def transcripts_expire(sender, *, now, **kwargs) -> dict:
    """The daily retention sweep: transcripts and waiting audio past their room's retention."""
    return personal_data.transcripts_expire(now=now)


def person_transcripts_erase(sender, *, user, **kwargs) -> dict:
    """Inside the erasure's transaction: the person's words, participation and audio."""
    return personal_data.person_transcripts_erase(user=user)


def person_transcripts_export(sender, *, user, **kwargs) -> dict:
    """The person's meetings, consent changes and words, for their export."""
    return personal_data.person_transcripts_export(user=user)


def meeting_outcomes(sender, *, scope, **kwargs) -> list[dict]:
    """The outcome dashboard's meeting hours (rooms/outcomes.py)."""
    return outcomes.meeting_outcome_sections(scope)
