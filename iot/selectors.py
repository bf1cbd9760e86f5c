"""Reads for sensors, readings, bookings and occupancy; who may see what is decided here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q

from rooms import selectors as room_selectors
from rooms.models import Room

from .models import Agenda, RoomBooking, Rule, RuleFiring, Sensor, SensorReading, default_topic
from .serializers import AgendaOut, BookingOut, FiringOut, ReadingOut, SensorOut, SuggestionOut


class NotFound(ObjectDoesNotExist):
    """No such object, or the user may not know it exists (same answer for both)."""


def _in_rooms_visible_to(user, queryset):
    """Admins see everything in this app; members what is in rooms they may enter."""
    if user.is_staff:
        return queryset
    return queryset.filter(room__in=room_selectors.rooms_visible_to(user))


def room_ids_visible_to(user) -> set[int] | None:
    """The rooms whose sensor events a user may receive; None: every room (admins)."""
    if user.is_staff:
        return None
    return set(room_selectors.rooms_visible_to(user).values_list("id", flat=True))


def sensors_visible_to(user):
    return _in_rooms_visible_to(user, Sensor.objects.select_related("room"))


def sensor_for_user(user, sensor_id: int) -> Sensor:
    sensor = sensors_visible_to(user).filter(pk=sensor_id).first()
    if sensor is None:
        raise NotFound("no such sensor")
    return sensor


def sensor_by_device_id(device_id: str) -> Sensor | None:
    return Sensor.objects.select_related("room").filter(device_id=device_id).first()


def sensor_by_topic(topic: str) -> Sensor | None:
    """The sensor a topic belongs to: its own topic, else the default <prefix>/<device_id>."""
    sensor = Sensor.objects.select_related("room").filter(mqtt_topic=topic).first()
    if sensor is not None:
        return sensor
    prefix = settings.OFFICE_IOT_TOPIC_PREFIX + "/"
    if topic.startswith(prefix):
        return Sensor.objects.select_related("room").filter(mqtt_topic="", device_id=topic[len(prefix):]).first()
    return None


def sensor_topic(sensor: Sensor) -> str:
    return sensor.topic


@dataclass(frozen=True)
class SensorMqttLogin:
    device_id: str
    topic: str
    password_hash: str
    enabled: bool


def sensor_mqtt_login(username: str) -> SensorMqttLogin | None:
    """What the broker needs to check a sensor's MQTT login (iot/mqtt_auth.py): one indexed row."""
    row = (Sensor.objects.filter(mqtt_username=username)
           .values("device_id", "mqtt_topic", "mqtt_password_hash", "enabled").first())
    if row is None:
        return None
    return SensorMqttLogin(device_id=row["device_id"], topic=row["mqtt_topic"] or default_topic(row["device_id"]),
                           password_hash=row["mqtt_password_hash"], enabled=row["enabled"])


def readings_recent(sensor: Sensor, limit: int = 120, *, since: datetime | None = None) -> list[SensorReading]:
    """Newest last, for charts: the latest `limit`, received at or after `since` when given."""
    readings = SensorReading.objects.filter(sensor=sensor)
    if since is not None:
        readings = readings.filter(received_at__gte=since)
    return list(reversed(readings.order_by("-received_at", "-id")[:limit]))


def rules_for_sensor(sensor: Sensor) -> list[Rule]:
    """Enabled rules that watch this sensor (by itself, by its room and kind, or by kind)."""
    scope = Q(scope=Rule.Scope.SENSOR, sensor=sensor) | Q(scope=Rule.Scope.KIND, sensor_kind=sensor.kind)
    if sensor.room_id is not None:
        scope |= Q(scope=Rule.Scope.ROOM, room_id=sensor.room_id, sensor_kind=sensor.kind)
    return list(Rule.objects.filter(scope, enabled=True).select_related("room"))


def sensor_payload(sensor: Sensor) -> dict:
    return dict(SensorOut(sensor).data)


def reading_payload(reading: SensorReading) -> dict:
    return dict(ReadingOut(reading).data)


# --- occupancy and bookings ---

def occupancy_of_rooms(room_ids: list[int] | None = None) -> dict[int, dict]:
    """room id -> {"count", "present", "at"} from the latest state of each room's occupancy sensors
    (several sensors in one room add up)."""
    sensors = Sensor.objects.filter(kind=Sensor.Kind.OCCUPANCY, enabled=True, room__isnull=False,
                                    last_state__isnull=False)
    if room_ids is not None:
        sensors = sensors.filter(room_id__in=room_ids)
    result: dict[int, dict] = {}
    for sensor in sensors:
        entry = result.setdefault(sensor.room_id, {"room": sensor.room_id, "count": 0, "present": False, "at": None})
        state = sensor.last_state or {}
        count = state.get("count")
        if count is None:
            count = 1 if state.get("present") else 0
        entry["count"] += count
        entry["present"] = entry["present"] or count > 0
        seen = sensor.last_seen_at.isoformat() if sensor.last_seen_at else None
        entry["at"] = max(filter(None, [entry["at"], seen]), default=None)
    return result


def occupancy_for_map(map_id: int) -> list[dict]:
    room_ids = list(Room.objects.filter(office_map_id=map_id).values_list("id", flat=True))
    return sorted(occupancy_of_rooms(room_ids).values(), key=lambda e: e["room"])


def booking_active(room_id: int, at: datetime) -> RoomBooking | None:
    return RoomBooking.objects.filter(room_id=room_id, start__lte=at, end__gt=at).order_by("start").first()


def booking_next(room_id: int, after: datetime) -> RoomBooking | None:
    return RoomBooking.objects.filter(room_id=room_id, start__gt=after).order_by("start").first()


def bookings_visible_to(user, *, room_id: int | None = None):
    bookings = _in_rooms_visible_to(user, RoomBooking.objects.select_related("room", "organizer"))
    if room_id is not None:
        bookings = bookings.filter(room_id=room_id)
    return bookings


def booking_payload(booking: RoomBooking) -> dict:
    return dict(BookingOut(booking).data)


# --- agendas of booked meetings (docs/adr/0021) ---

def agendas_visible_to(user):
    return _in_rooms_visible_to(user, Agenda.objects.select_related(
        "room", "booking__organizer__profile", "edited_by__profile"))


def agenda_for_user(user, agenda_id: int) -> Agenda:
    agenda = agendas_visible_to(user).filter(pk=agenda_id).first()
    if agenda is None:
        raise NotFound("no such agenda")
    return agenda


def agenda_upcoming_in_room(user, room_id: int, *, now: datetime) -> Agenda | None:
    """The agenda of the room's meeting going on now, else of its next one (drafted only once that is
    OFFICE_AGENDA_LEAD_MINUTES away). NotFound when the room is missing or not the user's to read."""
    room_selectors.room_get_administrable(user=user, room_id=room_id)
    return agendas_visible_to(user).filter(room_id=room_id, ends_at__gt=now).order_by("starts_at", "pk").first()


def agenda_may_edit(user, agenda: Agenda) -> bool:
    """Its participants edit it: the booking's organizer and, as bookings do not list attendees,
    whoever may read the room (a private room: its members); admins too."""
    if user.is_staff or agenda.booking.organizer_id == user.pk:
        return True
    return room_selectors.rooms_visible_to(user).filter(pk=agenda.room_id).exists()


def agenda_payload(agenda: Agenda) -> dict:
    return dict(AgendaOut(agenda).data)


def agenda_detail_payload(agenda: Agenda, user) -> dict:
    """`AgendaDetailOut`: the agenda and whether `user` may edit it."""
    return {**agenda_payload(agenda), "can_edit": agenda_may_edit(user, agenda)}


def bookings_without_agenda(*, now: datetime, lead_minutes: int, limit: int = 200) -> list[int]:
    """Bookings starting within `lead_minutes` (or going on now: a tick that was missed still drafts
    while the meeting runs) that have no agenda yet."""
    soon = now + timedelta(minutes=lead_minutes)
    return list(RoomBooking.objects.filter(start__lte=soon, end__gt=now, agenda__isnull=True)
                .order_by("start", "pk").values_list("pk", flat=True)[:limit])


def free_room_for(room: Room, *, needed: int, start: datetime, end: datetime) -> Room | None:
    """A meeting room on the same map, not booked in [start, end), that nobody is in now (as far as
    its sensors say) and that holds `needed` people; the smallest that fits."""
    busy = RoomBooking.objects.filter(start__lt=end, end__gt=start).values_list("room_id", flat=True)
    candidates = list(
        Room.objects.filter(office_map_id=room.office_map_id, kind=Room.Kind.MEETING)
        .exclude(pk=room.pk).exclude(pk__in=busy)
        .filter(Q(capacity__isnull=True) | Q(capacity__gte=max(needed, 1)))
    )
    occupied = {rid for rid, o in occupancy_of_rooms([c.id for c in candidates]).items() if o["count"] > 0}
    free = [c for c in candidates if c.id not in occupied]
    free.sort(key=lambda c: (c.capacity is None, c.capacity or 0, c.id))
    return free[0] if free else None


def suggestions_recent(user, limit: int = 20) -> list[dict]:
    """Recent free-room suggestions for rooms the user may see (shown on the sensors page)."""
    firings = _in_rooms_visible_to(user, RuleFiring.objects.filter(rule__action=Rule.Action.SUGGEST_ROOM)
                                   .select_related("room", "suggested_room", "rule"))
    return list(SuggestionOut(firings[:limit], many=True).data)


def firings_recent(user, limit: int = 20) -> list[dict]:
    """Recent rule firings in rooms the user may see (shown on the sensors page)."""
    firings = _in_rooms_visible_to(user, RuleFiring.objects.select_related("room", "rule"))
    return list(FiringOut(firings[:limit], many=True).data)
