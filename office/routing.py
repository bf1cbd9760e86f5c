"""The office socket, composed from each stage's part (dependencies run rooms <- transcription)."""

from django.urls import path

from iot.consumers import OccupancySocketMixin
from iot.routing import websocket_urlpatterns as iot_websocket_urlpatterns
from rooms.consumers import OfficeConsumer
from transcription.consumers import MeetingSocketMixin


class OfficeSocket(OccupancySocketMixin, MeetingSocketMixin, OfficeConsumer):
    """Map, presence, movement and chat (rooms), plus meetings, audio and captions (transcription),
    plus live room occupancy from sensors (iot)."""


websocket_urlpatterns = [
    path("ws/office/<int:map_id>/", OfficeSocket.as_asgi()),
    *iot_websocket_urlpatterns,
]
