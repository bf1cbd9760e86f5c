import signal
import threading

from django.core.management.base import BaseCommand

from office.process_metrics import serve_process_metrics
from transcription.worker import TranscriptionWorker


class Command(BaseCommand):
    help = "Run a transcription worker: claims speakers' audio streams and writes their transcripts."

    def handle(self, *args, **options):
        serve_process_metrics()  # lag, shed partials (OFFICE_METRICS_PORT)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        TranscriptionWorker().run(stop)
