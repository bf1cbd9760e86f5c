"""Output shapes of sensors, readings, rules, bookings and occupancy (REST and the live events)."""

from __future__ import annotations

from rest_framework import serializers

from office.serializers import IsoDateTimeField, JsonObjectField
from rooms.serializers import DisplayNameField, PersonOut

CREDENTIALS_NOTE = "shown once: store these on the device now; rotate them if they are lost"


class SensorOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    device_id = serializers.CharField()
    room = serializers.IntegerField(source="room_id", allow_null=True)
    room_name = serializers.CharField(source="room.name", allow_null=True)
    mqtt_topic = serializers.CharField(source="topic", help_text="its own topic, else the default one")
    mqtt_username = serializers.CharField()
    enabled = serializers.BooleanField()
    last_state = JsonObjectField(allow_null=True)
    last_seen_at = IsoDateTimeField(allow_null=True)


class DeviceCredentialsOut(serializers.Serializer):
    mqtt_username = serializers.CharField()
    mqtt_password = serializers.CharField()
    webhook_secret = serializers.CharField()
    note = serializers.SerializerMethodField()  # the same words for every device

    def get_note(self, creds) -> str:
        return CREDENTIALS_NOTE


class SensorCreatedOut(SensorOut):
    """A new sensor with its credentials, the only time they are readable."""

    credentials = DeviceCredentialsOut()


class ReadingOut(serializers.Serializer):
    id = serializers.IntegerField()
    value = JsonObjectField(help_text="the JSON the device sent, without `id` and `measured_at`")
    received_at = IsoDateTimeField()
    measured_at = IsoDateTimeField(allow_null=True)
    source = serializers.CharField(help_text="mqtt or webhook")


class BookingOut(serializers.Serializer):
    id = serializers.IntegerField()
    room = serializers.IntegerField(source="room_id")
    room_name = serializers.CharField(source="room.name")
    title = serializers.CharField()
    organizer = serializers.IntegerField(source="organizer_id")
    organizer_name = DisplayNameField(source="organizer")
    start = IsoDateTimeField()
    end = IsoDateTimeField()


AGENDA_ITEM_KINDS = ["action_item", "question", "document", "custom"]


class AgendaItemOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AGENDA_ITEM_KINDS)
    text = serializers.CharField()
    ref = serializers.IntegerField(allow_null=True, help_text="the action item, meeting or document id; null for custom")
    url = serializers.CharField(allow_blank=True, help_text="a link inside the office, or empty")


class AgendaOut(serializers.Serializer):
    """A booked meeting's agenda (as `agenda.changed` carries it)."""

    id = serializers.IntegerField()
    room = serializers.IntegerField(source="room_id")
    booking = serializers.IntegerField(source="booking_id")
    title = serializers.CharField()
    starts_at = IsoDateTimeField()
    ends_at = IsoDateTimeField()
    items = AgendaItemOut(many=True)
    version = serializers.IntegerField(help_text="send it back with an edit; a stale one gets a 409")
    organizer = PersonOut(source="booking.organizer")
    edited_by = PersonOut(allow_null=True, help_text="null: the draft as the office made it")
    edited_at = IsoDateTimeField(allow_null=True)
    posted_at = IsoDateTimeField(allow_null=True, help_text="when it was posted to the room's chat")


class AgendaDetailOut(AgendaOut):
    """An agenda as its reader sees it over REST: with whether they may edit it."""

    can_edit = serializers.BooleanField()


class RoomAgendaOut(serializers.Serializer):
    room = serializers.IntegerField()
    agenda = AgendaDetailOut(allow_null=True, help_text="the current or next booked meeting's; null: none drafted yet")


class RuleOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    builtin = serializers.CharField(source="builtin_key", allow_null=True)
    scope = serializers.CharField()
    sensor = serializers.IntegerField(source="sensor_id", allow_null=True)
    room = serializers.IntegerField(source="room_id", allow_null=True)
    sensor_kind = serializers.CharField()
    field = serializers.CharField()
    op = serializers.CharField()
    value = serializers.JSONField(allow_null=True)
    for_seconds = serializers.IntegerField()
    clear_op = serializers.CharField()
    clear_value = serializers.JSONField(allow_null=True)
    clear_for_seconds = serializers.IntegerField()
    action = serializers.CharField()
    severity = serializers.CharField()
    enabled = serializers.BooleanField()


class OccupancyOut(serializers.Serializer):
    """A room's occupancy from its occupancy sensors (several in one room add up)."""

    room = serializers.IntegerField()
    count = serializers.IntegerField(help_text="people counted by the room's occupancy sensors, summed")
    present = serializers.BooleanField()
    at = serializers.CharField(allow_null=True, help_text="time of the latest reading, ISO 8601")


class SuggestionOut(serializers.Serializer):
    """A free-room suggestion (a firing of a suggest-room rule)."""

    id = serializers.IntegerField()
    rule = serializers.CharField(source="rule.name")
    room = serializers.IntegerField(source="room_id", allow_null=True)
    room_name = serializers.CharField(source="room.name", allow_null=True)
    suggested_room = serializers.IntegerField(source="suggested_room_id", allow_null=True)
    suggested_room_name = serializers.CharField(source="suggested_room.name", allow_null=True)
    outcome = serializers.CharField()
    fired_at = IsoDateTimeField()


class RuleFiredOut(serializers.Serializer):
    """A rule fired once for an episode (facilities ticket, room suggestion, or record only)."""

    sensor = serializers.IntegerField(source="sensor_id")
    room = serializers.IntegerField(source="room_id", allow_null=True)
    rule = serializers.CharField(source="rule.name", help_text="name")
    outcome = serializers.CharField()
    suggested_room = serializers.IntegerField(source="suggested_room_id", allow_null=True)
    suggested_room_name = serializers.CharField(source="suggested_room.name", allow_null=True)


class FiringOut(serializers.Serializer):
    """A rule firing, as the sensors page lists it."""

    id = serializers.IntegerField()
    rule = serializers.CharField(source="rule.name")
    sensor = serializers.IntegerField(source="sensor_id")
    room = serializers.IntegerField(source="room_id", allow_null=True)
    room_name = serializers.CharField(source="room.name", allow_null=True)
    outcome = serializers.CharField()
    ticket = serializers.IntegerField(source="ticket_id", allow_null=True)
    fired_at = IsoDateTimeField()
