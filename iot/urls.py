from django.urls import path

from . import agenda_api, api, views

api_urlpatterns = [
    path("iot/webhook/<slug:device_id>", api.sensor_webhook, name="api-iot-webhook"),
    path("iot/sensors/", api.SensorListApi.as_view(), name="api-iot-sensors"),
    path("iot/sensors/<int:sensor_id>/", api.SensorDetailApi.as_view(), name="api-iot-sensor"),
    path("iot/sensors/<int:sensor_id>/rotate-credentials/", api.SensorRotateApi.as_view(),
         name="api-iot-sensor-rotate"),
    path("iot/sensors/<int:sensor_id>/readings/", api.SensorReadingsApi.as_view(), name="api-iot-sensor-readings"),
    path("iot/rules/", api.RuleListApi.as_view(), name="api-iot-rules"),
    path("iot/rules/<int:rule_id>/", api.RuleDetailApi.as_view(), name="api-iot-rule"),
    path("iot/bookings/", api.BookingListApi.as_view(), name="api-iot-bookings"),
    path("iot/bookings/<int:booking_id>/", api.BookingDetailApi.as_view(), name="api-iot-booking"),
    path("iot/occupancy/", api.OccupancyApi.as_view(), name="api-iot-occupancy"),
    path("iot/overview/", api.OverviewApi.as_view(), name="api-iot-overview"),
    path("agendas/<int:agenda_id>/", agenda_api.AgendaDetailApi.as_view(), name="api-agenda"),
    path("rooms/<int:room_id>/agenda/", agenda_api.RoomAgendaApi.as_view(), name="api-room-agenda"),
]

page_urlpatterns = [
    path("sensors/", views.sensors_page, name="sensors-page"),
]
