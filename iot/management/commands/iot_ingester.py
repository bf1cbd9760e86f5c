import asyncio
import logging
import signal

from django.core.management.base import BaseCommand

from iot.ingest import Ingester
from iot.schedules import periodic_tasks_ensure
from office.process_metrics import serve_process_metrics

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Ingest sensor readings from the MQTT broker (settings.MQTT_URL) until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--no-schedule", action="store_true",
                            help="do not (re)register the rule timer tick with Celery beat's database scheduler")

    def handle(self, *args, **options):
        if not options["no_schedule"]:
            periodic_tasks_ensure()  # rule timers need the beat tick; registering is idempotent
        serve_process_metrics()  # readings, rejections, connects (OFFICE_METRICS_PORT)
        asyncio.run(self._main())

    async def _main(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Ingester().run(stop)
