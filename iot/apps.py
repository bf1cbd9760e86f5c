from django.apps import AppConfig


class IotConfig(AppConfig):
    name = "iot"

    def ready(self) -> None:
        """Answer the outcome dashboard's query hook with the sensors' figures (docs/adr/0013, 0020)."""
        from rooms.signals import outcomes_requested

        from . import receivers

        outcomes_requested.connect(receivers.sensor_outcomes, dispatch_uid="iot.outcomes")
