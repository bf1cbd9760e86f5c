"""The office socket, composed from each stage's part (dependencies run rooms <- transcription)."""

from django.urls import path

from rooms.consumers import OfficeConsumer
from transcription.consumers import MeetingSocketMixin


class OfficeSocket(MeetingSocketMixin, OfficeConsumer):
    """Map, presence, movement and chat (rooms), plus meetings, audio and captions (transcription)."""


websocket_urlpatterns = [
    path("ws/office/<int:map_id>/", OfficeSocket.as_asgi()),
]
