from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "transcription"

    def ready(self) -> None:
        from django.conf import settings

        from rooms.signals import (
            outcomes_requested,
            person_erasing,
            person_exporting,
            records_expire,
            room_presence_changed,
        )

        from . import receivers

        # Meetings start, gain people and end as members enter and leave rooms (docs/adr/0013).
        room_presence_changed.connect(receivers.meeting_presence_follow, dispatch_uid="transcription.meetings")
        # In an SFU room the transcriber subscribes to each consenting speaker's feed (docs/adr/0025).
        room_presence_changed.connect(receivers.sfu_listening_presence_follow, dispatch_uid="transcription.sfu")
        # Retention and personal data (rooms/personal_data.py): transcripts, consent, audio.
        records_expire.connect(receivers.transcripts_expire, dispatch_uid="transcription.expire")
        person_erasing.connect(receivers.person_transcripts_erase, dispatch_uid="transcription.erase")
        person_exporting.connect(receivers.person_transcripts_export, dispatch_uid="transcription.export")
        # The outcome dashboard's meeting hours (rooms/outcomes.py).
        outcomes_requested.connect(receivers.meeting_outcomes, dispatch_uid="transcription.outcomes")
        if settings.OFFICE_RTC_HOST_ADDRESSES:
            # aioice deliberately leaves 127.0.0.1 out of its host candidates; use the configured set.
            import aioice.ice

            addresses = list(settings.OFFICE_RTC_HOST_ADDRESSES)
            aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: addresses
