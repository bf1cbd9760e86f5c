from django.urls import path

from .consumers import OfficeConsumer

websocket_urlpatterns = [
    path("ws/office/<int:map_id>/", OfficeConsumer.as_asgi()),
]
