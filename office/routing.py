"""The office socket, composed from each stage's part: rooms (map, presence, chat) at the base, then
transcription (meetings, audio, captions), automation (a member's work events) and iot (occupancy).
Each stage's mixin handles its own channel-layer events; rooms knows none of them."""

from django.urls import path

from automation.consumers import WorkSocketMixin
from automation.routing import websocket_urlpatterns as automation_websocket_urlpatterns
from iot.consumers import AgendaSocketMixin, OccupancySocketMixin
from iot.routing import websocket_urlpatterns as iot_websocket_urlpatterns
from rooms.consumers import MapEditorConsumer, OfficeConsumer
from transcription.consumers import MeetingSocketMixin


class OfficeSocket(AgendaSocketMixin, OccupancySocketMixin, WorkSocketMixin, MeetingSocketMixin, OfficeConsumer):
    """Map, presence, movement and chat (rooms), plus meetings, audio and captions (transcription),
    plus notifications, task and ticket changes (automation), plus live room occupancy and booked
    meetings' agendas (iot)."""


websocket_urlpatterns = [
    path("ws/office/<int:map_id>/", OfficeSocket.as_asgi()),
    path("ws/maps/<int:map_id>/edit/", MapEditorConsumer.as_asgi()),
    *automation_websocket_urlpatterns,
    *iot_websocket_urlpatterns,
]
