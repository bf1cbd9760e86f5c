"""Output shapes of the map, members and chat: one serializer per entity, used by REST, the office
socket and the events other apps send. `.data` is exactly what clients have always received."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from office.serializers import BlankAsNullCharField, IsoDateTimeField, JsonListField

from .models import display_name


class DisplayNameField(serializers.CharField):
    """A member's display name, from the user (their username when they have no profile)."""

    def to_representation(self, user):
        return display_name(user)


class PersonOut(serializers.Serializer):
    """A member as other shapes name them."""

    id = serializers.IntegerField(source="pk")
    name = DisplayNameField(source="*")


class MemberOut(serializers.Serializer):
    """An active member, as the directory lists them."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    name = DisplayNameField(source="*")
    role = serializers.SerializerMethodField(help_text="admin or member")  # from is_staff

    def get_role(self, user) -> str:
        return "admin" if user.is_staff else "member"


class MeOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    color = serializers.CharField()
    status = serializers.CharField(help_text="available, busy or away")
    role = serializers.CharField()


class PresenceOut(serializers.Serializer):
    """Someone on the map, as the socket announces them (positions come in `moves`)."""

    user = serializers.IntegerField()
    name = serializers.CharField()
    color = serializers.CharField()
    status = serializers.CharField(help_text="available, busy or away")
    room = serializers.IntegerField(allow_null=True)


class MapPresenceEntryOut(serializers.Serializer):
    """Someone on the map, as REST lists them."""

    user = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    room = serializers.IntegerField(allow_null=True)
    x = serializers.IntegerField(required=False, help_text="absent inside a private room you are not a member of")
    y = serializers.IntegerField(required=False)


class MapSummaryOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


class MapRoomOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    kind = serializers.CharField(help_text="open, meeting or private")
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    doors = JsonListField(help_text="[[x, y]]")
    capacity = serializers.IntegerField(allow_null=True)
    assistant_enabled = serializers.BooleanField()


class DeskOut(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    owner = serializers.IntegerField(source="owner_id", allow_null=True)


class MapLayoutOut(serializers.Serializer):
    """What a client draws: the grid, rooms with doors, desks."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    # Method fields: the spawn tile is two columns sent as one [x, y] pair, the area-of-interest cell
    # is a setting (not stored with the map), and desks go in id order whatever the model's default.
    spawn = serializers.SerializerMethodField(help_text="[x, y]")
    aoi_cell = serializers.SerializerMethodField()
    rooms = MapRoomOut(many=True)
    desks = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2))
    def get_spawn(self, office_map) -> list[int]:
        return [office_map.spawn_x, office_map.spawn_y]

    def get_aoi_cell(self, office_map) -> int:
        return settings.OFFICE_AOI_CELL_TILES

    @extend_schema_field(DeskOut(many=True))
    def get_desks(self, office_map) -> list[dict]:
        return list(DeskOut(office_map.desks.order_by("id"), many=True).data)


class ChatMessageOut(serializers.Serializer):
    thread = serializers.IntegerField(source="thread_id")
    seq = serializers.IntegerField()
    id = serializers.IntegerField()
    author = PersonOut()
    body = serializers.CharField()
    client_id = BlankAsNullCharField(allow_null=True)
    created_at = IsoDateTimeField()


class ThreadSummaryOut(serializers.Serializer):
    """A conversation as its reader's list shows it."""

    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="room or direct")
    title = serializers.CharField()
    room = serializers.IntegerField(source="room_id", allow_null=True)
    last_seq = serializers.IntegerField()
    unread = serializers.IntegerField()
    with_user = serializers.IntegerField(source="with_user_id", allow_null=True)


class AnnouncementOut(serializers.Serializer):
    """An admin's megaphone message, as the banner, the socket frame and the list show it."""

    id = serializers.IntegerField()
    map = serializers.IntegerField(source="office_map_id")
    room = serializers.IntegerField(source="room_id", allow_null=True, help_text="empty: the whole map")
    room_name = serializers.SerializerMethodField()
    author = PersonOut()
    text = serializers.CharField()
    audio_url = serializers.SerializerMethodField(help_text="the recorded clip, if any")
    created_at = IsoDateTimeField()
    ends_at = IsoDateTimeField(help_text="the banner shows until then")

    def get_room_name(self, announcement) -> str | None:
        return announcement.room.name if announcement.room_id else None

    def get_audio_url(self, announcement) -> str | None:
        if not announcement.audio_type:
            return None
        return f"/api/maps/{announcement.office_map_id}/announcements/{announcement.pk}/audio/"


class RoomKnockOut(serializers.Serializer):
    """A knock on a private room's door, as the room's members are asked about it."""

    id = serializers.IntegerField()
    room = serializers.IntegerField(source="room_id")
    room_name = serializers.CharField(source="room.name")
    map = serializers.IntegerField(source="room.office_map_id")
    user = PersonOut()
    created_at = IsoDateTimeField()
