from django.apps import AppConfig


class IotConfig(AppConfig):
    name = "iot"

    def ready(self) -> None:
        """Answer the outcome dashboard's query hook with the sensors' figures (docs/adr/0013, 0020), and
        take part in retention, erasure and export (rooms/personal_data.py) for bookings and agendas."""
        from rooms import signals

        from . import receivers

        signals.outcomes_requested.connect(receivers.sensor_outcomes, dispatch_uid="iot.outcomes")
        signals.records_expire.connect(receivers.calendar_records_expire, dispatch_uid="iot.expire")
        signals.person_erasing.connect(receivers.person_calendar_erase, dispatch_uid="iot.erase")
        signals.person_exporting.connect(receivers.person_calendar_export, dispatch_uid="iot.export")
