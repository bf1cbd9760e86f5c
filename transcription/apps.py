from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "transcription"

    def ready(self) -> None:
        from django.conf import settings

        from rooms import services as room_services

        from . import services

        room_services.room_presence_subscribe(services.on_room_presence_changed)
        if settings.OFFICE_RTC_HOST_ADDRESSES:
            # aioice deliberately leaves 127.0.0.1 out of its host candidates; use the configured set.
            import aioice.ice

            addresses = list(settings.OFFICE_RTC_HOST_ADDRESSES)
            aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: addresses
