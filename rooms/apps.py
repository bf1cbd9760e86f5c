from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"

    def ready(self) -> None:
        from .sfu import sfu_presence_follow
        from .signals import room_presence_changed

        # Meeting rooms move to the SFU, and people are granted and revoked, as visits change (rooms/sfu.py).
        room_presence_changed.connect(sfu_presence_follow, dispatch_uid="rooms.sfu")
