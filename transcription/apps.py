from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "transcription"

    def ready(self) -> None:
        from django.conf import settings

        from rooms.signals import room_presence_changed

        from . import receivers

        # Meetings start, gain people and end as members enter and leave rooms (docs/adr/0013).
        room_presence_changed.connect(receivers.meeting_presence_follow, dispatch_uid="transcription.meetings")
        if settings.OFFICE_RTC_HOST_ADDRESSES:
            # aioice deliberately leaves 127.0.0.1 out of its host candidates; use the configured set.
            import aioice.ice

            addresses = list(settings.OFFICE_RTC_HOST_ADDRESSES)
            aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: addresses
