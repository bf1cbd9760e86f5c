"""Room bookings: create (one writer per room, no overlaps) and delete."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction

from rooms.models import Room
from rooms.selectors import user_can_enter_room

from .. import selectors
from ..models import RoomBooking


def booking_create(*, user, room: Room, title: str, start: datetime, end: datetime) -> RoomBooking:
    if not user.is_staff and not user_can_enter_room(user, room):
        raise selectors.NotFound("no such room")
    booking = RoomBooking(room=room, title=title.strip(), organizer=user, start=start, end=end)
    booking.full_clean()
    if end <= start:
        raise ValidationError("a booking must end after it starts")
    with transaction.atomic():
        Room.objects.select_for_update().filter(pk=room.pk).first()  # one booking writer per room at a time
        clash = RoomBooking.objects.filter(room=room, start__lt=end, end__gt=start).first()
        if clash is not None:
            raise ValidationError(f"{room.name} is already booked for “{clash.title}” at that time")
        booking.save()
    return booking


def booking_delete(*, user, booking: RoomBooking) -> None:
    if not (user.is_staff or booking.organizer_id == user.id):
        raise selectors.NotFound("no such booking")
    booking.delete()
