"""What the sockets send about sensors: frame `type` -> the serializer of its other fields (see
rooms/events.py). `CLIENT_EVENTS` come on the office socket, `SENSORS_SOCKET_EVENTS` on the sensors
page's socket (/ws/iot/sensors/)."""

from __future__ import annotations

from rest_framework import serializers

from .serializers import AgendaOut, OccupancyOut, ReadingOut, RuleFiredOut


class RoomOccupancyEvent(OccupancyOut):
    """To everyone on the map, after an occupancy reading; the snapshot is `GET /api/iot/occupancy/?map=<id>`."""


class AgendaChangedEvent(serializers.Serializer):
    """To the people in the room, after its booked meeting's agenda was drafted (and posted to the
    chat) or edited; `GET /api/rooms/<id>/agenda/` is the state, `PUT /api/agendas/<id>/` the edit."""

    agenda = AgendaOut()


class SensorsHelloEvent(serializers.Serializer):
    """The socket is subscribed."""


class SensorReadingEvent(serializers.Serializer):
    """A reading of a sensor you may see, sent after it is stored."""

    sensor = serializers.IntegerField(help_text="id")
    reading = ReadingOut()


class RuleFiredEvent(RuleFiredOut):
    """A rule fired once for an episode (facilities ticket, room suggestion, or record only)."""


class SensorsPongEvent(serializers.Serializer):
    """The answer to exactly `{"type":"ping"}`."""


class SensorsErrorEvent(serializers.Serializer):
    """Not signed in: the socket then closes with 4401."""

    code = serializers.CharField(help_text="not_signed_in")
    fatal = serializers.BooleanField(help_text="true")


CLIENT_EVENTS = {"room.occupancy": RoomOccupancyEvent, "agenda.changed": AgendaChangedEvent}

SENSORS_SOCKET_EVENTS = {
    "hello": SensorsHelloEvent,
    "sensor.reading": SensorReadingEvent,
    "rule.fired": RuleFiredEvent,
    "pong": SensorsPongEvent,
    "error": SensorsErrorEvent,
}
