from django.urls import path

from .consumers import SensorsConsumer

websocket_urlpatterns = [
    path("ws/iot/sensors/", SensorsConsumer.as_asgi()),
]
